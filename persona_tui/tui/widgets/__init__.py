"""Widgets of the persona-tui app."""
