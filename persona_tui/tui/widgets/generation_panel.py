"""The generation panel: what is happening now, how long it took, how long it will take.

The panel draws a :class:`BatchState`, which :meth:`GenerationPanel.apply`
folds each engine event into (cheap enough for thousands of tokens a second),
and redraws on the app's clock, a few times a second, from that state. So the
elapsed time ticks and the heartbeat counts up even while no event arrives,
and a burst of tokens costs one redraw, not one per token. The screen is laid
out again only when the panel's height changes (:meth:`GenerationPanel.shape`).
A batch has a row per persona in flight; above a dozen, one line of counts by
stage and the slowest few rows instead. Its words come from
:mod:`persona_tui.narrate`, like the log's and the terminal's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from persona_tui.batch_state import PER_PERSONA, SLOWEST, BatchState, Lane
from persona_tui.engine import events as ev
from persona_tui.engine.events import Stage
from persona_tui.narrate import (
    SHORT,
    Tone,
    aggregate_line,
    batch_status,
    lane_brief,
    outcome_line,
    reasoning_rate,
    retry_sentence,
    slow_lane_brief,
    slow_sentence,
    slowest_heading,
    stage_done,
    step_sentence,
    streaming_status,
    thinking_status,
    waiting_hint,
)
from persona_tui.present import fmt_seconds, one_line

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STYLES = {
    Tone.SUCCESS: "bold green",
    Tone.STOPPED: "bold yellow",
    Tone.ERROR: "bold red",
    Tone.HINT: "italic",
    Tone.DIM: "dim",
    Tone.WARN: "yellow",
    Tone.PROGRESS: "cyan",
}
QUIET = (ev.TokenDelta, ev.ReasoningDelta, ev.Progress, ev.PartialPersona, ev.Heartbeat)
"""Events that change only text the next tick draws anyway: not even a refresh for them."""
SLOWEST_ROWS = SLOWEST
"""The slowest personas a big batch still shows a row each."""
Shape = tuple[object, ...]
"""What the panel's height depends on (see :meth:`GenerationPanel.shape`)."""


class GenerationPanel(Widget):
    """Stage, detail, checklist, progress bar, timing and the hint of the moment."""

    DEFAULT_CSS = """
    GenerationPanel {
        height: auto;
        padding: 0 1;
    }
    """

    running: reactive[bool] = reactive(False)
    """True from the key press until the pipeline has finished."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        model_label: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.clock = clock
        self.model_label = model_label
        self.reset()

    def reset(self) -> None:
        """Back to the idle state, before any generation."""
        self.state = BatchState()
        self._shape: Shape = ()

    # The state's fields the app and the tests read through the panel.
    stage = property(lambda self: self.state.stage)
    tokens = property(lambda self: self.state.tokens)
    waiting_since = property(lambda self: self.state.waiting_since)
    started = property(lambda self: self.state.started)

    @property
    def lanes(self) -> dict[int, Lane]:
        return self.state.lanes

    @property
    def rate(self) -> float:
        return self.state.rate

    @rate.setter
    def rate(self, value: float) -> None:
        self.state.rate = value

    @property
    def is_batch(self) -> bool:
        return self.state.is_batch

    @property
    def outcome(self) -> Text | None:
        """How the run (or its latest persona) ended, as the status line shows it."""
        event = self.state.outcome
        if event is None:
            return None
        line = outcome_line(event, self.state.count)
        if line.tone is not Tone.ERROR:
            return Text(f"{line.symbol} {line.text}", style=STYLES[line.tone])
        note = f"\n{line.note}" if line.note else ""
        return Text.assemble((f"{line.symbol} {line.text}", STYLES[line.tone]), (note, STYLES[line.note_tone]))

    def tick(self) -> None:
        """Redraw the clock and the spinner (the app calls this on its clock); lay out again only if
        the panel's height changed (a countdown or a wait crossing into another hint)."""
        if self.running:
            self._redraw()

    def _redraw(self) -> None:
        """Redraw the panel; lay out the screen again only when the panel's height may have changed.

        A layout costs the whole screen's, and a batch of 16 in flight sends
        dozens of stage events a second that change only text.
        """
        shape = self.shape()
        self.refresh(layout=shape != self._shape)
        self._shape = shape

    def shape(self) -> Shape:
        """What the panel's height depends on: whether it runs, the lines its status and hint take at
        the panel's width, its rows (a batch's personas in flight, or a big batch's few), the checklist's
        items (they wrap), and once the run has ended the outcome's lines."""
        state = self.state
        if state.stage is None:
            return ("idle", self.model_label)
        if not self.running:
            return (False, state.is_batch, self._lines(self.outcome or Text("Done")), self._checklist_shape())
        texts = [self._status(), self._hint()]
        if state.is_batch and state.aggregated:
            rows: object = ("wide", min(len(state.lanes), SLOWEST_ROWS))
        else:
            rows = len(state.lanes) if state.is_batch else None
        return (True, state.is_batch, self._lines(*texts), rows, self._checklist_shape())

    def _checklist_shape(self) -> object:
        if self.state.is_batch:
            return None
        if self.has_class("-tall"):
            return len(self.state.checklist())
        return tuple(item.plain for item in self._short_items())

    def _lines(self, *texts: Text) -> int:
        """The lines these texts take at the panel's width (their line breaks counted alone before it has one)."""
        width = self.content_size.width
        if width <= 0 or not self.is_attached:
            return sum(text.plain.count("\n") + 1 for text in texts)
        console = self.app.console
        return sum(len(text.wrap(console, width)) for text in texts)

    def begin(self, count: int, already: int = 0) -> None:
        """Show the new generation at once, before the first event arrives (``already`` saved before it)."""
        self.reset()
        self.state = BatchState.begin(count, self.clock(), already)
        self.running = True
        self._shape = self.shape()
        self.refresh(layout=True)

    def elapsed(self) -> float:
        return self.state.elapsed(self.clock())

    def apply(self, event: ev.Event) -> None:
        """Fold one engine event into the state and redraw; lay out again only when the height changed."""
        self.state.apply(event, self.clock())
        if not isinstance(event, QUIET):
            if isinstance(event, ev.Finished):
                self.running = False
            self._redraw()

    # ----- drawing -----

    def render(self) -> RenderableType:
        if self.stage is None:
            return Text.assemble(
                ("Ready. ", "bold"),
                "Describe the people you want and press ",
                ("ctrl+g", "bold"),
                ".",
                (f"\nModel: {self.model_label}" if self.model_label else "", "dim"),
            )
        # Once the run has ended there is no hint: its empty line would push the checklist's last row out at 80x24.
        hint = [self._hint()] if self.running else []
        if self.is_batch and self.state.aggregated and self.running:
            return Group(self._status(), self._bar(), *hint, *self._aggregate())
        if self.is_batch:
            return Group(self._status(), self._bar(), *hint, self._lanes())
        return Group(self._status(), self._bar(), *hint, self._checklist())

    def _lanes(self) -> Table:
        """One line per persona in flight: its stage, tokens and own small bar."""
        now = self.clock()
        lanes = [(index, self.lanes[index]) for index in sorted(self.lanes)]
        return self._rows(lanes, lambda lane: lane_brief(lane, now))

    def _aggregate(self) -> list[RenderableType]:
        """More than a dozen in flight: how many in each stage and their tokens a second, then the slowest few."""
        state, now = self.state, self.clock()
        summary = state.aggregate(now, SLOWEST_ROWS)
        line = Text(aggregate_line(summary, short=True), style="cyan", no_wrap=True, overflow="ellipsis")
        shown: list[RenderableType] = [line]
        if summary.slowest:
            shown.append(Text(slowest_heading(len(summary.slowest), len(state.lanes)), style="dim"))
            shown.append(self._rows(list(summary.slowest), lambda lane: slow_lane_brief(lane, now)))
        return shown

    def _rows(self, lanes: list[tuple[int, Lane]], brief: Callable[[Lane], str]) -> Table:
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(no_wrap=True, ratio=3)
        grid.add_column(ratio=2)
        grid.add_column(no_wrap=True, width=4, justify="right")
        for index, lane in lanes:
            grid.add_row(
                Text(f"[{index + 1}/{self.state.count}] {brief(lane)}"),
                ProgressBar(total=1.0, completed=lane.fraction, width=None),
                Text(f"{lane.fraction * 100:.0f}%"),
            )
        return grid

    def _status(self) -> Text:
        state = self.state
        if not self.running:
            return self.outcome or Text("Done", style="bold green")
        spin = SPINNER[int(self.clock() * 10) % len(SPINNER)]
        if state.is_batch and state.lanes:
            words = batch_status(state.count, state.saved, state.failed, len(state.lanes))
            return Text(f"{spin} {words}", style="bold")
        # A persona's tag only on a persona's stage: preparing and planning belong to the whole batch.
        per_persona = state.is_batch and state.stage in PER_PERSONA and state.index >= 0
        batch = f"[{state.index + 1}/{state.count}] " if per_persona else ""
        if state.stage is Stage.STREAMING:
            return Text(f"{spin} {batch}{streaming_status(state.tokens, state.rate)}", style="bold")
        if state.stage is Stage.THINKING and state.thinking_since is not None:
            rate = reasoning_rate(state.reasoning_tokens, state.reasoning_seconds)
            seconds = self.clock() - state.thinking_since
            thinking = thinking_status(state.reasoning_tokens, seconds, rate=rate, detail=state.thinking_detail)
            return Text(f"{spin} {batch}{thinking}", style="bold")
        text = Text(f"{spin} {batch}{state.stage.label if state.stage else ''}", style="bold")
        if state.detail:
            text.append(f"  {one_line(state.detail)}", style="")
        return text

    def _bar(self) -> Table:
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True)
        elapsed = self.elapsed()
        predicted = self.state.predicted_total
        timing = fmt_clock(elapsed) if self.running else fmt_seconds(elapsed)
        if predicted is not None and self.running:
            timing += f" / ~{fmt_clock(max(predicted, elapsed))}"
        grid.add_row(
            ProgressBar(total=1.0, completed=self.state.fraction, width=None),
            Text(f"{self.state.fraction * 100:3.0f}%  {timing}"),
        )
        return grid

    def _hint(self) -> Text:
        if not self.running:
            return Text("")
        state, now = self.state, self.clock()
        if state.retry is not None and state.retry_until is not None and now < state.retry_until:
            return Text(f"↻ {retry_sentence(state.retry, state.retry_until - now)}", style="yellow")
        hints = Text()
        if state.step is not None:
            hints.append(f"↷ {step_sentence(state.step)}\n", style=STYLES[Tone.PROGRESS])
        if state.slow_after is not None:
            hints.append(f"⚠ {slow_sentence(state.slow_after)}\n", style="bold yellow")
        # A big batch's latest request is one of dozens: its wait is not the batch's (the slowest rows show waits).
        if state.waiting_since is not None and not state.aggregated:
            idle = now - state.waiting_since
            first = state.expected_first_token or 0
            timeout = state.first_token_timeout
            hint = waiting_hint(state.stage, idle, state.count, state.predicted_total, first, timeout)
            if hint is not None:
                hints.append(f"{hint.symbol} {hint.text}".lstrip(), style=STYLES[hint.tone])
        elif state.saved and state.outcome is not None:
            hints.append_text(self.outcome or Text())
            if isinstance(state.outcome, ev.PersonaSaved):  # one line, whatever the name: the panel keeps its height
                hints.no_wrap, hints.overflow = True, "ellipsis"
        hints.rstrip()
        return hints

    def _checklist(self) -> RenderableType:
        """Every stage with its state: one per line when the screen is tall, else items that never break."""
        tall = self.has_class("-tall")
        if tall:
            return Text("\n").join(self._stage_item(stage, tall) for stage in self.state.checklist())
        return Columns(self._short_items(), padding=(0, 2))

    def _short_items(self) -> list[Text]:
        """Where room is short: the stages before the first persona, once all are done, are one item
        ("✓ Prep 13 ms", their times summed), and a skipped stage is left out (the log says why)."""
        stages = self.state.checklist()
        before = [stage for stage in stages if stage not in PER_PERSONA]
        states = [self.state.stages[stage] for stage in before]
        items = []
        if states and all(state.status in ("done", "skipped") for state in states):
            seconds = sum(state.seconds for state in states if state.status == "done")
            items.append(Text.assemble(("✓ ", "green"), stage_done(SHORT[Stage.PREPARING], seconds, tall=False)))
            stages = [stage for stage in stages if stage in PER_PERSONA]
        shown = [stage for stage in stages if self.state.stages[stage].status != "skipped"]
        return items + [self._stage_item(stage, False) for stage in shown]

    def _stage_item(self, stage: Stage, tall: bool) -> Text:
        state = self.state.stages[stage]
        name = stage.label if tall else SHORT[stage]
        if state.status == "done":
            return Text.assemble(("✓ ", "green"), stage_done(name, state.seconds, state.tokens, tall=tall))
        if state.status == "skipped":
            return Text(f"– {name}" + (f": skipped, {state.note}" if tall else ""), style="dim")
        if state.status == "active" and self.running:
            return Text(f"▸ {name}", style="bold cyan")
        if state.status == "failed":
            return Text(f"✘ {name}" + (f" ({state.note})" if state.note else ""), style="red")
        return Text(f"· {name}", style="dim")


def fmt_clock(seconds: float) -> str:
    """Whole seconds for a ticking clock: '12 s', '2:05'."""
    whole = int(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60}:{whole % 60:02d}"
