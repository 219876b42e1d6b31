"""The whole persona, readable, in a modal."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from persona_tui.models import PersonaRecord
from persona_tui.present import describe, hanging


class DetailScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="close-detail"),
        Binding("i", "app.interview", "Interview", id="detail-interview", show=False),
        Binding("a", "app.ask_group", "Ask", id="detail-ask", show=False),
    ]

    def __init__(self, record: PersonaRecord, path: Path | None = None) -> None:
        super().__init__()
        self.record = record
        self.path = path

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box") as box:
            box.border_title = "Persona"
            yield Static(hanging(describe(self.record, self.path)), id="detail-body")
        yield Footer()
