"""Targets 1 and 2: stream throughput, in the app and headless, against the plain openai client.

1. The loopback server sends a 20,000-token answer (``chunk_chars=1``, no delay:
   as fast as it can) that validates as a persona. Measured: the app (headless
   ``run_test``, real widgets, real pipeline and ``OpenAIProvider``) from the
   ctrl+g key press until it has handled ``Finished`` (so the answer was
   streamed, drawn, validated and saved), against ``AsyncOpenAI(...).chat.
   completions.create(stream=True)`` consuming every chunk of the same stream.
2. Whole processes: ``persona-tui generate`` (stderr to a pipe) against a plain
   client script, both run as subprocesses on the same stream.

Run alone: ``python bench/perf/bench_stream.py [--runs N] [--quick]``. ``PERF_GENERATE_ARGS`` adds
arguments to ``persona-tui generate`` (e.g. a ``--mix`` whose pins the scripted persona fits);
``PERF_SETTINGS`` sets the app's settings (see ``common.BENCH_SETTINGS``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DESCRIPTION,
    TOKENS,
    Result,
    ServerProcess,
    big_persona,
    child_env,
    fmt_s,
    interleaved,
    median,
)

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(sys.executable).with_name("persona-tui"))


# ----- in process -----------------------------------------------------------------------------


async def _app_once(base_url: str, tokens: int) -> float:
    from appkit import EventTap, make_bench_app, ready, simulate_terminal

    from persona_tui.engine import events as ev

    with tempfile.TemporaryDirectory(prefix="perf-stream-") as tmp:
        app = make_bench_app(Path(tmp), base_url)
        simulate_terminal(app)
        tap = EventTap(app)
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(app, pilot)
            start = time.perf_counter()
            await pilot.press("ctrl+g")
            await asyncio.wait_for(tap.finished.wait(), timeout=300)
            end = tap.first(ev.Finished)
            assert end is not None
            if tap.saved is None or tap.saved.tokens != tokens:
                raise RuntimeError(f"the app did not save the streamed persona: {tap.failed or tap.summary}")
        return end - start


async def _plain_once(base_url: str, tokens: int) -> float:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    try:
        start = time.perf_counter()
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": DESCRIPTION}],
            stream=True,
            stream_options={"include_usage": True},  # the same stream the app asks for (usage on the last chunk)
        )
        parts: list[str] = []
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    if len(parts) != tokens:
        raise RuntimeError(f"plain client got {len(parts)} chunks, expected {tokens}")
    return elapsed


def app_once(server: ServerProcess, tokens: int) -> float:
    server.script({"content": big_persona(tokens), "chunk_chars": 1})
    return asyncio.run(_app_once(server.base_url, tokens))


def plain_once(server: ServerProcess, tokens: int) -> float:
    server.script({"content": big_persona(tokens), "chunk_chars": 1})
    return asyncio.run(_plain_once(server.base_url, tokens))


def run_inprocess(server: ServerProcess, runs: int, tokens: int) -> Result:
    plain, app = interleaved(runs, lambda: plain_once(server, tokens), lambda: app_once(server, tokens))
    p, a = median(plain), median(app)
    return Result(
        key="stream",
        title=f"1. Stream throughput, {tokens:,} tokens (app vs plain client)",
        measured=f"app {fmt_s(a)} ({tokens / a:,.0f} tok/s) vs plain client {fmt_s(p)} ({tokens / p:,.0f} tok/s)",
        figure=a / p,
        unit="x",
        target=1.25,
        target_text="≤ 1.25x",
        runs=runs,
        samples={"app_s": app, "plain_s": plain},
        notes="content validates (persona with every field near its max length, padded with JSON indentation); "
        "app time = ctrl+g → Finished handled (includes validation and the fsynced save)",
    )


# ----- whole processes ------------------------------------------------------------------------


def _env(data_dir: Path, base_url: str) -> dict[str, str]:
    return child_env(
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="bench-key",
        PERSONA_TUI_DATA_DIR=str(data_dir),
        XDG_CONFIG_HOME=str(data_dir / "config"),
        PERSONA_TUI_MAX_ATTEMPTS="1",
    )


def cli_once(server: ServerProcess, tokens: int) -> float:
    server.script({"content": big_persona(tokens), "chunk_chars": 1})
    with tempfile.TemporaryDirectory(prefix="perf-cli-") as tmp:
        start = time.perf_counter()
        done = subprocess.run(
            [
                CLI,
                "generate",
                DESCRIPTION,
                "--provider",
                "openai",
                *shlex.split(os.environ.get("PERF_GENERATE_ARGS", "")),
            ],
            env=_env(Path(tmp), server.base_url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0 or f"{tokens} tokens" not in done.stderr.decode("utf-8", "replace"):
            raise RuntimeError(f"persona-tui generate failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def plain_script_once(server: ServerProcess, tokens: int) -> float:
    server.script({"content": big_persona(tokens), "chunk_chars": 1})
    with tempfile.TemporaryDirectory(prefix="perf-plain-") as tmp:
        start = time.perf_counter()
        done = subprocess.run(
            [PYTHON, str(HERE / "plain_client.py"), str(tokens)],
            env=_env(Path(tmp), server.base_url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"plain client script failed: {done.stderr.decode()[-500:]}")
    return elapsed


def run_headless(server: ServerProcess, runs: int, tokens: int) -> Result:
    plain, cli = interleaved(runs, lambda: plain_script_once(server, tokens), lambda: cli_once(server, tokens))
    p, c = median(plain), median(cli)
    return Result(
        key="headless",
        title=f"2. Headless `persona-tui generate`, {tokens:,} tokens (process vs plain client process)",
        measured=f"persona-tui generate {fmt_s(c)} vs plain client script {fmt_s(p)}",
        figure=c / p,
        unit="x",
        target=1.25,
        target_text="≤ 1.25x",
        runs=runs,
        samples={"cli_s": cli, "plain_s": plain},
        notes="whole processes, interpreter start and imports included; stderr and stdout are pipes",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=TOKENS)
    parser.add_argument("--quick", action="store_true", help="1 run of 2,000 tokens")
    parser.add_argument("--only", choices=["app", "headless"], default=None)
    args = parser.parse_args()
    runs, tokens = (1, 2000) if args.quick else (args.runs, args.tokens)
    with ServerProcess() as server:
        if args.only in (None, "app"):
            r = run_inprocess(server, runs, tokens)
            print(f"{r.title}: {r.measured} -> {r.figure:.2f}{r.unit} (target {r.target_text})")
        if args.only in (None, "headless"):
            r = run_headless(server, runs, tokens)
            print(f"{r.title}: {r.measured} -> {r.figure:.2f}{r.unit} (target {r.target_text})")


if __name__ == "__main__":
    main()
