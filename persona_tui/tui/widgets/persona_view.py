"""The persona pane: the persona taking shape while it streams, or the one selected.

The persona taking shape is kept when it arrives and drawn on the app's clock
(:meth:`PersonaView.draw_partial`): each drawing re-wraps the whole text and
lays the screen out again, which at the engine's rate (ten parses a second per
stream) cost more than the tokens. A complete persona (or a message) always
replaces a partial one still waiting.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from persona_tui.models import PersonaRecord
from persona_tui.present import describe, describe_fields, hanging

PARTIAL_CHARS = 4000
"""At least this much of a persona still being written is drawn (three screenfuls of the pane if that
is more); the rest shows once it is complete. A 13,000-character persona cost 30 ms per drawing."""


class PersonaView(VerticalScroll):
    """Shows one persona, complete or partial. Text only, never markup."""

    DEFAULT_CSS = """
    PersonaView > Static {
        width: 1fr;
    }
    """

    _waiting: tuple[dict[str, Any], int, int] | None = None
    showing_partial = False
    """True while the pane shows a persona still being written."""
    _pinned: int | None = None
    """In a batch, the persona the pane follows (the first to take shape) until it is saved or fails."""
    _latest: dict[int, dict[str, Any]] | None = None
    """The newest fields of each persona in flight, to move to when the one followed ends."""
    _count = 1

    def compose(self) -> ComposeResult:
        # Kept as an attribute: events still arrive while the app closes, when a query would fail.
        self.body = Static(Text("Select a persona to see it here.", style="dim"), id="persona-body")
        yield self.body

    def show_partial(self, fields: dict[str, Any], index: int = 0, count: int = 1) -> None:
        """Keep the fields parsed so far; they are drawn by the next :meth:`draw_partial` (the app's clock).

        In a batch the pane stays on one persona (see :attr:`_pinned`): the others' fields are only kept.
        """
        if count > 1:
            if self._latest is None:
                self._latest = {}
            self._latest[index] = fields
            self._count = count
            if self._pinned is None:
                self._pinned = index
            elif index != self._pinned:
                return
        self._waiting = (fields, index, count)

    def persona_ended(self, index: int) -> bool:
        """A persona of the batch was saved or failed: follow the next in flight, if one has taken shape.

        Returns whether the pane moved to another persona (then it is drawn on the next beat).
        """
        latest = self._latest or {}
        latest.pop(index, None)
        if index != self._pinned:
            return self._pinned is not None
        self._pinned = min(latest) if latest else None
        if self._pinned is None:
            return False
        self._waiting = (latest[self._pinned], self._pinned, self._count)
        return True

    def draw_partial(self) -> None:
        """Draw the newest fields kept by :meth:`show_partial`, if any came since the last drawing."""
        if self._waiting is None:
            return
        fields, index, count = self._waiting
        self._waiting = None
        self.showing_partial = True
        batch = f" ({index + 1} of {count})" if count > 1 else ""
        self.border_title = f"Taking shape{batch}"
        text = describe_fields(fields)
        limit = max(PARTIAL_CHARS, 3 * self.size.width * self.size.height)
        if len(text) > limit:  # far below what the pane shows; re-wrapping it at every drawing costs frames
            text = text[:limit]
            text.append(" …", style="dim")
        self.body.update(hanging(text))

    def _drop_waiting(self) -> None:
        self._waiting = self._pinned = self._latest = None
        self.showing_partial = False

    def show_record(self, record: PersonaRecord) -> None:
        self._drop_waiting()
        self.border_title = "Persona"
        self.body.update(hanging(describe(record)))
        self.scroll_home(animate=False)

    def show_message(self, text: str) -> None:
        self._drop_waiting()
        self.border_title = "Persona"
        self.body.update(Text(text, style="dim"))
