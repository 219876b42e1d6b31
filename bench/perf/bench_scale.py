"""Issue 16: feedback at scale.

1. App stall: the real app (``make_app``, real pipeline and widgets, terminal encoding
   simulated) with 10,000 personas stored generates a batch of 48 at K = 16 against the
   loopback server (in its own process). Measured: the longest gap between ticks of a 10 ms
   timer from ctrl+g to ``Finished``, the panel's ``refresh(layout=True)`` calls, and the
   slowest ``PersonaTable.add_record``.
2. Headless batch: 50 personas at K = 50 drawn by ``HeadlessRenderer`` on a terminal console
   (output discarded), wall time against the ideal (the slowest stream's time, one round).
3. Table: ``PersonaTable.add_record`` at 10,000 and 50,000 rows, inserted in place against the old
   append-then-sort (both in the same table, alternately).

    python bench/perf/bench_scale.py [--runs N] [--only app|headless|table] [--stored 10000]

No timing is asserted: the numbers go to stdout for a person to read.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, ServerProcess, _serve, median

TICK = 0.010
APP_COUNT, APP_K = 48, 16
HEADLESS_COUNT, HEADLESS_K = 50, 50
MIX = "ages 47-47; she/her 100%; tech basic:1; pin location=Kisumu, Kenya; pin occupation=Field nurse"
"""Every slot of the plan alike, so the one scripted persona keeps to whichever slot it answers."""
WORDS = ["river", "clinic", "ledger", "bicycle", "mango", "radio", "chalk", "lantern"]
WORDS += ["harbour", "sorghum", "kettle", "ferry", "tin", "owl", "rope", "salt"]


def _serve_wide(conn: Any) -> None:
    """The loopback server with room for 50 connections at once (``socketserver`` queues 5)."""
    sys.path.insert(0, str(ROOT))
    from tests.fake_openai import _Server

    _Server.request_queue_size = 256
    _serve(conn)


class WideServer(ServerProcess):
    def __init__(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_wide, args=(child,), daemon=True, name="fake-openai-server")
        self.base_url = ""


def _persona(i: int) -> dict[str, Any]:
    """A persona that keeps to every slot of :data:`MIX` and is no near-duplicate of the others."""
    from tests.helpers import persona_dict

    rng = random.Random(i)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) + rng.choice(WORDS) for _ in range(n))

    return persona_dict(
        f"{words(1).title()} {words(1).title()}",
        background=f"{words(14)}.",
        quote=f"{words(6)}.",
        goals=[words(4), words(4)],
        frustrations=[words(4), words(4)],
        personality_traits=[words(1), words(1), words(1)],
        communication_style=f"{words(6)}.",
    )


def _scenarios(count: int, first: float, delay: float) -> list[dict[str, Any]]:
    return [
        {
            "content": json.dumps(_persona(i)),
            "first_token_delay": first,
            "token_delay": delay,
            "chunk_chars": 4,
        }
        for i in range(count + 5)
    ]


async def _app_once(base_url: str, stored: Path, sample: bool = False) -> dict[str, float]:
    from appkit import EventTap, make_bench_app, ready, simulate_terminal
    from textual.widgets import Input

    from persona_tui.engine import events as ev

    with tempfile.TemporaryDirectory(prefix="perf-scale-") as tmp:
        data = Path(tmp)
        shutil.copytree(stored, data / "personas")
        app = make_bench_app(data, base_url, concurrency=APP_K)
        simulate_terminal(app)
        tap = EventTap(app)
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(app, pilot)
            app.query_one("#count", Input).value = str(APP_COUNT)
            app.query_one("#mix", Input).value = MIX
            panel, table = app.panel, app.table
            layouts = [0, 0]
            refresh = panel.refresh

            def counted(*regions: Any, layout: bool = False, **kwargs: Any) -> Any:
                layouts[0 if layout else 1] += 1
                return refresh(*regions, layout=layout, **kwargs)

            panel.refresh = counted
            adds: list[float] = []
            add = table.add_record

            def timed(record: Any) -> None:
                t = time.perf_counter()
                add(record)
                adds.append(time.perf_counter() - t)

            table.add_record = timed
            ticks: list[float] = []
            app.set_interval(TICK, lambda: ticks.append(time.perf_counter()))
            await asyncio.sleep(0.1)
            sampler = None
            if sample:
                from profile_hot import LoopSampler

                sampler = LoopSampler(0.002)
                sampler.start()
            start = time.perf_counter()
            with LoopCpu(asyncio.get_running_loop()) as busy:
                await pilot.press("ctrl+g")
                await asyncio.wait_for(tap.finished.wait(), timeout=300)
            end = tap.first(ev.Finished)
            assert end is not None
            if sampler is not None:
                sampler.stop.set()
                _print_gaps(sampler.samples, [start, *[t for t in ticks if start < t < end], end])
            if tap.summary is None or len(tap.summary.saved) != APP_COUNT:
                raise RuntimeError(f"the app did not save the batch: {tap.failed or tap.summary}")
            window = [start, *[t for t in ticks if start < t < end], end]
            gaps = sorted(b - a for a, b in itertools.pairwise(window))
        return {
            "max_gap": gaps[-1],
            "over_50ms": float(sum(g > 0.050 for g in gaps)),
            "layouts": float(layouts[0]),
            "plain": float(layouts[1]),
            "add_max": max(adds),
            "add_median": median(adds),
            "wall": end - start,
            "cpu_max": max(busy.turns, default=0.0),
            "cpu_over_50ms": float(sum(t > 0.050 for t in busy.turns)),
        }


class LoopCpu:
    """The CPU time of this thread in each turn of the event loop.

    A gap between timer ticks is wall time: on a machine other programs share,
    it includes the time the process waited for a CPU. The CPU time a turn of
    the loop took (``time.thread_time``) is what the app itself kept the loop
    busy for, whoever else ran: the stall it would cause on a CPU of its own.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.turns: list[float] = []

    def __enter__(self) -> LoopCpu:
        run_once = self.loop._run_once  # type: ignore[attr-defined]

        def timed() -> None:
            t = time.thread_time()
            run_once()
            self.turns.append(time.thread_time() - t)

        self.loop._run_once = timed  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.loop._run_once  # type: ignore[attr-defined]


def _print_gaps(samples: list[tuple[float, tuple[str, ...]]], window: list[float]) -> None:
    """Which functions the loop was in during gaps of more than 50 ms (each counted once per sample)."""
    import collections

    gaps = [(a, b) for a, b in itertools.pairwise(window) if b - a > 0.05]
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for a, b in gaps:
        for t, stack in samples:
            if a <= t <= b:
                total += 1
                counts.update(set(stack))
    print(f"  {len(gaps)} gaps > 50 ms, {total} samples in them; the functions most often on the stack:")
    for name, n in counts.most_common(40):
        print(f"    {n / max(total, 1):5.0%}  {name}")


def run_app(runs: int, stored_count: int, sampling: bool = False) -> None:
    from bench_startup import write_personas

    with tempfile.TemporaryDirectory(prefix="perf-stored-") as tmp, WideServer() as server:
        stored = Path(tmp) / "personas"
        write_personas(stored, stored_count)
        samples = []
        for i in range(runs + 1):
            server.script(*_scenarios(APP_COUNT, 0.3, 0.01))
            sample = asyncio.run(_app_once(server.base_url, stored, sampling and i == runs))
            if i:  # the first is a warm-up
                samples.append(sample)
                print(
                    f"  run {i}: longest gap {sample['max_gap'] * 1000:.0f} ms, {sample['over_50ms']:.0f} > 50 ms, "
                    f"{sample['layouts']:.0f} layout refreshes ({sample['plain']:.0f} plain), add_record max "
                    f"{sample['add_max'] * 1000:.1f} ms median {sample['add_median'] * 1000:.2f} ms, "
                    f"wall {sample['wall']:.1f} s; longest loop turn in CPU time {sample['cpu_max'] * 1000:.0f} ms, "
                    f"{sample['cpu_over_50ms']:.0f} turns > 50 ms CPU",
                    flush=True,
                )
    print(
        f"app K={APP_K}, {APP_COUNT} personas, {stored_count:,} stored: longest gap "
        f"{median(s['max_gap'] for s in samples) * 1000:.0f} ms median of {runs} "
        f"(worst {max(s['max_gap'] for s in samples) * 1000:.0f} ms); "
        f"layout refreshes {median(s['layouts'] for s in samples):.0f}; "
        f"add_record max {median(s['add_max'] for s in samples) * 1000:.1f} ms; "
        f"longest loop turn in CPU time {median(s['cpu_max'] for s in samples) * 1000:.0f} ms "
        f"(worst {max(s['cpu_max'] for s in samples) * 1000:.0f} ms)",
        flush=True,
    )


async def _headless_once(base_url: str) -> dict[str, float]:
    from rich.console import Console

    from persona_tui.config import Settings
    from persona_tui.engine import events as ev
    from persona_tui.engine.pipeline import generate
    from persona_tui.engine.plan import parse_mix
    from persona_tui.engine.providers.openai_compatible import OpenAIProvider
    from persona_tui.models import GenerationRequest
    from persona_tui.render import HeadlessRenderer
    from persona_tui.storage import PersonaStore

    n, k = HEADLESS_COUNT, HEADLESS_K
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as sink:
        data = Path(tmp)
        console = Console(file=sink, force_terminal=True, width=120, height=60)
        provider = OpenAIProvider(model="bench-model", api_key=None, base_url=base_url, read_timeout=60)
        settings = Settings(data_dir=data, concurrency=k, max_attempts=1, first_token_timeout=30, idle_timeout=30)
        sent: dict[int, float] = {}
        streams: list[float] = []
        started = time.monotonic()
        with HeadlessRenderer(console, count=n, provider_label="bench") as renderer:
            async for event in generate(
                GenerationRequest.create("bench people", n, mix=parse_mix(MIX)),
                provider=provider,
                store=PersonaStore(settings.personas_dir),
                settings=settings,
            ):
                now = time.monotonic()
                if isinstance(event, ev.RequestSent):
                    sent[event.index] = now
                elif isinstance(event, ev.StageFinished) and event.stage is ev.Stage.STREAMING:
                    streams.append(now - sent[event.index])
                renderer.handle(event)
        wall = time.monotonic() - started
        await provider.aclose()
    ideal = max(streams) * math.ceil(n / k)
    return {"wall": wall, "ideal": ideal, "ratio": wall / ideal, "saved": float(renderer.saved)}


def run_headless(runs: int) -> None:
    with WideServer() as server:
        samples = []
        for i in range(runs + 1):
            server.script(*_scenarios(HEADLESS_COUNT, 1.0, 0.02))
            sample = asyncio.run(_headless_once(server.base_url))
            if i:
                samples.append(sample)
                print(
                    f"  run {i}: wall {sample['wall']:.2f} s ideal {sample['ideal']:.2f} s "
                    f"ratio {sample['ratio']:.2f} saved {sample['saved']:.0f}",
                    flush=True,
                )
    print(
        f"headless {HEADLESS_COUNT} at K={HEADLESS_K}: wall/ideal {median(s['ratio'] for s in samples):.2f} "
        f"(median of {runs}; wall {median(s['wall'] for s in samples):.2f} s, "
        f"ideal {median(s['ideal'] for s in samples):.2f} s)",
        flush=True,
    )


async def _table_once(rows: int, saves: int) -> dict[str, float]:
    """``add_record`` on a table of ``rows``: inserted in place, and the old way (appended, then sorted)."""
    from textual.app import App, ComposeResult

    from persona_tui.tui.widgets.persona_table import HIGHLIGHT_STYLE, PersonaTable
    from tests.conftest import make_record

    records = [make_record(f"Stored {i}", i) for i in range(rows)]  # newest first
    new = [make_record(f"New {i}", -1 - i) for i in range(2 * saves)]

    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield PersonaTable()

    app = TableApp()
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(PersonaTable)
        table.load(records)
        await pilot.pause()
        inserted, sorted_ = [], []
        for i in range(saves):
            t = time.perf_counter()
            table.add_record(new[2 * i])
            inserted.append(time.perf_counter() - t)
            await pilot.pause()
            record = new[2 * i + 1]  # the old way, by hand
            t = time.perf_counter()
            table.records = {record.id: record, **table.records}
            table._cache[record.id] = table._cells(record)
            table.add_row(*table._styled_cells(record, HIGHLIGHT_STYLE), key=record.id)
            table.sort("created", key=lambda stamp: stamp.moment, reverse=True)
            table.move_cursor(row=table.get_row_index(record.id), animate=False)
            sorted_.append(time.perf_counter() - t)
            await pilot.pause()
        order = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(table.row_count)]
        expected = [r.id for r in sorted(table.records.values(), key=lambda r: r.created_at, reverse=True)]
        assert order == expected, "the rows are newest first"
    return {"insert": median(inserted), "sort": median(sorted_)}


def run_table(runs: int) -> None:
    for rows in (10_000, 50_000):
        result = asyncio.run(_table_once(rows, 10 * runs))
        print(
            f"add_record at {rows:,} rows: {result['insert'] * 1000:.1f} ms inserted in place, "
            f"{result['sort'] * 1000:.1f} ms appended and sorted (medians of {10 * runs})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--only", choices=["app", "headless", "table"], default=None)
    parser.add_argument("--sample", action="store_true", help="sample the loop's stack in the last run's long gaps")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.only in (None, "app"):
        run_app(args.runs, args.stored, args.sample)
    if args.only in (None, "headless"):
        run_headless(args.runs)
    if args.only in (None, "table"):
        run_table(args.runs)


if __name__ == "__main__":
    main()
