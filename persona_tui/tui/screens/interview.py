"""Interviewing one persona: the transcript above, the question below, the answer streaming between.

The answer comes with the generation's feedback (the stage, the progress bar with the time it will
probably take, the heartbeat while the model is silent, the model's thinking as it arrives, retries),
drawn a few times a second from the events, never once per token. Esc stops an answer and keeps the
conversation (what arrived is kept, marked as stopped); a second Esc closes the screen. Each turn is
appended to the persona's transcript, which is shown again the next time the screen opens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline.talk import QUESTION_MAX, interview_turn
from persona_tui.engine.providers import Provider
from persona_tui.engine.text import strip_control
from persona_tui.export import transcript_markdown
from persona_tui.models import PersonaRecord, Turn
from persona_tui.narrate import app_hint
from persona_tui.present import one_line
from persona_tui.storage import PersonaStore, StoreError, TranscriptStore, atomic_write, slugify
from persona_tui.tui.widgets.talk import THINKING_SHOWN, AnswerPanel, turn_text

TICK = 0.1


class TalkKit(TypedDict):
    """What a conversation's screen needs from the app."""

    provider: Provider
    settings: Settings
    estimates: EstimateBook | None
    clock: Callable[[], float]


"""Seconds between redraws of the answer being written."""


def who(record: PersonaRecord) -> str:
    p = record.persona
    return one_line(f"{p.name}, {p.age}, {p.occupation}, {p.location}")


class InterviewScreen(Screen[None]):
    """A chat with one persona."""

    DEFAULT_CSS = """
    InterviewScreen { layout: vertical; }
    #talk-header { height: auto; padding: 0 1; background: $boost; }
    #transcript { height: 1fr; padding: 0 1; }
    #transcript > Static { margin-bottom: 1; }
    #live { height: auto; }
    #question { dock: bottom; margin-bottom: 1; }
    """

    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / close", id="interview-stop"),
        Binding("ctrl+e", "export_markdown", "Export .md", id="interview-export", priority=True),
    ]

    def __init__(
        self,
        record: PersonaRecord,
        *,
        provider: Provider,
        settings: Settings,
        estimates: EstimateBook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.record = record
        self.provider = provider
        self.settings = settings
        self.estimates = estimates
        self.clock = clock
        self.transcripts = TranscriptStore(settings.transcripts_dir)
        self.turns: list[Turn] = []
        self.cancel: asyncio.Event | None = None
        self.question = ""
        self.streamed: list[str] = []
        self.thought: list[str] = []
        self.failure: Text | None = None
        self._drawn: tuple[int, int, bool] = (0, 0, False)

    @property
    def answering(self) -> bool:
        return self.cancel is not None

    def compose(self) -> ComposeResult:
        source = self.provider.label
        header = Text.assemble(("Interview  ", "bold"), who(self.record), (f"  ·  {source}", "dim"))
        yield Static(header, id="talk-header")
        with VerticalScroll(id="transcript"):
            yield Static(Text("Loading the transcript…", style="dim"), id="earlier")
            yield Static("", id="live")
        yield AnswerPanel(clock=self.clock, id="answer-panel")
        first = one_line(self.record.persona.name).split(" ")[0]
        yield Input(placeholder=f"Ask {first} a question and press Enter", id="question", max_length=QUESTION_MAX)
        yield Footer()

    def on_mount(self) -> None:
        self.panel = self.query_one(AnswerPanel)
        self.live = self.query_one("#live", Static)
        self.query_one("#question", Input).focus()
        self.set_interval(TICK, self.tick)
        self._load()

    @work(group="transcript", exit_on_error=False)
    async def _load(self) -> None:
        try:
            self.turns = await self.transcripts.read(self.record.id)
        except StoreError as err:
            self.notify(f"{err.message} {app_hint(err.hint)}".strip(), severity="error", markup=False)
        self.show_transcript()

    def show_transcript(self) -> None:
        name = self.record.persona.name
        if not self.turns:
            first = one_line(name).split(" ")[0]
            text = Text(f"No conversation with {first} yet. Ask anything below.", style="dim")
        else:
            text = Text(f"{len(self.turns)} turn(s) so far, kept in the data folder's transcripts/\n\n", style="dim")
            for n, turn in enumerate(self.turns):
                if n:
                    text.append("\n\n")
                text.append_text(
                    turn_text(name, turn.question, turn.answer, stopped=turn.stopped, flags=tuple(turn.flags))
                )
        self.query_one("#earlier", Static).update(text)
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)

    # ----- asking -----

    @on(Input.Submitted, "#question")
    def _asked(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.answering:
            self.notify("An answer is being written; Esc stops it.", markup=False)
            return
        event.input.value = ""
        self.begin(question)
        self._answer(question)

    def begin(self, question: str) -> None:
        """Show the question and the live feedback at once, before the first event."""
        self.question = question
        self.cancel = asyncio.Event()
        self.streamed, self.thought, self.failure = [], [], None
        self.panel.begin(1)
        self.draw_live(force=True)

    @work(group="answer", exclusive=True, exit_on_error=False)
    async def _answer(self, question: str) -> None:
        assert self.cancel is not None
        try:
            async for item in interview_turn(
                self.record,
                self.turns,
                question,
                provider=self.provider,
                settings=self.settings,
                transcripts=self.transcripts,
                estimates=self.estimates,
                cancel=self.cancel,
                clock=self.clock,
            ):
                if isinstance(item, Turn):
                    self.kept(item)
                else:
                    self.handle_event(item)
        finally:
            self.cancel = None

    def handle_event(self, event: ev.Event) -> None:
        """Draw one engine event: cheap for tokens and thinking (they only queue text)."""
        self.panel.apply(event)
        if isinstance(event, ev.TokenDelta):
            self.streamed.append(event.text)
        elif isinstance(event, ev.ReasoningDelta):
            self.thought.append(event.text)
        elif isinstance(event, ev.StageStarted) and event.stage is ev.Stage.CALLING:
            self.streamed = []  # a retry starts the answer over
        elif isinstance(event, ev.Failed):
            self.failure = Text.assemble(
                ("✘ ", "bold red"), (one_line(event.message), "red"), f" {one_line(app_hint(event.hint))}"
            )
            self.draw_live(force=True)
        elif isinstance(event, ev.TalkFinished):
            self.draw_live(force=True)

    def kept(self, turn: Turn) -> None:
        """The turn is saved: it joins the transcript, the live block empties."""
        self.turns.append(turn)
        self.question, self.streamed, self.thought = "", [], []
        self.show_transcript()
        self.draw_live(force=True)

    def tick(self) -> None:
        self.panel.tick()
        self.draw_live()

    def draw_live(self, *, force: bool = False) -> None:
        """The question being answered, the model's thinking and the answer so far; redrawn only when they grew."""
        key = (len(self.streamed), len(self.thought), self.failure is not None)
        if not force and key == self._drawn:
            return
        self._drawn = key
        text = Text()
        if self.question:
            text.append("You: ", style="bold")
            text.append(strip_control(self.question))
            thought = "".join(self.thought)
            if thought.strip():
                text.append("\nThinking: ", style="dim bold")
                text.append(strip_control(thought[-THINKING_SHOWN:]), style="dim italic")
            text.append(f"\n{strip_control(self.record.persona.name, keep_newlines=False)}: ", style="bold cyan")
            text.append(strip_control("".join(self.streamed)))
            if self.answering:
                text.append("▌", style="cyan")
        if self.failure is not None:
            text.append("\n" if text else "")
            text.append_text(self.failure)
        self.live.update(text)
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)

    # ----- keys -----

    def action_stop_or_close(self) -> None:
        """Esc: stop the answer being written (the conversation stays), else close the interview."""
        if self.cancel is not None:
            self.cancel.set()
            return
        self.dismiss()

    @work(group="export", exit_on_error=False)
    async def action_export_markdown(self) -> None:
        if not self.turns:
            self.notify("Nothing to export yet: ask a question first.", markup=False)
            return
        name = slugify(self.record.persona.name)
        target = Path(self.settings.data_dir) / "exports" / f"interview-{name}-{self.record.id[:8]}.md"
        try:
            await atomic_write(target, transcript_markdown(self.record, self.turns).encode("utf-8"))
        except OSError as exc:
            self.notify(f"Could not write {target}: {exc.strerror or exc}.", severity="error", markup=False)
            return
        self.notify(f"The interview is in {target}.", title="Exported", markup=False)


async def open_interview(
    app: App[None],
    store: PersonaStore,
    persona_id: str | None,
    *,
    provider: Provider,
    settings: Settings,
    estimates: EstimateBook | None,
    clock: Callable[[], float],
) -> None:
    """Read the persona (its one file) and open the interview with it."""
    if persona_id is None:
        app.notify("No persona to interview yet: generate one first.", markup=False)
        return
    try:
        record, _ = await store.find(persona_id)
    except StoreError as err:
        app.notify(f"{err.message} {app_hint(err.hint)}".strip(), severity="error", markup=False)
        return
    await app.push_screen(
        InterviewScreen(record, provider=provider, settings=settings, estimates=estimates, clock=clock)
    )
