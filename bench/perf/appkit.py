"""Building and watching the real app headless, the way tests/test_app.py drives it.

The app is built with ``make_app`` from real settings (provider ``openai``,
``base_url`` pointing at the loopback server), so the real pipeline, the real
``OpenAIProvider`` and the real widgets are measured. Observation is done from
the outside only: instance attributes wrap ``handle_event`` and ``_display``.

Headless Textual composes every frame (widgets render, the compositor builds
the update) but skips turning it into terminal escape sequences.
:func:`simulate_terminal` adds that step back (``render_segments``, output
discarded), so a frame costs what it costs in a real terminal.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import DESCRIPTION, bench_settings

SIZE = (120, 36)


def make_bench_app(data_dir: Path, base_url: str, **settings: Any) -> Any:
    from persona_tui.config import Settings
    from persona_tui.tui.app import make_app

    apply_what_if()

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "provider": "openai",
        "base_url": base_url,
        "api_key": "bench-key",
        "max_attempts": 1,
    }
    known = set(Settings.__dataclass_fields__)
    values.update({name: _typed(raw) for name, raw in bench_settings().items() if name in known})
    values.update(settings)
    return make_app(Settings(**values))


def _typed(raw: str) -> Any:
    """A PERF_SETTINGS value as a Settings field takes it (true/false, a number, else the text)."""
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def simulate_terminal(app: Any) -> None:
    """Make each headless frame pay for its terminal encoding, as a real terminal would."""
    from textual._compositor import CompositorUpdate

    original = app._display

    def _display(screen: Any, renderable: Any) -> None:
        if isinstance(renderable, CompositorUpdate) and app.is_headless and not app._batch_count:
            renderable.render_segments(app.console)
        original(screen, renderable)

    app._display = _display


class EventTap:
    """Records when the app has handled each engine event (perf_counter), and signals Finished."""

    def __init__(self, app: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        from persona_tui.engine import events as ev

        self.ev = ev
        self.clock = clock
        self.times: dict[type, list[float]] = {}
        self.finished = asyncio.Event()
        self.summary: Any = None
        self.saved: Any = None
        self.failed: Any = None
        original = app.handle_event

        def handle_event(event: Any) -> None:
            original(event)
            self.times.setdefault(type(event), []).append(clock())
            if isinstance(event, ev.PersonaSaved):
                self.saved = event
            elif isinstance(event, ev.Failed):
                self.failed = event
            elif isinstance(event, ev.Finished):
                self.summary = event.summary
                self.finished.set()

        app.handle_event = handle_event

    def first(self, kind: type) -> float | None:
        values = self.times.get(kind)
        return values[0] if values else None


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0, step: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached in time")
        await asyncio.sleep(step)


async def ready(app: Any, pilot: Any) -> None:
    """Wait for the startup load and what follows it (the provider warmed in a thread), type the request."""
    from textual.widgets import Input

    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    app.query_one("#description", Input).value = DESCRIPTION
    await pilot.pause()
    if "panel-fixed-height" in what_if():
        panel = app.panel
        panel.styles.height = 6  # border + 4 lines at 120x36
        refresh = panel.refresh
        panel.refresh = lambda *regions, layout=False, **kwargs: refresh(*regions, **kwargs)
    await pilot.pause()


WHAT_IFS = {
    # The changes simulated before the fixes of issue 7 (gc-freeze, log-10hz, lazy-cells, ...) are
    # in the package now; their simulations are in git history (commit 139a770).
    "partial-4hz": "partial persona parsed 4 times a second instead of 10 (PARTIAL_INTERVAL = 0.25)",
    "panel-fixed-height": "GenerationPanel gets a fixed height and refreshes without layout=True",
}


def what_if() -> set[str]:
    """Changes simulated from the outside (PERF_WHAT_IF=partial-4hz,...), to measure their effect.

    Only the benchmark process is patched; nothing under persona_tui/ changes.
    """
    chosen = {w.strip() for w in os.environ.get("PERF_WHAT_IF", "").split(",") if w.strip()}
    unknown = chosen - set(WHAT_IFS)
    if unknown:
        raise SystemExit(f"unknown PERF_WHAT_IF {sorted(unknown)}; known: {sorted(WHAT_IFS)}")
    return chosen


_applied: set[str] = set()


def apply_what_if() -> None:
    chosen = what_if() - _applied
    _applied.update(chosen)
    if "partial-4hz" in chosen:
        from persona_tui.engine.pipeline import attempt

        attempt.PARTIAL_INTERVAL = 0.25
