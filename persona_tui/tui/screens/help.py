"""The help screen (? and F1): every key of the screen below it, grouped, read from the bindings themselves.

Nothing here lists keys by hand: the rows come from the screen's active bindings (the app's, the
screen's and the focused widget's, as Textual resolves them), so a key added anywhere shows here.
A binding's group is where it comes from (the table, the form field, the dialog), except that the
app's own keys are sorted by what their action is about (:data:`APP_GROUPS`); a widget or screen may
name its group with a ``HELP_GROUP`` class attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

APP_GROUPS = {
    "generate": "Generation",
    "generate_busy": "Generation",
    "cancel": "Generation",
    "toggle_thinking": "Generation",
    "choose_model": "Generation",
    "report": "Generation",
    "resume_run": "Generation",
    "edit_persona": "Persona",
    "regenerate_persona": "Persona",
    "refine_persona": "Persona",
    "copy_persona": "Persona",
    "delete_selected": "Persona",
    "export": "Personas",
    "focus_table": "Navigation",
    "focus_form": "Navigation",
    "organizations": "Navigation",
}
"""The app's actions by what they are about; any other app key is in "Application"."""
ORDER = ("Generation", "Persona", "Personas", "Personas table", "Navigation", "Application")
"""Groups shown in this order; the others (a dialog's, a field's) come first, as they are the closest; the
main screen's own (focus and copy) come last."""
WIDGET_GROUPS = {"PersonaTable": "Personas table", "Input": "Text field", "TextArea": "Text area"}


@dataclass(frozen=True, slots=True)
class KeyRow:
    group: str
    keys: str
    description: str
    tooltip: str


def _group(node: DOMNode, binding: Binding) -> str:
    if isinstance(node, App):
        return APP_GROUPS.get(binding.action.split("(")[0], "Application")
    named = getattr(node, "HELP_GROUP", None)
    if isinstance(named, str):
        return named
    if isinstance(node, Screen):
        return "This screen"
    return WIDGET_GROUPS.get(type(node).__name__, type(node).__name__)


def key_rows(screen: Screen[object]) -> list[KeyRow]:
    """Every key active on ``screen`` (one row per action, its keys together), grouped and in order."""
    app = screen.app
    merged: dict[tuple[int, str], tuple[str, list[str], Binding]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.system and binding.action not in ("command_palette", "quit"):
            continue  # Textual's own (screenshots, maximize): the palette lists them
        slot = (id(active.node), binding.action)
        shown = app.get_key_display(binding)
        if slot in merged:
            merged[slot][1].append(shown)
        else:
            merged[slot] = (_group(active.node, binding), [shown], binding)
    rows = [
        KeyRow(group, " / ".join(dict.fromkeys(keys)), binding.description or binding.action, binding.tooltip)
        for group, keys, binding in merged.values()
    ]
    rank = {name: number for number, name in enumerate(ORDER)} | {"This screen": len(ORDER)}
    return sorted(rows, key=lambda row: rank.get(row.group, -1))


def keys_table(rows: list[KeyRow]) -> Table:
    """The rows as one table, a heading per group. Plain text throughout."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, min_width=max((cell_len(row.keys) for row in rows), default=1) + 2)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    group = None
    for row in rows:
        if row.group != group:
            if group is not None:
                table.add_row("")
            group = row.group
            table.add_row(Text(group, style="bold"))
        table.add_row(Text(row.keys, style="bold"), Text(row.description), Text(row.tooltip, style="dim"))
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of the screen the user was on when they asked."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    #help-box {
        width: 100;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $accent;
        padding: 0 1;
        background: $surface;
    }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="close-help")]

    def __init__(self, rows: list[KeyRow], where: str = "") -> None:
        super().__init__()
        self.rows = rows
        self.where = where

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = f"Keys{': ' + self.where if self.where else ''}"
            box.border_subtitle = "Esc closes · ctrl+p finds any command"
            yield Static(keys_table(self.rows), id="help-body")
        yield Footer()
