"""The Textual app. It holds no generation logic: it draws the engine's events."""
