"""Modal screens of the persona-tui app."""
