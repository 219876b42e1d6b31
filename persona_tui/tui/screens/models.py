"""Choose a model from the list the server gives, instead of guessing its exact name.

The list is loaded in a worker, so the app keeps drawing while a slow or dead
server is asked; until it arrives the screen says what it is waiting for, and a
failure is shown in it as one sentence and a hint. Model ids are the server's
text: they are drawn as plain text with control sequences removed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from persona_tui.engine.errors import GenerationError
from persona_tui.engine.providers import ModelEntry, NoModelList
from persona_tui.narrate import app_hint
from persona_tui.present import model_cells, one_line

ModelLoader = Callable[[], Awaitable[list[ModelEntry]]]
"""Asks the server for its models; raises NoModelList or GenerationError with one sentence and a hint."""
ID_COLUMN_MAX = 48
"""Ids are padded to the longest up to this many characters, so owners and dates line up in a column."""
Refusal = Callable[[], str | None]
"""Why a choice cannot be taken now (a generation is running), or None."""


class ModelPickerScreen(ModalScreen[str | None]):
    """Dismisses with the chosen model's id, or None when closed with Esc."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="models-close"),
        Binding("down", "move(1)", "Next", show=False, id="models-next"),
        Binding("up", "move(-1)", "Previous", show=False, id="models-previous"),
    ]

    def __init__(self, load: ModelLoader, *, current: str, where: str, refusal: Refusal | None = None) -> None:
        super().__init__()
        self.load = load
        self.current = current
        self.where = one_line(where)
        self.refusal = refusal
        self.entries: list[ModelEntry] = []
        self.shown: list[ModelEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="models-box") as box:
            box.border_title = "Choose a model"
            yield Static(Text(f"Loading the models of {self.where}…"), id="models-status")
            yield Input(placeholder="Type to filter", id="models-filter", disabled=True)
            yield OptionList(id="models-list")
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(exclusive=True, group="models-load", exit_on_error=False)
    async def _load(self) -> None:
        try:
            entries = await self.load()
        except (NoModelList, GenerationError) as exc:
            self._say(f"{exc.message} {app_hint(exc.hint)}".strip(), error=True)
            return
        except Exception as exc:  # a bug must not leave the screen loading forever, nor crash the app
            self._say(f"The models of {self.where} could not be listed ({type(exc).__name__}: {exc}).", error=True)
            return
        self.entries = entries
        if not entries:
            self._say(f"{self.where} lists no models. Load or pull one there first, then open this again.")
            return
        self._say(f"{len(entries)} model(s) at {self.where}; * is the current one. Enter chooses, Esc closes.")
        filter_input = self.query_one("#models-filter", Input)
        filter_input.disabled = False
        filter_input.focus()
        self._fill("")

    def _say(self, message: str, *, error: bool = False) -> None:
        status = self.query_one("#models-status", Static)
        status.update(Text(message))
        status.set_class(error, "-error")

    def _fill(self, wanted: str) -> None:
        """Show the models whose id holds the filter's words (any case), keeping the current one highlighted."""
        words = wanted.casefold().split()
        self.shown = [e for e in self.entries if all(word in e.id.casefold() for word in words)]
        options = self.query_one(OptionList)
        options.clear_options()
        width = min(max((len(one_line(entry.id)) for entry in self.shown), default=0), ID_COLUMN_MAX)
        options.add_options([Option(_prompt(entry, self.current, width)) for entry in self.shown])
        if self.shown:
            ids = [entry.id for entry in self.shown]
            options.highlighted = ids.index(self.current) if self.current in ids else 0

    @on(Input.Changed, "#models-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#models-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()  # the app's form starts a generation on Enter: this Enter is the picker's
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None:
            self._choose(highlighted)

    @on(OptionList.OptionSelected, "#models-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option_index)

    def _choose(self, index: int) -> None:
        if not 0 <= index < len(self.shown):
            return
        refused = self.refusal() if self.refusal is not None else None
        if refused:
            self._say(refused, error=True)
            return
        self.dismiss(self.shown[index].id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)


def _prompt(entry: ModelEntry, current: str, width: int) -> Text:
    """One row: the mark, the id padded so owners and dates line up, then owner and day created, dimmed."""
    mark, model_id, owner, created = model_cells(entry, current)
    details = " · ".join(part for part in (owner, created) if part)
    return Text.assemble(
        (f"{mark or ' '} ", "bold"),
        (model_id.ljust(width), "bold" if mark else ""),
        (f"  {details}" if details else "", "dim"),
    )
