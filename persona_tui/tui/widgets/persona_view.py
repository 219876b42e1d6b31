"""The persona pane: the persona taking shape while it streams, or the one selected."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from persona_tui.engine.models import PersonaRecord
from persona_tui.present import describe, describe_fields


class PersonaView(VerticalScroll):
    """Shows one persona, complete or partial. Text only, never markup."""

    DEFAULT_CSS = """
    PersonaView > Static {
        width: 1fr;
    }
    """

    def compose(self) -> ComposeResult:
        # Kept as an attribute: events still arrive while the app closes, when a query would fail.
        self.body = Static(Text("Select a persona to see it here.", style="dim"), id="persona-body")
        yield self.body

    def show_partial(self, fields: dict[str, Any], index: int = 0, count: int = 1) -> None:
        batch = f" ({index + 1} of {count})" if count > 1 else ""
        self.border_title = f"Taking shape{batch}"
        self.body.update(describe_fields(fields))

    def show_record(self, record: PersonaRecord) -> None:
        self.border_title = "Persona"
        self.body.update(describe(record))
        self.scroll_home(animate=False)

    def show_message(self, text: str) -> None:
        self.border_title = "Persona"
        self.body.update(Text(text, style="dim"))
