"""A refinement's changes, old → new, to accept (a) or discard (d, Esc) before anything is saved."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from persona_tui.models import PersonaRecord, changed_fields
from persona_tui.present import FIELD_TITLES, one_line, revision_diff


class DiffScreen(ModalScreen[bool]):
    """Dismisses with True when the user accepts the revision."""

    DEFAULT_CSS = """
    DiffScreen {
        align: center middle;
    }
    #diff-box {
        width: 100;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        padding: 0 1;
        background: $surface;
    }
    #diff-body {
        height: auto;
        max-height: 28;
        margin-top: 1;
    }
    #diff-buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    #diff-buttons Button {
        margin-left: 1;
    }
    """
    BINDINGS = [
        Binding("a", "dismiss(True)", "Accept", id="diff-accept"),
        Binding("d", "discard", "Discard", id="diff-discard"),
        Binding("escape", "dismiss(False)", "Discard", id="diff-cancel", show=False),
    ]
    HELP_GROUP = "Reviewing a revision"

    def __init__(self, old: PersonaRecord, new: PersonaRecord, instruction: str = "") -> None:
        super().__init__()
        self.old = old
        self.new = new
        self.instruction = instruction

    def compose(self) -> ComposeResult:
        changed = changed_fields(self.old.persona, self.new.persona)
        with Vertical(id="diff-box") as box:
            box.border_title = f"Refined {one_line(self.new.persona.name)}"
            if self.instruction:
                box.border_subtitle = f"'{one_line(self.instruction)[:70]}'"
            names = ", ".join(FIELD_TITLES.get(name, name).lower() for name in changed)
            what = f"{len(changed)} field(s) changed: {names}." if changed else "The model changed nothing."
            yield Static(Text(f"{what} a saves it (the earlier version is kept); d or Esc discards it."))
            with VerticalScroll(id="diff-body"):
                yield Static(revision_diff(self.old.persona, self.new.persona), id="diff-text")
            with Horizontal(id="diff-buttons"):
                yield Button("Accept (a)", variant="success", id="diff-accept")
                yield Button("Discard (d)", variant="error", id="diff-discard")
        yield Footer()

    def action_discard(self) -> None:
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "diff-accept")
