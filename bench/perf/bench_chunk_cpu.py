"""Issue 16, item 4: CPU per stream chunk, and tokens per second on one core.

All against the same loopback SSE server (``tests/fake_openai.py`` in a child
process, pinned to the last CPU while this process is pinned to the first, so
the server's work never lands on the measured core). One answer of ``--chunks``
one-character tokens (``chunk_chars=1``, no delay); CPU is this process's
``time.process_time()`` from the request to the last chunk, divided by the
chunks; medians of ``--runs``, the ways interleaved:

1. floor: ``httpx2`` (the transport the client runs on) streaming the body,
   lines split, ``data:`` lines parsed with ``json.loads`` (and, beside it, the
   same floor with ``jiter``, the parser the provider uses);
2. the plain ``openai`` client's typed stream (``create(stream=True)``, a
   pydantic chunk each), reading ``delta.content``;
3. ``OpenAIProvider.stream`` (the parts it yields), what the pipeline consumes.

Then throughput: ``--streams`` concurrent answers through one provider, total
tokens per wall second and per CPU second of this process (the core's
capacity; when the server, not this process, is the limit, CPU use is under
100% and tokens per CPU second still says what one core can carry).

Run: ``python bench/perf/bench_chunk_cpu.py [--runs 5] [--chunks 20000] [--streams 1,16,64,128]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DESCRIPTION, ServerProcess, big_persona, machine, median

MODEL = "gpt-4o-mini"
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": DESCRIPTION}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def _serve_many(conn: Any) -> None:
    """``common._serve`` with a listen backlog for a hundred streams at once (the stdlib's default is 5)."""
    import common

    sys.path.insert(0, str(common.ROOT))
    from tests import fake_openai

    fake_openai._Server.request_queue_size = 1024
    common._serve(conn)


class ManyServer(ServerProcess):
    def __init__(self) -> None:
        import multiprocessing

        super().__init__()
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_many, args=(child,), daemon=True, name="fake-openai-server")


def pin(pid: int, cpu: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(pid, {cpu})


# ----- the three readers (each returns the number of content chunks) ----------------------------


async def floor(base_url: str, parse: Callable[[bytes], Any]) -> int:
    import httpx2

    count = 0
    async with (
        httpx2.AsyncClient(timeout=60) as client,
        client.stream(
            "POST", f"{base_url}/chat/completions", json=BODY, headers={"Authorization": "Bearer bench-key"}
        ) as response,
    ):
        rest = b""
        async for raw in response.aiter_bytes():
            lines = (rest + raw).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"data: "):
                    data = line[6:]
                    if data == b"[DONE]":
                        return count
                    chunk = parse(data)
                    for choice in chunk["choices"]:
                        if (choice.get("delta") or {}).get("content"):
                            count += 1
    return count


async def plain(base_url: str) -> int:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    count = 0
    try:
        stream = await client.chat.completions.create(**BODY)
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    count += 1
    finally:
        await client.close()
    return count


def make_provider(base_url: str) -> Any:
    from persona_tui.engine.providers.openai_compatible import OpenAIProvider

    return OpenAIProvider(model=MODEL, api_key="bench-key", base_url=base_url, temperature=None)


def spec() -> Any:
    from persona_tui.engine.providers.base import PromptSpec

    return PromptSpec(messages=BODY["messages"], schema={"type": "object"}, description=DESCRIPTION)


async def ours(provider: Any) -> int:
    from persona_tui.engine.providers.parts import AnswerPart

    count = 0
    async for part in provider.stream(spec()):
        if type(part) is AnswerPart:
            count += 1
    return count


async def ours_once(base_url: str) -> int:
    provider = make_provider(base_url)
    provider.prepare()
    try:
        return await ours(provider)
    finally:
        await provider.aclose()


# ----- measuring --------------------------------------------------------------------------------


def cpu_per_chunk(server: ServerProcess, chunks: int, run: Callable[[], Any]) -> float:
    server.script({"content": big_persona(chunks), "chunk_chars": 1})
    start = time.process_time()
    got = asyncio.run(run())
    spent = time.process_time() - start
    if got != chunks:
        raise RuntimeError(f"got {got} chunks, expected {chunks}")
    return spent / chunks


async def _many(base_url: str, streams: int) -> tuple[int, float, float]:
    provider = make_provider(base_url)
    provider.prepare()
    try:
        await ours(provider)  # warm: the client built, one connection made
        wall, cpu = time.perf_counter(), time.process_time()
        counts = await asyncio.gather(*(ours(provider) for _ in range(streams)))
        return sum(counts), time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await provider.aclose()


def throughput(server: ServerProcess, streams: int, tokens: int) -> tuple[float, float, float]:
    """(tokens per wall second, tokens per CPU second of this process, CPU use of this process)."""
    content = big_persona(tokens) if tokens >= 2000 else "{" + " " * (tokens - 2) + "}"
    server.script(*[{"content": content, "chunk_chars": 1} for _ in range(streams + 1)])
    total, wall, cpu = asyncio.run(_many(server.base_url, streams))
    if total != streams * tokens:
        raise RuntimeError(f"got {total} tokens, expected {streams * tokens}")
    return total / wall, total / cpu, cpu / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--streams", default="1,16,64,128", help="concurrent streams to try, comma-separated")
    parser.add_argument("--stream-tokens", type=int, default=4000, help="tokens per stream in the throughput runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    import jiter

    info = machine()
    print(f"{info['date']}; {info['nproc']} CPU(s), {info['cpu']}; Python {info['python']}; {info['packages']}")
    import persona_tui

    print(f"persona_tui from {Path(persona_tui.__file__).parent}")
    results: dict[str, Any] = {"machine": info}
    with ManyServer() as server:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        if len(cpus) > 1:
            pin(server._proc.pid or 0, cpus[-1])
            pin(0, cpus[0])
        url = server.base_url
        ways: dict[str, Callable[[], float]] = {
            "floor (httpx2 + json.loads)": lambda: cpu_per_chunk(server, args.chunks, lambda: floor(url, json.loads)),
            "floor (httpx2 + jiter)": lambda: cpu_per_chunk(server, args.chunks, lambda: floor(url, jiter.from_json)),
            "openai typed stream": lambda: cpu_per_chunk(server, args.chunks, lambda: plain(url)),
            "OpenAIProvider.stream": lambda: cpu_per_chunk(server, args.chunks, lambda: ours_once(url)),
        }
        samples: dict[str, list[float]] = {name: [] for name in ways}
        for measure in ways.values():  # warm up
            measure()
        for _ in range(args.runs):
            for name, measure in ways.items():
                samples[name].append(measure())
        medians = {name: median(values) for name, values in samples.items()}
        base = medians["floor (httpx2 + json.loads)"]
        print(f"\nCPU per chunk, {args.chunks:,} chunks, medians of {args.runs}:")
        for name, value in medians.items():
            print(f"  {name:30s} {value * 1e6:7.2f} µs/chunk  {value / base:5.2f}x the json.loads floor")
        results["cpu_per_chunk_us"] = {name: [v * 1e6 for v in values] for name, values in samples.items()}
        results["medians_us"] = {name: v * 1e6 for name, v in medians.items()}
        print(f"\nThroughput through OpenAIProvider, {args.stream_tokens:,} tokens per stream:")
        rows = []
        for streams in [int(s) for s in args.streams.split(",") if s]:
            runs = [throughput(server, streams, args.stream_tokens) for _ in range(max(1, args.runs // 2))]
            wall, per_cpu, use = (median(r[i] for r in runs) for i in range(3))
            rows.append({"streams": streams, "tok_per_s": wall, "tok_per_cpu_s": per_cpu, "cpu_use": use})
            print(f"  {streams:4d} streams: {wall:9,.0f} tok/s  {per_cpu:9,.0f} tok per CPU-s  client CPU {use:.0%}")
        results["throughput"] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
