"""The generation panel: what is happening now, how long it took, how long it will take.

The panel keeps plain state fed by :meth:`GenerationPanel.apply` (one call per
engine event, cheap enough for thousands of tokens a second) and redraws on
its own timer, a few times a second, from that state and its clock. So the
elapsed time ticks and the heartbeat counts up even while no event arrives,
and a burst of tokens costs one redraw, not one per token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from persona_tui.engine import events as ev
from persona_tui.engine.events import Stage
from persona_tui.present import fmt_seconds, one_line

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
CHECKLIST = [s for s in Stage if s not in (Stage.DONE, Stage.THINKING)]
SHORT = {
    Stage.PREPARING: "Prep",
    Stage.ORGANIZATION: "Org",
    Stage.ENRICHING: "Enrich",
    Stage.PROMPT: "Prompt",
    Stage.CALLING: "Call",
    Stage.THINKING: "Think",
    Stage.STREAMING: "Stream",
    Stage.VALIDATING: "Check",
    Stage.SAVING: "Save",
}


@dataclass(slots=True)
class Lane:
    """One persona in flight in a batch."""

    stage: Stage = Stage.PROMPT
    tokens: int = 0
    rate: float = 0.0
    fraction: float = 0.0
    waiting_since: float | None = None


@dataclass(slots=True)
class StageState:
    status: str = "pending"
    """pending, active, done, skipped or failed."""
    seconds: float = 0.0
    note: str = ""


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
        self.count = 1
        self.index = 0
        self.stage: Stage | None = None
        self.detail = ""
        self.stages: dict[Stage, StageState] = {s: StageState() for s in CHECKLIST}
        self.started = 0.0
        self.fraction = 0.0
        self.predicted_total: float | None = None
        self.expected_first_token: float | None = None
        self.waiting_since: float | None = None
        self.tokens = 0
        self.rate = 0.0
        self.slow_after: float | None = None
        self.retry_until: float | None = None
        self.retry_text = ""
        self.outcome: Text | None = None
        self.saved = 0
        self.failed = 0
        self.lanes: dict[int, Lane] = {}
        self.frozen_elapsed: float | None = None
        self._hint_lines = 0

    def tick(self) -> None:
        """Redraw the clock and the spinner (the app calls this on its clock); lay out again only if
        the hint changed its height.

        Events that change the panel's shape refresh with layout themselves; a
        tick changes text only, except when a countdown or a wait crosses into
        another hint, and a layout every tick would cost the whole screen's.
        """
        if not self.running:
            return
        lines = self._hint().plain.count("\n")
        self.refresh(layout=lines != self._hint_lines)
        self._hint_lines = lines

    def begin(self, count: int) -> None:
        """Show the new generation at once, before the first event arrives."""
        self.reset()
        self.count = count
        self.started = self.clock()
        self.stage = Stage.PREPARING
        self.detail = "Validating the request"
        self.running = True
        self.refresh(layout=True)

    def elapsed(self) -> float:
        if self.frozen_elapsed is not None:
            return self.frozen_elapsed
        return self.clock() - self.started if self.started else 0.0

    @property
    def is_batch(self) -> bool:
        return self.count > 1

    def _apply_lane(self, event: ev.Event, now: float) -> None:
        """A batch keeps a small state per persona in flight."""
        index = getattr(event, "index", None)
        if index is None:
            return
        match event:
            case ev.StageStarted(stage=stage) if stage is not Stage.PREPARING:
                self.lanes.setdefault(index, Lane()).stage = stage
            case ev.RequestSent():
                self.lanes.setdefault(index, Lane()).waiting_since = now
            case ev.TokenDelta(tokens=tokens, tokens_per_second=rate):
                lane = self.lanes.setdefault(index, Lane())
                lane.tokens, lane.rate, lane.waiting_since = tokens, rate, None
            case ev.Progress(persona_fraction=own) if index in self.lanes:
                self.lanes[index].fraction = max(self.lanes[index].fraction, own)
            case ev.PersonaSaved() | ev.Failed():
                self.lanes.pop(index, None)
            case _:
                pass

    def apply(self, event: ev.Event) -> None:
        """Fold one engine event into the panel's state."""
        now = self.clock()
        if self.is_batch:
            self._apply_lane(event, now)
        match event:
            case ev.StageStarted(stage=stage, detail=detail, index=index):
                if index != self.index or stage is Stage.PROMPT:
                    self.index = index
                    if stage is Stage.PROMPT:
                        for later in CHECKLIST[CHECKLIST.index(Stage.PROMPT) :]:
                            self.stages[later] = StageState()
                self.stage = stage
                self.detail = detail
                self.stages[stage] = StageState("active")
                if stage not in (Stage.CALLING, Stage.STREAMING):
                    self.waiting_since = None
                if stage is Stage.CALLING:
                    self.tokens, self.rate = 0, 0.0
            case ev.StageFinished(stage=stage, seconds=seconds):
                self.stages[stage] = StageState("done", seconds)
                if stage is Stage.STREAMING:
                    self.waiting_since = None
            case ev.StageSkipped(stage=stage, reason=reason):
                self.stages[stage] = StageState("skipped", note=reason)
            case ev.RequestSent(model=model, endpoint=endpoint, expected_first_token=expected):
                self.waiting_since = now
                self.expected_first_token = expected
                self.retry_until = None
                self.detail = f"{model} at {endpoint}"
            case ev.FirstToken():
                self.waiting_since = None
            case ev.TokenDelta(tokens=tokens, tokens_per_second=rate):
                self.tokens, self.rate = tokens, rate
                self.waiting_since = now
            case ev.Progress(fraction=fraction, elapsed=elapsed, eta=eta):
                self.fraction = max(self.fraction, fraction)
                if eta is not None:
                    self.predicted_total = elapsed + eta
            case ev.Heartbeat():
                pass
            case ev.SlowWarning(threshold=threshold):
                self.slow_after = threshold
            case ev.Retrying(attempt=attempt, max_attempts=most, delay=delay, reason=reason):
                self.retry_until = now + delay
                self.retry_text = f"{one_line(reason)} Retrying, attempt {attempt} of {most}"
                self.stages[Stage.CALLING] = StageState("failed", note="retrying")
            case ev.PersonaSaved(seconds=seconds, tokens=tokens, tokens_per_second=rate, record=record):
                self.saved += 1
                self.outcome = Text(
                    f"✔ Saved {one_line(record.persona.name)} in {fmt_seconds(seconds)}, "
                    f"{tokens} tokens, {rate:.0f} tok/s",
                    style="bold green",
                )
            case ev.Failed(message=message, hint=hint):
                self.failed += 1
                if self.stage is not None and self.stage in self.stages:
                    self.stages[self.stage] = StageState("failed")
                self.outcome = Text.assemble((f"✘ {message}", "bold red"), (f"\n{hint}" if hint else "", "italic"))
            case ev.Cancelled(elapsed=elapsed, saved=saved):
                if self.stage is not None and self.stages.get(self.stage, StageState()).status == "active":
                    self.stages[self.stage] = StageState("failed", note="cancelled")
                kept = f"; {len(saved)} of {self.count} saved" if self.count > 1 else ""
                self.outcome = Text(f"■ Cancelled after {fmt_seconds(elapsed)}{kept}", style="bold yellow")
            case ev.Finished(summary=summary):
                self.frozen_elapsed = summary.seconds
                if self.is_batch and not summary.cancelled:
                    failed = f", {summary.failed} failed" if summary.failed else ""
                    mark, style = ("✔", "bold green") if summary.ok else ("■", "bold yellow")
                    self.outcome = Text(
                        f"{mark} {len(summary.saved)} of {self.count} saved in {fmt_seconds(summary.seconds)}{failed}",
                        style=style,
                    )
                self.stage = Stage.DONE if summary.ok else self.stage
                if summary.ok:
                    self.fraction = 1.0
                self.running = False
            case _:
                pass
        if not isinstance(event, ev.TokenDelta | ev.Progress | ev.PartialPersona | ev.Heartbeat):
            self.refresh(layout=True)

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
        if self.is_batch:
            return Group(self._status(), self._bar(), self._hint(), self._lanes())
        return Group(self._status(), self._bar(), self._hint(), self._checklist())

    def _lanes(self) -> Table:
        """One line per persona in flight: its stage, tokens and own small bar."""
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(no_wrap=True, ratio=3)
        grid.add_column(ratio=2)
        grid.add_column(no_wrap=True, width=4, justify="right")
        now = self.clock()
        for index in sorted(self.lanes):
            lane = self.lanes[index]
            if lane.stage is Stage.STREAMING:
                what = f"{lane.tokens} tok" + (f", {lane.rate:.0f}/s" if lane.rate else "")
            elif lane.stage is Stage.CALLING and lane.waiting_since is not None:
                what = f"waiting {now - lane.waiting_since:.0f} s"
            else:
                what = SHORT.get(lane.stage, lane.stage.label)
            grid.add_row(
                Text(f"[{index + 1}/{self.count}] {what}"),
                ProgressBar(total=1.0, completed=lane.fraction, width=None),
                Text(f"{lane.fraction * 100:.0f}%"),
            )
        return grid

    def _status(self) -> Text:
        batch = f"[{self.index + 1}/{self.count}] " if self.count > 1 else ""
        if not self.running:
            return self.outcome or Text("Done", style="bold green")
        spin = SPINNER[int(self.clock() * 10) % len(SPINNER)]
        if self.is_batch and self.lanes:
            failed = f", {self.failed} failed" if self.failed else ""
            return Text(
                f"{spin} Generating {self.count} personas: {self.saved} saved{failed}, {len(self.lanes)} in flight",
                style="bold",
            )
        if self.stage is Stage.STREAMING:
            rate = f", {self.rate:.0f} tok/s" if self.rate else ""
            return Text(f"{spin} {batch}Streaming: {self.tokens} tokens{rate}", style="bold")
        text = Text(f"{spin} {batch}{self.stage.label if self.stage else ''}", style="bold")
        if self.detail:
            text.append(f"  {one_line(self.detail)}", style="")
        return text

    def _bar(self) -> Table:
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True)
        elapsed = self.elapsed()
        timing = fmt_clock(elapsed) if self.running else fmt_seconds(elapsed)
        if self.predicted_total is not None and self.running:
            timing += f" / ~{fmt_clock(max(self.predicted_total, elapsed))}"
        grid.add_row(
            ProgressBar(total=1.0, completed=self.fraction, width=None),
            Text(f"{self.fraction * 100:3.0f}%  {timing}"),
        )
        return grid

    def _hint(self) -> Text:
        if not self.running:
            return Text("")
        now = self.clock()
        if self.retry_until is not None and now < self.retry_until:
            return Text(f"↻ {self.retry_text} in {self.retry_until - now:.0f} s", style="yellow")
        hints = Text()
        if self.slow_after is not None:
            hints.append(
                f"⚠ Slower than usual: past {fmt_seconds(self.slow_after)}. Esc cancels.\n", style="bold yellow"
            )
        if self.waiting_since is not None:
            idle = now - self.waiting_since
            if self.stage is Stage.CALLING and idle < 3:
                usual = ""
                if self.predicted_total:
                    scope = "for this model" if self.count == 1 else "for the batch"
                    usual = f"usually ~{fmt_seconds(self.predicted_total)} {scope}; "
                first = fmt_seconds(self.expected_first_token or 0)
                hints.append(f"Request sent: {usual}first token in ~{first}", style="dim")
            elif idle >= 3:
                what = "the model" if self.stage is Stage.CALLING else "the next token"
                hints.append(f"… still waiting for {what}, {idle:.0f} s", style="yellow")
        elif self.saved and self.outcome is not None:
            hints.append_text(self.outcome)
        hints.rstrip()
        return hints

    def _checklist(self) -> RenderableType:
        """Every stage with its state: one per line when the screen is tall, else items that never break."""
        tall = self.has_class("-tall")
        items = [self._stage_item(stage, tall) for stage in CHECKLIST]
        if tall:
            return Text("\n").join(items)
        return Columns(items, padding=(0, 2))

    def _stage_item(self, stage: Stage, tall: bool) -> Text:
        state = self.stages[stage]
        name = stage.label if tall else SHORT[stage]
        if state.status == "done":
            return Text.assemble(("✓ ", "green"), f"{name} {fmt_seconds(state.seconds)}")
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
