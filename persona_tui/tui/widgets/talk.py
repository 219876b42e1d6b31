"""Widgets for talking to personas: the answer's live feedback, one turn of a transcript, a focus group's lane.

:class:`AnswerPanel` is the generation panel without the persona's checklist: the stage of the answer
(calling, thinking, streaming at so many tokens a second), its progress bar with the time it will
probably take, and the hints of the moment (still waiting, slower than usual, retrying). Model text
reaches the screen only as rich ``Text`` with control sequences stripped, never as markup.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from persona_tui.batch_state import Lane
from persona_tui.engine import events as ev
from persona_tui.engine.text import strip_control
from persona_tui.narrate import flags_sentence, lane_brief, talk_summary
from persona_tui.present import fmt_seconds
from persona_tui.tui.widgets.generation_panel import SPINNER, GenerationPanel

THINKING_SHOWN = 400
"""Characters of the model's latest thinking shown above an answer being written."""


class AnswerPanel(GenerationPanel):
    """Live feedback for one question's answers (one, or a focus group's)."""

    DEFAULT_CSS = """
    AnswerPanel {
        height: auto;
        padding: 0 1;
    }
    """

    ended: ev.TalkFinished | None = None

    def apply(self, event: ev.Event) -> None:
        super().apply(event)
        if isinstance(event, ev.TalkFinished):
            self.ended = event
            self.running = False
            self._redraw()

    def begin(self, count: int, already: int = 0) -> None:
        self.ended = None
        super().begin(count, already)

    def render(self) -> RenderableType:
        if self.stage is None:
            return Text("")
        hint = [self._hint()] if self.running else []
        return Group(self._status(), self._bar(), *hint)

    def _status(self) -> Text:
        state = self.state
        if not self.running:
            if self.ended is not None and self.ended.count == 1 and self.ended.cancelled:
                line = f"■ Stopped after {fmt_seconds(self.ended.seconds)}; what arrived is kept"
                return Text(line, style="bold yellow")
            if self.ended is not None and self.ended.count > 1:
                return Text(f"■ {talk_summary(self.ended)}" if not self.ended.ok else f"✔ {talk_summary(self.ended)}")
            return self.outcome or Text("✔ Answered", style="bold green")
        if state.is_batch:
            spin = SPINNER[int(self.clock() * 10) % len(SPINNER)]
            failed = f", {state.failed} failed" if state.failed else ""
            words = f"Asking {state.count} personas: {state.saved} answered{failed}, {len(state.lanes)} in flight"
            return Text(f"{spin} {words}", style="bold")
        return super()._status()


def turn_text(name: str, question: str, answer: str, *, stopped: bool = False, flags: tuple[str, ...] = ()) -> Text:
    """One question and its answer, as a transcript shows them (model text stripped, never markup)."""
    text = Text()
    text.append("You: ", style="bold")
    text.append(strip_control(question))
    text.append("\n")
    text.append(f"{strip_control(name, keep_newlines=False)}: ", style="bold cyan")
    text.append(strip_control(answer) if answer else "(no answer)")
    if stopped:
        text.append("  (stopped; not sent back to the model)", style="dim italic")
    if flags:
        text.append(f"\n⚑ {flags_sentence(flags)}", style="yellow")
    return text


class LaneCard(Static):
    """One persona of a focus group: its name, the answer as it streams (or how it ended), its flags."""

    DEFAULT_CSS = """
    LaneCard {
        height: auto;
        min-height: 6;
        border: round $panel-lighten-2;
        padding: 0 1;
    }
    LaneCard.-flagged {
        border: round $warning;
    }
    LaneCard.-failed {
        border: round $error;
    }
    """

    def __init__(self, persona_id: str, name: str, summary: str, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.persona_id = persona_id
        self.persona_name = strip_control(name, keep_newlines=False)
        self.border_title = self.persona_name
        self.summary = summary
        self.earlier: list[tuple[str, str]] = []
        """Earlier questions of the group put to this persona, and its answers."""
        self.question = ""
        self.text: list[str] = []
        self.answer = ""
        self.flags: tuple[str, ...] = ()
        self.error = ""
        self.stopped = False
        self.asked = False
        self.lane: Lane | None = None
        self.drawn = ""

    def ask(self, question: str) -> None:
        if self.asked and (self.answer or self.text):
            self.earlier.append((self.question, self.answer or "".join(self.text)))
        self.question, self.text, self.answer, self.flags, self.error, self.stopped = question, [], "", (), "", False
        self.asked = True
        self.set_classes("")

    def draw(self, now: float) -> None:
        """Redraw when something changed (called a few times a second, never per token)."""
        renderable = self._content(now)
        key = repr((len(self.text), self.answer, self.error, self.stopped, self.flags, self._status(now)))
        if key != self.drawn:
            self.drawn = key
            self.update(renderable)

    def _status(self, now: float) -> str:
        if self.lane is not None:
            return lane_brief(self.lane, now)
        return ""

    def _content(self, now: float) -> RenderableType:
        parts: list[RenderableType] = [Text(self.summary, style="dim")]
        for asked, said in self.earlier:
            parts.append(Text.assemble(("Q: ", "dim bold"), (strip_control(asked), "dim")))
            parts.append(Text(strip_control(said), style="dim"))
        if self.asked:
            parts.append(Text.assemble(("Q: ", "bold"), strip_control(self.question)))
        if self.lane is not None:
            bar = Table.grid(expand=True)
            bar.add_column(ratio=1)
            bar.add_column(no_wrap=True)
            bar.add_row(Text(self._status(now), style="cyan"), Text(f" {self.lane.fraction * 100:3.0f}%"))
            bar.add_row(ProgressBar(total=1.0, completed=self.lane.fraction, width=None), "")  # in a grid: its own line
            parts.append(bar)
        said = self.answer or "".join(self.text)
        if said:
            parts.append(Text(strip_control(said)))
        if self.stopped:
            parts.append(Text("(stopped; what arrived is kept)", style="dim italic"))
        if self.error:
            parts.append(Text(f"✘ {strip_control(self.error)}", style="red"))
        if self.flags:
            parts.append(Text(f"⚑ {flags_sentence(self.flags)}", style="yellow"))
        return Group(*parts)

    def finish(self, *, answer: str = "", flags: tuple[str, ...] = (), error: str = "", stopped: bool = False) -> None:
        self.lane = None
        self.answer = answer or self.answer
        self.flags, self.error, self.stopped = flags, error or self.error, stopped
        self.set_class(bool(flags), "-flagged")
        self.set_class(bool(error), "-failed")
