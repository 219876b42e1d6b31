"""Live feedback for ``persona-tui generate``, drawn on stderr with rich.

It draws the same events the app draws: a line per finished stage with its
time, a progress bar with elapsed time, ETA and tokens per second, and
heartbeats, slow warnings and retries as they happen. Model text reaches the
terminal only through :func:`strip_control` and never as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from persona_tui.engine import events as ev
from persona_tui.present import fmt_seconds, one_line


def saved_line(event: ev.PersonaSaved) -> str:
    p = event.record.persona
    who = one_line(f"{p.name} ({p.age}, {p.occupation})")
    return f"Saved {who} in {fmt_seconds(event.seconds)}, {event.tokens} tokens, {event.tokens_per_second:.0f} tok/s"


class HeadlessRenderer:
    """Turns pipeline events into lines and a live bar on a rich console."""

    def __init__(self, console: Console, *, count: int, provider_label: str) -> None:
        self.console = console
        self.count = count
        self.provider_label = provider_label
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("{task.fields[timing]}"),
            TextColumn("{task.fields[rate]}"),
            console=console,
            transient=True,
            refresh_per_second=10,
        )
        self.task: TaskID | None = None
        self.stage_detail = "Starting"
        self.tokens = 0
        self.rate = 0.0

    def __enter__(self) -> HeadlessRenderer:
        self.progress.start()
        self.task = self.progress.add_task(self.stage_detail, total=1.0, timing="", rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _line(self, symbol: str, text: str, style: str = "") -> None:
        line = Text(f"{symbol} ", style=style or "bold")
        line.append(text, style=style)
        self.progress.console.print(line, highlight=False)

    def _prefix(self, index: int) -> str:
        return f"[{index + 1}/{self.count}] " if self.count > 1 else ""

    def _describe(self, text: str) -> None:
        self.stage_detail = text
        assert self.task is not None
        self.progress.update(self.task, description=text)

    def handle(self, event: ev.Event) -> None:
        assert self.task is not None
        match event:
            case ev.StageStarted(stage=stage, detail=detail, index=index):
                self.tokens = 0
                self._describe(f"{self._prefix(index)}{stage.label}")
                if stage is ev.Stage.PREPARING:
                    self._line("›", detail, "cyan")
            case ev.StageFinished(stage=stage, seconds=seconds, index=index):
                self._line("✓", f"{self._prefix(index)}{stage.label:<30} {fmt_seconds(seconds)}", "green")
            case ev.StageSkipped(stage=stage, reason=reason):
                self._line("–", f"{stage.label:<30} skipped: {reason}", "dim")
            case ev.RequestSent(model=model, endpoint=endpoint, expected_first_token=expected, index=index):
                expect = f"first token usually in ~{fmt_seconds(expected)}"
                self._line("→", f"{self._prefix(index)}Request sent to {model} at {endpoint}; {expect}", "cyan")
            case ev.FirstToken(seconds=seconds, index=index):
                self._line("✓", f"{self._prefix(index)}First token after {fmt_seconds(seconds)}", "green")
            case ev.TokenDelta(tokens=tokens, tokens_per_second=rate, index=index):
                self.tokens, self.rate = tokens, rate
                self.progress.update(self.task, description=f"{self._prefix(index)}Streaming: {tokens} tokens")
                self.progress.update(self.task, rate=f"{rate:.0f} tok/s" if rate else "")
            case ev.Progress(fraction=fraction, elapsed=elapsed, eta=eta):
                timing = fmt_seconds(elapsed) + (f" / ~{fmt_seconds(elapsed + eta)}" if eta is not None else "")
                self.progress.update(self.task, completed=fraction, timing=timing)
            case ev.Heartbeat(idle=idle, index=index):
                self._line(
                    "…",
                    f"{self._prefix(index)}Still waiting for {self.provider_label}: nothing for {fmt_seconds(idle)}",
                    "yellow",
                )
            case ev.SlowWarning(elapsed=elapsed, threshold=threshold, index=index):
                self._line(
                    "!",
                    f"{self._prefix(index)}Slower than usual: past {fmt_seconds(threshold)}; Ctrl-C cancels",
                    "yellow",
                )
            case ev.Retrying(attempt=attempt, max_attempts=most, delay=delay, reason=reason, index=index):
                self._line(
                    "↻",
                    f"{self._prefix(index)}{reason} Retrying in {fmt_seconds(delay)}, attempt {attempt} of {most}",
                    "yellow",
                )
            case ev.PersonaSaved(path=path, index=index):
                self._line("✔", f"{self._prefix(index)}{saved_line(event)}", "bold green")
                self._line(" ", str(path), "dim")
            case ev.Failed(message=message, hint=hint, index=index):
                self._line("✘", f"{self._prefix(index)}{message}", "bold red")
                if hint:
                    self._line(" ", hint, "red")
            case ev.Cancelled(elapsed=elapsed, saved=saved):
                self._line(
                    "■", f"Cancelled after {fmt_seconds(elapsed)}; {len(saved)} of {self.count} saved", "bold yellow"
                )
            case ev.Finished(summary=summary):
                self.progress.update(self.task, completed=1.0 if summary.ok else None)
            case _:
                pass
