"""Live feedback for ``persona-tui generate``, drawn on stderr with rich.

It draws the same events the app draws, in the same words (from
:mod:`persona_tui.narrate`): a line per finished stage with its time, a
progress bar with elapsed time, ETA and tokens per second, and slow warnings,
retries and adapted steps as they happen. A wait is told once (its first
heartbeat); the bar then counts it, and a reasoning model's thinking, on. For a batch there is an overall bar and
one small bar per persona in flight, kept from the same :class:`BatchState`
the app's panel draws; above a dozen in flight, one line of counts by stage and
tokens a second instead, and a bar for each of the slowest few (a bar each for
50 personas slowed the streams themselves). The per-stage lines are kept to the
milestones so parallel streams stay readable. Model text reaches the terminal only through
:func:`one_line` and never as markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from persona_tui.batch_state import PER_PERSONA, SLOWEST, BatchState
from persona_tui.engine import events as ev
from persona_tui.narrate import (
    Line,
    Scope,
    Tone,
    aggregate_line,
    batch_status,
    console_voice,
    describe_event,
    event_details,
    lane_status,
    plain_progress,
    slow_lane_status,
    slowest_heading,
)
from persona_tui.present import fmt_seconds

STYLES = {
    Tone.INFO: "bold",
    Tone.PROGRESS: "cyan",
    Tone.OK: "green",
    Tone.SUCCESS: "bold green",
    Tone.DIM: "dim",
    Tone.WARN: "yellow",
    Tone.STOPPED: "bold yellow",
    Tone.ERROR: "bold red",
    Tone.HINT: "red",
}
"""Each tone's look on a terminal."""
PLAIN_EVERY = 5.0
"""Seconds of quiet after which a stderr that is not a terminal (a pipe, TERM=dumb), where no bar is
drawn, gets a plain progress line."""
WIDE_EVERY = 0.1
"""Seconds between redraws of a big batch's aggregate line and slowest bars (the bars refresh 10 times a second)."""


class BatchProgress(Progress):
    """Rich's progress display with room for a line of words under the first bar (a big batch's aggregate)."""

    summary: Text | None = None

    def get_renderables(self) -> Iterable[RenderableType]:
        if self.summary is None or not self.tasks:
            yield from super().get_renderables()
            return
        tasks = self.tasks
        yield self.make_tasks_table(tasks[:1])
        yield self.summary
        if len(tasks) > 1:
            yield self.make_tasks_table(tasks[1:])


class HeadlessRenderer:
    """Turns pipeline events into lines and live bars on a rich console."""

    def __init__(
        self,
        console: Console,
        *,
        count: int,
        provider_label: str,
        clock: Callable[[], float] = time.monotonic,
        already: int = 0,
        done: str = "saved",
    ) -> None:
        self.console = console
        self.done = done
        """What a finished lane is: a persona "saved", or an answer "answered"."""
        self.count = count
        self.batch = count > 1
        self.voice = console_voice(provider_label)
        self.clock = clock
        self.state = BatchState.begin(count, clock(), already)
        self.progress = BatchProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("{task.fields[timing]}"),
            console=console,
            transient=True,
            refresh_per_second=10,
        )
        self.task: TaskID | None = None
        """The whole run's bar (the only one for a single persona)."""
        self.lanes: dict[int, TaskID] = {}
        """One bar per persona in flight, in a batch (the state's lanes, drawn)."""
        self.slow: list[TaskID] = []
        """A big batch's bars for its slowest personas in flight (:meth:`BatchState.aggregate`), not a bar each."""
        self._wide_at = float("-inf")
        """When the aggregate was last drawn."""
        self.plain = not console.is_interactive
        """No bars can be drawn (a pipe, TERM=dumb): a plain progress line every few seconds instead."""
        self._said_at = self.state.started
        """When the last line was printed (for the plain progress lines)."""

    def __enter__(self) -> HeadlessRenderer:
        self.progress.start()
        self.task = self.progress.add_task("Starting", total=1.0, timing="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    @property
    def saved(self) -> int:
        return self.state.saved

    def handle(self, event: ev.Event) -> None:
        """Fold the event into the state, redraw the bars it touched, print its line if it has one."""
        assert self.task is not None
        index = getattr(event, "index", 0)
        # A wait that goes on is told once; the bar counts on (a line every beat would fill the scrollback).
        again = isinstance(event, ev.Heartbeat) and self._still_waiting(index)
        self.state.apply(event, self.clock())
        if isinstance(event, ev.Progress):
            self._progress(event)
        elif isinstance(event, ev.Finished):
            self._finish(event.summary.ok)
        elif isinstance(event, ev.TalkFinished):
            self._finish(event.ok)
        else:
            self._describe(event, index)
        line = describe_event(event, self.count, self.voice, lane=self.state.lanes.get(index))
        if line is not None and not again and not (self.batch and line.scope is Scope.LANE):
            self._print(line)
            for detail in event_details(event):
                self.progress.console.print(Text(detail, style="dim"), highlight=False)
        elif self.plain:
            self._plain_progress()

    def _plain_progress(self) -> None:
        """After a few quiet seconds, where no bar is drawn: one plain line on how the work goes."""
        now = self.clock()
        if now - self._said_at < PLAIN_EVERY or not self.state.running:
            return
        state = self.state
        if self.batch:
            words = batch_status(self.count, state.saved, state.failed, len(state.lanes), console=True, done=self.done)
            if state.aggregated and state.lanes:
                words = f"{words}; {aggregate_line(state.aggregate(now))}"
        else:
            lane = state.lanes.get(state.index)
            if lane is None:
                return
            words = lane_status(lane, now=now)
        self._said_at = now
        self.progress.console.print(Text(f"… {plain_progress(words, state.elapsed(now))}"), highlight=False)

    def _still_waiting(self, index: int) -> bool:
        """Whether a heartbeat has already been heard since this persona's last sign of life."""
        lane = self.state.lanes.get(index)
        return lane is not None and lane.idle is not None

    def _print(self, line: Line) -> None:
        self._said_at = self.clock()
        style = STYLES[line.tone]
        text = Text(f"{line.symbol} ", style=style)
        text.append(line.text, style=style)
        self.progress.console.print(text, highlight=False)
        if line.note:
            self.progress.console.print(Text(f"  {line.note}", style=STYLES[line.note_tone]), highlight=False)

    def _describe(self, event: ev.Event, index: int) -> None:
        """The words on the bar this event changed: the run's, or in a batch the persona's own."""
        assert self.task is not None
        if isinstance(event, ev.StageStarted) and event.stage not in PER_PERSONA:
            self.progress.update(self.task, description=event.stage.label)
            return
        lane = self.state.lanes.get(index)
        if not self.batch:
            if lane is not None:
                self.progress.update(self.task, description=lane_status(lane, now=self.clock()))
            return
        if self.state.aggregated:
            self._wide(quiet=isinstance(event, ev.TokenDelta | ev.ReasoningDelta | ev.Heartbeat))
            return
        task = self.lanes.get(index)
        if lane is None:
            if task is not None:
                self.progress.remove_task(self.lanes.pop(index))
        elif task is None:
            self.lanes[index] = self.progress.add_task(self._lane_words(index), total=1.0, timing="")
        else:
            self.progress.update(task, description=self._lane_words(index))
        if not isinstance(event, ev.TokenDelta | ev.ReasoningDelta | ev.Heartbeat):
            self._overall()

    def _wide(self, *, quiet: bool) -> None:
        """More than a dozen in flight: the overall bar, one line of counts by stage and tokens a second,
        and a bar for each of the slowest few, drawn a few times a second, not once per event."""
        now = self.clock()
        if not self.slow:  # the switch: the bars each persona had make way for the slowest few
            for task in self.lanes.values():
                self.progress.remove_task(task)
            self.lanes.clear()
            self.slow = [self.progress.add_task("", total=1.0, timing="", visible=False) for _ in range(SLOWEST)]
        elif quiet and now - self._wide_at < WIDE_EVERY:
            return
        self._wide_at = now
        state = self.state
        summary = state.aggregate(now, SLOWEST)
        self.progress.summary = Text(f"  {aggregate_line(summary)}", style="cyan")
        if summary.slowest:
            self.progress.summary.append(f"\n  {slowest_heading(len(summary.slowest), len(state.lanes))}", style="dim")
        for row, task in enumerate(self.slow):
            if row < len(summary.slowest):
                index, lane = summary.slowest[row]
                words = f"  [{index + 1}/{self.count}] {slow_lane_status(lane, now)}"
                self.progress.update(task, description=words, completed=lane.fraction, visible=True)
            else:
                self.progress.update(task, visible=False)
        if not quiet:
            self._overall()

    def _lane_words(self, index: int) -> str:
        return f"  [{index + 1}/{self.count}] {lane_status(self.state.lanes[index], now=self.clock())}"

    def _overall(self) -> None:
        assert self.task is not None
        state = self.state
        words = batch_status(self.count, state.saved, state.failed, len(state.lanes), console=True, done=self.done)
        self.progress.update(self.task, description=words)

    def _progress(self, event: ev.Progress) -> None:
        assert self.task is not None
        eta = event.eta
        timing = fmt_seconds(event.elapsed) + (f" / ~{fmt_seconds(event.elapsed + eta)}" if eta is not None else "")
        self.progress.update(self.task, completed=event.fraction, timing=timing)
        lane = self.state.lanes.get(event.index)
        if self.batch and lane is not None and event.index in self.lanes:
            self.progress.update(self.lanes[event.index], completed=lane.fraction)

    def _finish(self, ok: bool) -> None:
        assert self.task is not None
        for task in [*self.lanes.values(), *self.slow]:
            self.progress.remove_task(task)
        self.lanes.clear()
        self.slow.clear()
        self.progress.summary = None
        self.progress.update(self.task, completed=1.0 if ok else None)
