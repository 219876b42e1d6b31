"""The diversity report of a run, and the offer to write its near-duplicates again."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from persona_tui.engine.diversity import DiversityReport
from persona_tui.narrate import report_lines
from persona_tui.present import one_line

REWRITE = "rewrite"


class ReportScreen(ModalScreen[str | None]):
    """Dismisses with ``"rewrite"`` when the user asks for the near-duplicates to be written again."""

    BINDINGS = [
        Binding("r", "rewrite", "Write near-duplicates again", id="report-rewrite"),
        Binding("escape", "dismiss(None)", "Close", id="report-close"),
    ]

    def __init__(self, report: DiversityReport, title: str) -> None:
        super().__init__()
        self.report = report
        self.heading = title

    def compose(self) -> ComposeResult:
        near = len(self.report.near_duplicates)
        with Vertical(id="report-box"):
            yield Static(Text(one_line(self.heading), style="bold"), id="report-title")
            with VerticalScroll(id="report-body"):
                yield Static(Text("\n".join(report_lines(self.report))), id="report-text")
            with Horizontal(id="report-buttons"):
                if near:
                    label = f"Write {near} again (r)" if near > 1 else "Write it again (r)"
                    yield Button(label, variant="warning", id="report-rewrite")
                yield Button("Close (Esc)", id="report-close")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#report-close", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rewrite":
            return bool(self.report.near_duplicates)  # nothing to write again: the key is not offered
        return True

    def action_rewrite(self) -> None:
        self.dismiss(REWRITE)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(REWRITE if event.button.id == "report-rewrite" else None)
