"""The persona pane: the persona taking shape while it streams, or the one selected.

The persona taking shape is drawn at most :data:`PARTIAL_FPS` times a second:
each drawing re-wraps the whole text and lays the screen out again, which at
the engine's rate (ten parses a second per stream) cost more than the tokens.
The first fields show at once; later ones wait for the next slot, and a
complete persona (or a message) always replaces a partial one still waiting.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Static

from persona_tui.engine.models import PersonaRecord
from persona_tui.present import describe, describe_fields

PARTIAL_FPS = 4
FAST_PARTIAL_FPS = 2
"""While the model streams faster than anyone reads (the app says when), fewer drawings."""


class PersonaView(VerticalScroll):
    """Shows one persona, complete or partial. Text only, never markup."""

    DEFAULT_CSS = """
    PersonaView > Static {
        width: 1fr;
    }
    """

    _drawn_at = float("-inf")
    _waiting: tuple[dict[str, Any], int, int] | None = None
    _timer: Timer | None = None

    def compose(self) -> ComposeResult:
        # Kept as an attribute: events still arrive while the app closes, when a query would fail.
        self.body = Static(Text("Select a persona to see it here.", style="dim"), id="persona-body")
        yield self.body

    def show_partial(self, fields: dict[str, Any], index: int = 0, count: int = 1, *, fast: bool = False) -> None:
        """Show the fields parsed so far: now if the last drawing is old enough, else at the next slot."""
        self._waiting = (fields, index, count)
        wait = self._drawn_at + 1 / (FAST_PARTIAL_FPS if fast else PARTIAL_FPS) - time.monotonic()
        if wait <= 0:
            self._draw_waiting()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._draw_waiting)

    def _draw_waiting(self) -> None:
        self._timer = None
        if self._waiting is None:
            return
        fields, index, count = self._waiting
        self._waiting = None
        self._drawn_at = time.monotonic()
        batch = f" ({index + 1} of {count})" if count > 1 else ""
        self.border_title = f"Taking shape{batch}"
        self.body.update(describe_fields(fields))

    def _drop_waiting(self) -> None:
        self._waiting = None
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def show_record(self, record: PersonaRecord) -> None:
        self._drop_waiting()
        self.border_title = "Persona"
        self.body.update(describe(record))
        self.scroll_home(animate=False)

    def show_message(self, text: str) -> None:
        self._drop_waiting()
        self.border_title = "Persona"
        self.body.update(Text(text, style="dim"))
