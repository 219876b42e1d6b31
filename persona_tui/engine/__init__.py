"""The generation engine: request in, typed events out.

Nothing in this package may import Textual; the app, the headless CLI and the
tests all consume the same events.
"""
