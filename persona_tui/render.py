"""Live feedback for ``persona-tui generate``, drawn on stderr with rich.

It draws the same events the app draws: a line per finished stage with its
time, a progress bar with elapsed time, ETA and tokens per second, and
heartbeats, slow warnings and retries as they happen. For a batch there is an
overall bar and one small bar per persona in flight; the per-stage lines are
kept to the milestones so parallel streams stay readable. Model text reaches
the terminal only through :func:`one_line` and never as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from persona_tui.engine import events as ev
from persona_tui.present import fmt_seconds, one_line

QUIET_IN_BATCH = {ev.Stage.PROMPT, ev.Stage.CALLING, ev.Stage.STREAMING, ev.Stage.VALIDATING, ev.Stage.SAVING}
"""Stage lines not printed per persona in a batch: the per-persona bars show them."""


def saved_line(event: ev.PersonaSaved) -> str:
    p = event.record.persona
    who = one_line(f"{p.name} ({p.age}, {p.occupation})")
    return f"Saved {who} in {fmt_seconds(event.seconds)}, {event.tokens} tokens, {event.tokens_per_second:.0f} tok/s"


class HeadlessRenderer:
    """Turns pipeline events into lines and live bars on a rich console."""

    def __init__(self, console: Console, *, count: int, provider_label: str) -> None:
        self.console = console
        self.count = count
        self.batch = count > 1
        self.provider_label = provider_label
        self.progress = Progress(
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
        """One bar per persona in flight, in a batch."""
        self.saved = 0

    def __enter__(self) -> HeadlessRenderer:
        self.progress.start()
        self.task = self.progress.add_task("Starting", total=1.0, timing="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _line(self, symbol: str, text: str, style: str = "") -> None:
        line = Text(f"{symbol} ", style=style or "bold")
        line.append(text, style=style)
        self.progress.console.print(line, highlight=False)

    def _prefix(self, index: int) -> str:
        return f"[{index + 1}/{self.count}] " if self.batch else ""

    def _lane(self, index: int) -> TaskID:
        """The bar that shows this persona: its own in a batch, the main one otherwise."""
        assert self.task is not None
        if not self.batch:
            return self.task
        if index not in self.lanes:
            self.lanes[index] = self.progress.add_task(f"  [{index + 1}/{self.count}] Starting", total=1.0, timing="")
        return self.lanes[index]

    def _end_lane(self, index: int) -> None:
        task = self.lanes.pop(index, None)
        if task is not None:
            self.progress.remove_task(task)

    def _describe(self, index: int, text: str) -> None:
        indent = "  " if self.batch else ""
        self.progress.update(self._lane(index), description=f"{indent}{self._prefix(index)}{text}")

    def _overall(self) -> None:
        assert self.task is not None
        if self.batch:
            self.progress.update(
                self.task, description=f"{self.saved} of {self.count} saved, {len(self.lanes)} in flight"
            )

    def handle(self, event: ev.Event) -> None:
        assert self.task is not None
        quiet = self.batch and getattr(event, "stage", None) in QUIET_IN_BATCH
        match event:
            case ev.StageStarted(stage=stage, detail=detail, index=index):
                if stage is ev.Stage.ENRICHING:
                    self.progress.update(self.task, description=stage.label)
                    self._line("›", one_line(detail), "cyan")
                elif stage is ev.Stage.PREPARING:
                    self.progress.update(self.task, description=stage.label)
                    self._line("›", detail, "cyan")
                else:
                    self._describe(index, stage.label)
                    self._overall()
            case ev.StageFinished(stage=stage, seconds=seconds, index=index, note=note) if not quiet:
                batch_wide = stage in (ev.Stage.PREPARING, ev.Stage.ORGANIZATION, ev.Stage.ENRICHING)
                prefix = "" if batch_wide else self._prefix(index)
                found = f"  {one_line(note)}" if note else ""
                self._line("✓", f"{prefix}{stage.label:<30} {fmt_seconds(seconds)}{found}", "green")
            case ev.StageSkipped(stage=stage, reason=reason):
                self._line("–", f"{stage.label:<30} skipped: {reason}", "dim")
            case ev.RequestSent(model=model, endpoint=endpoint, expected_first_token=expected, index=index):
                self._describe(index, f"Waiting for {model}")
                if not self.batch:
                    expect = f"first token usually in ~{fmt_seconds(expected)}"
                    self._line("→", f"Request sent to {model} at {endpoint}; {expect}", "cyan")
            case ev.FirstToken(seconds=seconds, index=index) if not self.batch:
                self._line("✓", f"First token after {fmt_seconds(seconds)}", "green")
            case ev.TokenDelta(tokens=tokens, tokens_per_second=rate, index=index):
                self._describe(index, f"Streaming: {tokens} tokens" + (f", {rate:.0f} tok/s" if rate else ""))
            case ev.Progress(fraction=fraction, elapsed=elapsed, eta=eta, persona_fraction=own, index=index):
                timing = fmt_seconds(elapsed) + (f" / ~{fmt_seconds(elapsed + eta)}" if eta is not None else "")
                self.progress.update(self.task, completed=fraction, timing=timing)
                if self.batch and index in self.lanes:
                    self.progress.update(self.lanes[index], completed=own)
            case ev.Heartbeat(idle=idle, index=index):
                if self.batch:
                    self._describe(index, f"Waiting for the model: {idle:.0f} s")
                else:
                    self._line(
                        "…", f"Still waiting for {self.provider_label}: nothing for {fmt_seconds(idle)}", "yellow"
                    )
            case ev.SlowWarning(threshold=threshold, index=index):
                self._line(
                    "!",
                    f"{self._prefix(index)}Slower than usual: past {fmt_seconds(threshold)}; Ctrl-C cancels",
                    "yellow",
                )
            case ev.Retrying(attempt=attempt, max_attempts=most, delay=delay, reason=reason, index=index):
                wait = f"Retrying in {fmt_seconds(delay)}" if delay > 0 else "Retrying"
                self._line(
                    "↻", f"{self._prefix(index)}{one_line(reason)} {wait}, attempt {attempt} of {most}", "yellow"
                )
            case ev.PersonaSaved(path=path, index=index):
                self.saved += 1
                self._end_lane(index)
                self._overall()
                self._line("✔", f"{self._prefix(index)}{saved_line(event)}", "bold green")
                self._line(" ", str(path), "dim")
            case ev.Failed(message=message, hint=hint, index=index):
                self._end_lane(index)
                self._overall()
                self._line("✘", f"{self._prefix(index)}{message}", "bold red")
                if hint:
                    self._line(" ", hint, "red")
            case ev.Cancelled(elapsed=elapsed, saved=saved):
                self._line(
                    "■", f"Cancelled after {fmt_seconds(elapsed)}; {len(saved)} of {self.count} saved", "bold yellow"
                )
            case ev.Finished(summary=summary):
                for index in list(self.lanes):
                    self._end_lane(index)
                self.progress.update(self.task, completed=1.0 if summary.ok else None)
                if self.batch and summary.saved and not summary.cancelled:
                    self._line(
                        "■" if not summary.ok else "✔",
                        f"{len(summary.saved)} of {self.count} saved in {fmt_seconds(summary.seconds)}",
                        "bold",
                    )
            case _:
                pass
