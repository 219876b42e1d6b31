"""The whole persona, readable, in a modal; with its earlier versions, read-only, one key away (v)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from persona_tui.models import PersonaRecord
from persona_tui.present import change_caption, describe, describe_fields, hanging, version_persona


class DetailScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="close-detail"),
        Binding("v", "versions", "Versions", id="persona-versions", tooltip="Page through the earlier versions"),
        # The app's keys for one persona: a modal screen hides the app's own bindings, so they are named here too.
        Binding("e", "app.edit_persona", "Edit", show=False, tooltip="Edit the persona's fields"),
        Binding("r", "app.regenerate_persona", "Regenerate", show=False, tooltip="A new persona in the same slot"),
        Binding("f", "app.refine_persona", "Refine", show=False, tooltip="Revise the persona by an instruction"),
        Binding("c", "app.copy_persona", "Copy", show=False, tooltip="Copy the persona as Markdown"),
        Binding("question_mark", "app.help", "Help", show=False, tooltip="Every key of this screen"),
    ]
    HELP_GROUP = "Persona details"

    def __init__(self, record: PersonaRecord, path: Path | None = None) -> None:
        super().__init__()
        self.record = record
        self.path = path
        self.version = record.version_count
        """The version shown (1-based); the last is the persona as it is now."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box") as box:
            box.border_title = "Persona"
            yield Static("", id="detail-version")
            yield Static(hanging(describe(self.record, self.path)), id="detail-body")
        yield Footer()

    def on_mount(self) -> None:
        self._draw()

    def show(self, record: PersonaRecord, path: Path | None = None) -> None:
        """The persona changed (edited, refined, regenerated): show it as it is now."""
        self.record, self.path = record, path or self.path
        self.version = record.version_count
        self._draw()
        self.refresh_bindings()

    def action_versions(self) -> None:
        """The version before the one shown; from the first, back to the current one."""
        self.version = self.version - 1 if self.version > 1 else self.record.version_count
        self._draw()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "versions":
            return self.record.version_count > 1
        return True

    def _draw(self) -> None:
        record, number = self.record, self.version
        caption = self.query_one("#detail-version", Static)
        caption.display = record.version_count > 1
        current = number == record.version_count
        if caption.display:
            more = "v shows the one before" if number > 1 else "v goes back to the current one"
            read_only = "" if current else " · read-only"
            caption.update(Text(f"{change_caption(record, number)}{read_only} · {more}", style="bold"))
        box = self.query_one("#detail-box", VerticalScroll)
        box.border_title = "Persona" if current else f"Persona, version {number} (read-only)"
        body = describe(record, self.path) if current else describe_fields(version_persona(record, number).model_dump())
        self.query_one("#detail-body", Static).update(hanging(body))
        box.scroll_home(animate=False)
