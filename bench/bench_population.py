"""What issue 15's new pieces cost in a batch: plan, slot check, near-duplicate check, report, run record.

A batch of 50 offline personas ("nurses in rural Kenya aged 30 to 60", seed 1, no
pacing: ``tokens_per_second=0``) goes through the real pipeline (``generate``, a
real ``PersonaStore`` and ``RunStore`` in a temporary folder). The pieces are
timed where the pipeline calls them, by wrapping the functions it calls:

* ``draw_plan`` (the planning stage's work; the first call in a process also
  loads the world tables, which is why each sample is a fresh process and the
  first batch in it is reported apart from a second one);
* ``slot_breaks``, once per persona after validation;
* ``SimilarityIndex.nearest`` before each save (the 50th persona's query is
  the one against 49 held) and ``SimilarityIndex.add`` after it;
* ``diversity_report`` at the end of the batch;
* ``RunStore.save``: the run record, written at the start and at the end.

The whole batch is timed too, with the plan and the rewrite of near-duplicates on
(the defaults) and, in the same process after both, off; the offline
personas differ between the two, so that difference is context, not a measure of
the pieces.

    python bench/bench_population.py            # 5 processes (medians), a few seconds each
    python bench/bench_population.py --runs 1   # a smoke run

No timing is asserted anywhere: the numbers go to stdout for a person to read.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COUNT = 50
DESCRIPTION = "nurses in rural Kenya aged 30 to 60"


class Timers:
    """Seconds per call of each wrapped function, by name."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.held: list[int] = []
        """For each ``nearest`` call, how many personas the index held."""


TIMERS = Timers()
"""The current batch's timers (replaced before each batch; the wrappers are installed once)."""


def _wrap(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMERS.calls[name].append(time.perf_counter() - start)

    return timed


def _wrap_async(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            TIMERS.calls[name].append(time.perf_counter() - start)

    return timed


def install() -> None:
    """Wrap the pieces where the pipeline looks them up (module attributes and methods)."""
    from persona_tui.engine.diversity import SimilarityIndex
    from persona_tui.engine.pipeline import batch, job
    from persona_tui.storage import RunStore

    batch.draw_plan = _wrap("draw_plan", batch.draw_plan)  # type: ignore[attr-defined]
    batch.diversity_report = _wrap("diversity_report", batch.diversity_report)  # type: ignore[attr-defined]
    job.slot_breaks = _wrap("slot_breaks", job.slot_breaks)  # type: ignore[attr-defined]
    RunStore.save = _wrap_async("run_record_save", RunStore.save)  # type: ignore[method-assign]
    SimilarityIndex.add = _wrap("similar_add", SimilarityIndex.add)  # type: ignore[method-assign]
    nearest = _wrap("similar_nearest", SimilarityIndex.nearest)

    def counted(self: SimilarityIndex, persona: Any) -> Any:
        TIMERS.held.append(len(self))
        return nearest(self, persona)

    SimilarityIndex.nearest = counted  # type: ignore[method-assign]


async def one_batch(plan: bool) -> dict[str, Any]:
    from persona_tui.config import Settings
    from persona_tui.engine import events as ev
    from persona_tui.engine.estimate import EstimateBook
    from persona_tui.engine.pipeline import generate
    from persona_tui.engine.providers.offline import OfflineProvider
    from persona_tui.models import GenerationRequest
    from persona_tui.storage import PersonaStore, RunStore

    with tempfile.TemporaryDirectory(prefix="bench-population-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), seed=1, population_plan=plan, regenerate_duplicates=plan, offline_tokens_per_second=0
        )
        planning = None
        saved = breaks = near = 0
        start = time.perf_counter()
        async for event in generate(
            GenerationRequest.create(DESCRIPTION, COUNT),
            provider=OfflineProvider(seed=1, tokens_per_second=0),
            store=PersonaStore(settings.personas_dir),
            settings=settings,
            estimates=EstimateBook(None),
            rng=random.Random(0),
            runs=RunStore(settings.runs_dir),
        ):
            if isinstance(event, ev.StageFinished) and event.stage is ev.Stage.PLANNING:
                planning = event.seconds
            elif isinstance(event, ev.PersonaSaved):
                saved += 1
            elif isinstance(event, ev.SlotBroken):
                breaks += 1
            elif isinstance(event, ev.NearDuplicate):
                near += 1
        wall = time.perf_counter() - start
    if saved != COUNT:
        raise RuntimeError(f"the batch saved {saved} of {COUNT} personas")
    return {"wall": wall, "planning_stage": planning, "slot_broken": breaks, "near_duplicates": near}


def child() -> dict[str, Any]:
    """One sample: a cold batch (first in the process), a warm one, then one with the plan and rewrite off."""
    global TIMERS
    install()
    out: dict[str, Any] = {}
    for name, plan in (("cold", True), ("warm", True), ("off", False)):
        TIMERS = timers = Timers()
        batch = asyncio.run(one_batch(plan))
        nearest = timers.calls["similar_nearest"]
        at_49 = [t for t, held in zip(nearest, timers.held, strict=True) if held == COUNT - 1]
        saves = timers.calls["run_record_save"]
        out[name] = {
            **batch,
            "draw_plan": sum(timers.calls["draw_plan"]),
            "slot_breaks_each": statistics.median(timers.calls["slot_breaks"] or [0.0]),
            "slot_breaks_total": sum(timers.calls["slot_breaks"]),
            "slot_breaks_calls": len(timers.calls["slot_breaks"]),
            "nearest_each": statistics.median(nearest or [0.0]),
            "nearest_at_49": at_49[-1] if at_49 else None,
            "nearest_total": sum(nearest),
            "nearest_calls": len(nearest),
            "add_total": sum(timers.calls["similar_add"]),
            "report": sum(timers.calls["diversity_report"]),
            "record_start": saves[0] if saves else None,
            "record_end": saves[-1] if len(saves) > 1 else None,
            "record_writes": len(saves),
        }
    return out


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes (samples); default 5")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return 0

    samples = []
    for _ in range(args.runs):
        done = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True, check=True)
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))

    def med(batch: str, key: str) -> float | None:
        values = [s[batch][key] for s in samples if s[batch][key] is not None]
        return statistics.median(values) if values else None

    print(
        f"issue 15's pieces in a batch of {COUNT} offline personas ({DESCRIPTION!r}, tokens_per_second=0); "
        f"medians of {args.runs} process(es)"
    )
    print(f"  Python {platform.python_version()}, {platform.system()} {platform.release()}\n")
    rows = [
        ("draw_plan (the planning stage's work)", "draw_plan", ms),
        ("planning stage, as the event reports it (plan + first record write)", "planning_stage", ms),
        ("slot_breaks, per persona", "slot_breaks_each", ms),
        ("slot_breaks, whole batch", "slot_breaks_total", ms),
        ("SimilarityIndex.nearest, per persona (median over the batch)", "nearest_each", ms),
        ("SimilarityIndex.nearest, the 50th persona (49 held)", "nearest_at_49", ms),
        ("SimilarityIndex.nearest, whole batch", "nearest_total", ms),
        ("SimilarityIndex.add, whole batch", "add_total", ms),
        ("diversity_report at the end", "report", ms),
        ("run record write at the start", "record_start", ms),
        ("run record write at the end", "record_end", ms),
        ("whole batch, wall", "wall", ms),
    ]
    print(f"{'piece':<72} {'cold':>10} {'warm':>10} {'plan off':>10}")
    for title, key, fmt in rows:
        print(f"{title:<72} {fmt(med('cold', key)):>10} {fmt(med('warm', key)):>10} {fmt(med('off', key)):>10}")
    counts = ("slot_breaks_calls", "nearest_calls", "record_writes", "slot_broken", "near_duplicates")
    for key in counts:
        print(f"{key:<72} {med('cold', key)!s:>10} {med('warm', key)!s:>10} {med('off', key)!s:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
