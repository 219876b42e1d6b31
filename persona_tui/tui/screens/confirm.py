"""A yes/no question in a modal."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only when the user confirms."""

    BINDINGS = [
        Binding("y", "dismiss(True)", "Yes", id="confirm-yes"),
        Binding("n", "no", "No", id="confirm-no"),
        Binding("escape", "dismiss(False)", "Cancel", id="confirm-cancel"),
    ]

    def __init__(self, question: str, confirm_label: str = "Delete") -> None:
        super().__init__()
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text(self.question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="confirm-yes")
                yield Button("Keep (n)", variant="default", id="confirm-no")
        yield Footer()  # its own keys, not the main screen's

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def action_no(self) -> None:
        """n: like Esc, but an action of its own, so the footer shows both keys."""
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")
