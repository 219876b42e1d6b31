"""Profile one benchmark scenario and say what dominates it.

    python bench/perf/profile_hot.py stream      # target 1: the app consuming 20,000 tokens at full speed
    python bench/perf/profile_hot.py plain       # the plain openai client on the same stream (for contrast)
    python bench/perf/profile_hot.py stall       # target 3: the app drawing a ~2,000 tok/s stream
    python bench/perf/profile_hot.py headless    # target 2: persona-tui generate's event loop
    python bench/perf/profile_hot.py startup     # target 6: one app start with 10,000 personas

Uses py-spy (``pip install py-spy`` into the venv; not a project dependency)
attached to a child process once its setup is done, so only the measured work
is sampled (startup is sampled from the process start); idle time (waiting in
``select``) is not sampled. Without py-spy, falls back to cProfile. Prints the
share of samples per area, the functions with the most inclusive and the most
self time, and writes the raw collapsed stacks next to ``--out``.

For ``stall`` it also prints, for each gap of more than 50 ms between ticks
of a 10 ms timer, how much of it was spent in garbage collection
(``gc.callbacks``) and what the event loop's stack showed (sampled
in-process every ~2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, TOKENS, ServerProcess, big_persona, child_env

HERE = Path(__file__).resolve().parent
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))

AREAS: list[tuple[str, str]] = [
    # (area, a regex matched against the whole stack, first match wins; most specific first)
    ("startup: imports", r"<module> \(persona_tui/tui/app.py|_find_and_load"),
    ("startup: reading + validating persona files", r"load_all_sync"),
    ("startup: PersonaTable cells (thread)", r"_cells \(persona_tui"),
    ("startup: PersonaTable.add_row (rows)", r"add_row \(textual/widgets/_data_table"),
    ("provider stream: openai/httpx parsing chunks", r"read_into|plain_stream"),
    ("pipeline: parse_partial (jiter on the whole answer)", r"parse_partial"),
    ("pipeline: final validation", r"parse_persona"),
    ("pipeline: save", r"atomic_write|PersonaStore.save|EstimateBook.save"),
    ("app: PersonaView.show_partial (describe_fields + Static.update)", r"show_partial"),
    ("app: LiveLog flush/_wrap/write", r"LiveLog\.(flush|_wrap|_write)"),
    ("app: handle_event (other)", r"handle_event \(persona_tui"),
    ("pipeline: attempt/watch loop / events", r"persona_tui/engine/pipeline/"),
    ("headless: HeadlessRenderer (rich Progress)", r"HeadlessRenderer|rich/live|rich/progress"),
    ("textual: terminal encoding (render_segments)", r"render_segments"),
    ("textual: layout + compositor (frames)", r"_on_timer_update|_compositor_refresh|_refresh_layout|render_update"),
    ("textual: widget render / message pump", r"textual/"),
    ("asyncio loop + other", r""),
]


def area_of(stack: str) -> str:
    for name, pattern in AREAS:
        if re.search(pattern, stack):
            return name
    return "asyncio loop + other"


# ----- the work to be sampled ------------------------------------------------------------------


async def _app_stream(base_url: str, tokens: int, announce: bool) -> float:
    from appkit import EventTap, make_bench_app, ready, simulate_terminal

    with tempfile.TemporaryDirectory(prefix="perf-prof-") as tmp:
        app = make_bench_app(Path(tmp), base_url)
        simulate_terminal(app)
        tap = EventTap(app)
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(app, pilot)
            if announce:
                _attach_point()
            start = time.perf_counter()
            await pilot.press("ctrl+g")
            await tap.finished.wait()
            return time.perf_counter() - start


async def plain_stream(base_url: str) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    start = time.perf_counter()
    stream = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    async for chunk in stream:
        for choice in chunk.choices:
            _ = choice.delta.content
    await client.close()
    return time.perf_counter() - start


def _attach_point() -> None:
    """Tell the parent the measured part starts, give py-spy a moment to attach."""
    print("READY", flush=True)
    time.sleep(1.0)


def child(scenario: str) -> None:
    with ServerProcess() as server:
        delay = 0.00035 if scenario == "stall" else 0.0
        server.script({"content": big_persona(TOKENS), "chunk_chars": 1, "token_delay": delay})
        if scenario in ("stream", "stall"):
            asyncio.run(_app_stream(server.base_url, TOKENS, announce=True))
        elif scenario == "plain":
            _attach_point()
            asyncio.run(plain_stream(server.base_url))


# ----- stall: in-process stack sampling during long gaps --------------------------------------


class LoopSampler(threading.Thread):
    """Samples the main thread's Python stack every ``interval`` seconds (perf_counter stamped)."""

    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self.main = threading.main_thread().ident
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            frame = sys._current_frames().get(self.main)  # type: ignore[arg-type]
            stack: list[str] = []
            while frame is not None:
                code = frame.f_code
                stack.append(f"{code.co_qualname} ({_short(code.co_filename)}:{frame.f_lineno})")
                frame = frame.f_back
            self.samples.append((time.perf_counter(), tuple(reversed(stack))))


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


async def _stall_gaps(base_url: str) -> None:
    from appkit import EventTap, make_bench_app, ready, simulate_terminal

    from persona_tui.engine import events as ev

    with tempfile.TemporaryDirectory(prefix="perf-prof-") as tmp:
        app = make_bench_app(Path(tmp), base_url)
        simulate_terminal(app)
        tap = EventTap(app)
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(app, pilot)
            ticks: list[float] = []
            app.set_interval(0.01, lambda: ticks.append(time.perf_counter()))
            collections_: list[tuple[float, float, int]] = []
            began: list[float] = [0.0]

            def on_gc(phase: str, info: dict[str, Any]) -> None:
                if phase == "start":
                    began[0] = time.perf_counter()
                else:
                    collections_.append((began[0], time.perf_counter(), info["generation"]))

            gc.callbacks.append(on_gc)
            sampler = LoopSampler()
            sampler.start()
            start = time.perf_counter()
            await pilot.press("ctrl+g")
            await tap.finished.wait()
            sampler.stop.set()
            gc.callbacks.remove(on_gc)
            end = tap.first(ev.Finished) or time.perf_counter()
    window = [start, *[t for t in ticks if start < t < end], end]
    gaps = [(b - a, a, b) for a, b in itertools.pairwise(window) if b - a > 0.05]
    full = [(a, b) for a, b, generation in collections_ if generation == 2 and start <= a <= end]
    print(
        f"\n{len(gaps)} gap(s) > 50 ms between 10 ms ticks, in {end - start:.2f} s; "
        f"{len(full)} full (generation 2) garbage collection(s), "
        f"{statistics.median([b - a for a, b in full]) * 1000 if full else 0:.0f} ms each (median):"
    )
    for gap, a, b in gaps:
        in_gc = sum(min(b, e) - max(a, s) for s, e, g in collections_ if s < b and e > a)
        inside = [s for t, s in sampler.samples if a <= t <= b]
        counts: collections.Counter[str] = collections.Counter()
        for stack in inside:
            counts[_blame(stack)] += 1
        top = ", ".join(f"{name} {n * 100 // max(len(inside), 1)}%" for name, n in counts.most_common(3))
        print(f"  {gap * 1000:5.0f} ms at +{(a - start):5.2f} s: {in_gc * 1000:3.0f} ms in gc; other samples: {top}")


_BLAME = [
    "parse_partial",
    "parse_persona",
    "show_partial",
    "LiveLog._wrap",
    "LiveLog.flush",
    "render_segments",
    "_refresh_layout",
    "_compositor_refresh",
    "_on_timer_update",
    "handle_event",
    "_read_into",
    "save",
]


def _blame(stack: tuple[str, ...]) -> str:
    """The most telling frame of a stack: the innermost of a few known hot spots, else the leaf's module."""
    for frame in reversed(stack):
        for name in _BLAME:
            if name in frame.split(" (")[0]:
                return frame.split(" (")[0]
    for frame in reversed(stack):
        if "persona_tui/" in frame or "textual/" in frame:
            return frame.split(":")[0] + ")"
    return stack[-1] if stack else "?"


# ----- analysis of collapsed stacks ---------------------------------------------------------


def analyse(raw: Path, top: int = 25) -> str:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        text, _, count = line.rpartition(" ")
        frames = [f for f in text.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or "_attach_point" in text or frames[-1].startswith(("_worker (", "Thread.run (")):
            continue  # no Python stack, the attach pause, or a pool thread waiting for work
        stacks.append((frames, int(count)))
    total = sum(n for _, n in stacks) or 1
    areas: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        areas[area_of(";".join(frames))] += n
        for name in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            inclusive[name] += n
        if frames:
            self_[re.sub(r":\d+\)$", ")", frames[-1])] += n
    out = [f"{total} samples (not idle)", "", "By area:"]
    out += [f"  {n * 100 / total:5.1f}%  {name}" for name, n in areas.most_common()]
    out += ["", "Most inclusive time (persona_tui, textual, rich):"]
    shown = 0
    for name, n in inclusive.most_common():
        if re.search(r"persona_tui/|textual/|rich/", name) and "_run_once" not in name:
            out.append(f"  {n * 100 / total:5.1f}%  {name}")
            shown += 1
            if shown >= top:
                break
    out += ["", "Most self time:"]
    out += [f"  {n * 100 / total:5.1f}%  {name}" for name, n in self_.most_common(top)]
    return "\n".join(out)


def profile_child(scenario: str, out: Path, rate: int) -> None:
    if not Path(PY_SPY).exists():
        sys.exit("py-spy is not installed: /work/venv/bin/pip install py-spy")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, __file__, "--child", scenario], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            break
    spy = subprocess.Popen(
        [PY_SPY, "record", "--pid", str(proc.pid), "--rate", str(rate), "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.wait()
    spy.wait()
    print(analyse(out))


def profile_command(command: list[str], out: Path, rate: int, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [PY_SPY, "record", "--rate", str(rate), "-f", "raw", "-o", str(out), "--", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    print(analyse(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["stream", "plain", "stall", "headless", "startup"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "persona-tui-perf")
    args = parser.parse_args()
    if args.child:
        child(args.scenario)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"{args.scenario}.collapsed.txt"
    print(f"profiling {args.scenario}; raw stacks -> {raw}\n")
    if args.scenario in ("stream", "plain", "stall"):
        profile_child(args.scenario, raw, args.rate)
        if args.scenario == "stall":
            with ServerProcess() as server:
                server.script({"content": big_persona(TOKENS), "chunk_chars": 1, "token_delay": 0.00035})
                asyncio.run(_stall_gaps(server.base_url))
    elif args.scenario == "headless":
        from bench_stream import CLI, _env

        with ServerProcess() as server, tempfile.TemporaryDirectory() as tmp:
            server.script({"content": big_persona(TOKENS), "chunk_chars": 1})
            profile_command(
                [CLI, "generate", "personas", "--provider", "openai"], raw, args.rate, _env(Path(tmp), server.base_url)
            )
    elif args.scenario == "startup":
        from bench_startup import COUNT, write_personas

        with tempfile.TemporaryDirectory() as tmp:
            write_personas(Path(tmp) / "personas", COUNT)
            env = child_env()
            child_py = str(HERE / "startup_child.py")
            command = [sys.executable, child_py, tmp, repr(time.monotonic()), str(COUNT), "openai"]
            subprocess.run(command, env=env, capture_output=True, check=True)  # warm the page cache
            profile_command(command, raw, args.rate, env)


if __name__ == "__main__":
    main()
