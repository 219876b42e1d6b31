"""persona-tui: synthetic user personas, generated with live feedback."""

from __future__ import annotations

__version__ = "0.1.0"
