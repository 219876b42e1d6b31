"""A focus group: one question to several personas, the answers streaming side by side.

One card per persona, in a grid: while it answers, its stage, tokens and own progress bar and the
answer as it streams; then the answer itself, flagged when it contradicts the persona, or why there
is none. Above the cards the whole question's feedback (how many answered, the bar and its time).
The question box stays: a follow-up goes to everyone, or (ctrl+t chooses) to one persona. Esc stops
the answers (the finished ones are kept); a second Esc closes. The group is saved as it goes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline.talk import QUESTION_MAX, group_question, new_group
from persona_tui.engine.providers import Provider
from persona_tui.export import group_markdown
from persona_tui.models import FocusGroup, PersonaRecord
from persona_tui.narrate import app_hint
from persona_tui.present import one_line
from persona_tui.storage import GroupStore, PersonaStore, StoreError, atomic_write
from persona_tui.tui.widgets.talk import AnswerPanel, LaneCard

TICK = 0.1
COLUMNS_MAX = 4


def card_summary(record: PersonaRecord) -> str:
    p = record.persona
    return one_line(f"{p.age}, {p.occupation}, {p.location}")


class FocusGroupScreen(Screen[None]):
    """Ask the personas one question at a time; their answers side by side."""

    DEFAULT_CSS = """
    FocusGroupScreen { layout: vertical; }
    #group-header { height: auto; padding: 0 1; background: $boost; }
    #cards-scroll { height: 1fr; }
    #cards { grid-gutter: 0 1; height: auto; padding: 0 1; }
    #ask-row { height: 3; dock: bottom; margin-bottom: 1; }
    #to { width: auto; min-width: 12; padding: 1 1 0 1; }
    #group-question { width: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / close", id="group-stop"),
        Binding("ctrl+t", "next_recipient", "To: all / one", id="group-to", priority=True),
        Binding("ctrl+e", "export_markdown", "Export .md", id="group-export", priority=True),
    ]

    def __init__(
        self,
        records: list[PersonaRecord],
        *,
        provider: Provider,
        settings: Settings,
        estimates: EstimateBook | None = None,
        clock: Callable[[], float] = time.monotonic,
        group: FocusGroup | None = None,
    ) -> None:
        super().__init__()
        self.records = {r.id: r for r in records}
        self.order = [r.id for r in records]
        self.provider = provider
        self.settings = settings
        self.estimates = estimates
        self.clock = clock
        self.group = group or new_group(records)
        self.groups = GroupStore(settings.groups_dir)
        self.cancel: asyncio.Event | None = None
        self.recipient: str | None = None
        """The one persona the next question goes to; None: all of them."""
        self.asked: list[str] = []
        """The persona ids of the question in flight, by lane."""

    def compose(self) -> ComposeResult:
        header = Text.assemble(
            ("Focus group  ", "bold"), f"{len(self.order)} personas", (f"  ·  {self.provider.label}", "dim")
        )
        yield Static(header, id="group-header")
        yield AnswerPanel(clock=self.clock, id="group-panel")
        with VerticalScroll(id="cards-scroll"):
            grid = Grid(id="cards")
            grid.styles.grid_size_columns = min(len(self.order), COLUMNS_MAX)
            with grid:
                for n, persona_id in enumerate(self.order):
                    record = self.records[persona_id]
                    yield LaneCard(persona_id, record.persona.name, card_summary(record), id=f"card-{n}")
        with Horizontal(id="ask-row"):
            yield Label(self._to_words(), id="to")
            yield Input(
                placeholder="One question for all of them, then Enter", id="group-question", max_length=QUESTION_MAX
            )
        yield Footer()

    def on_mount(self) -> None:
        self.panel = self.query_one(AnswerPanel)
        self.cards = {card.persona_id: card for card in self.query(LaneCard)}
        self.query_one("#group-question", Input).focus()
        self.set_interval(TICK, self.tick)

    def _to_words(self) -> str:
        if self.recipient is None:
            return f"To all {len(self.order)}:"
        return f"To {one_line(self.records[self.recipient].persona.name)} only:"

    # ----- asking -----

    @on(Input.Submitted, "#group-question")
    def _asked(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.cancel is not None:
            self.notify("The answers are still coming; Esc stops them.", markup=False)
            return
        event.input.value = ""
        to = [self.recipient] if self.recipient is not None else list(self.order)
        self.begin(question, to)
        self._ask(question, to)

    def begin(self, question: str, to: list[str]) -> None:
        self.cancel = asyncio.Event()
        self.asked = to
        self.panel.begin(len(to))
        for persona_id in to:
            self.cards[persona_id].ask(question)
        self.tick()

    @work(group="group-answers", exclusive=True, exit_on_error=False)
    async def _ask(self, question: str, to: list[str]) -> None:
        assert self.cancel is not None
        try:
            async for event in group_question(
                self.group,
                self.records,
                question,
                to if len(to) < len(self.order) else (),
                provider=self.provider,
                settings=self.settings,
                groups=self.groups,
                estimates=self.estimates,
                cancel=self.cancel,
                clock=self.clock,
            ):
                self.handle_event(event)
        finally:
            self.cancel = None

    def handle_event(self, event: ev.Event) -> None:
        """Draw one engine event: fold it into the panel, and into the card of the lane it names."""
        self.panel.apply(event)
        index = getattr(event, "index", -1)
        card = self.cards.get(self.asked[index]) if 0 <= index < len(self.asked) else None
        if isinstance(event, ev.TalkFinished):
            self._ended(event)
            return
        if card is None:
            return
        lane = self.panel.state.lanes.get(index)
        if isinstance(event, ev.TokenDelta):
            card.text.append(event.text)
        elif isinstance(event, ev.StageStarted) and event.stage is ev.Stage.CALLING:
            card.text = []
        elif isinstance(event, ev.AnswerDone):
            card.finish(answer=event.text, flags=event.flags)
            return
        elif isinstance(event, ev.Failed):
            card.finish(error=f"{one_line(event.message)} {one_line(app_hint(event.hint))}".strip())
            return
        card.lane = lane

    def _ended(self, event: ev.TalkFinished) -> None:
        """The question is over: a lane without an answer was stopped (its text kept) or failed."""
        asked = self.group.questions[-1] if self.group.questions else None
        for persona_id in self.asked:
            card = self.cards[persona_id]
            got = asked.answers.get(persona_id) if asked is not None else None
            if card.answer or card.error or got is None:
                card.lane = None
                continue
            if got.stopped:
                card.finish(answer=got.answer, stopped=True)
            else:
                card.finish(error=got.error)
        self.tick()

    def tick(self) -> None:
        self.panel.tick()
        now = self.clock()
        for card in self.cards.values():
            card.draw(now)

    # ----- keys -----

    def action_stop_or_close(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            return
        self.dismiss()

    def action_next_recipient(self) -> None:
        """ctrl+t: the next question goes to all, or to one persona after another."""
        if self.recipient is None:
            self.recipient = self.order[0]
        else:
            at = self.order.index(self.recipient) + 1
            self.recipient = self.order[at] if at < len(self.order) else None
        self.query_one("#to", Label).update(self._to_words())

    @work(group="export", exit_on_error=False)
    async def action_export_markdown(self) -> None:
        if not self.group.questions:
            self.notify("Nothing to export yet: ask a question first.", markup=False)
            return
        target = self.settings.data_dir / "exports" / f"focus-group-{self.group.id[:8]}.md"
        try:
            await atomic_write(target, group_markdown(self.group).encode("utf-8"))
        except OSError as exc:
            self.notify(f"Could not write {target}: {exc.strerror or exc}.", severity="error", markup=False)
            return
        self.notify(f"The focus group is in {target}.", title="Exported", markup=False)


GROUP_MAX = 24
"""Personas one focus group asks at most (their cards must stay readable side by side)."""


async def open_focus_group(
    app: App[None],
    store: PersonaStore,
    ids: list[str],
    *,
    provider: Provider,
    settings: Settings,
    estimates: EstimateBook | None,
    clock: Callable[[], float],
) -> None:
    """Read the personas (one file each) and open a focus group of them."""
    if not ids:
        app.notify("No personas to ask yet: generate some first.", markup=False)
        return
    if len(ids) > GROUP_MAX:
        app.notify(f"Asking the first {GROUP_MAX} of the {len(ids)} personas; mark the ones to ask.", markup=False)
        ids = ids[:GROUP_MAX]
    records: list[PersonaRecord] = []
    for persona_id in ids:
        try:
            records.append((await store.find(persona_id))[0])
        except StoreError as err:
            app.notify(f"{err.message} {app_hint(err.hint)}".strip(), severity="error", markup=False)
            return
    screen = FocusGroupScreen(records, provider=provider, settings=settings, estimates=estimates, clock=clock)
    await app.push_screen(screen)
