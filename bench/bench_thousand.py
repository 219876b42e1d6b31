"""A thousand personas at K = 64: wall time against the ideal, and where one client core saturates.

The loopback server (tests/fake_openai.py) runs in a child process with room for
hundreds of connections, so the client's process has its own CPU for the engine
(the official client, the SSE reader, validation, the store and its names index).
Each persona is streamed as ``--chunk`` characters a chunk, one chunk every
``1 / rate`` seconds after a first-token wait; the ideal wall time of the run is
what the server was asked to take: ``ceil(n / K)`` rounds of one stream's scripted
time (first token + chunks / rate). The ratio wall / ideal shows what the engine
adds; as the rate per stream rises, the streams' chunks add up to more than one
core can read and the ratio climbs: that rate times K is the saturation point,
told also as the client's own CPU use (process CPU time over wall time).

    python bench/bench_thousand.py                      # 1,000 at K = 64, rates 25, 100, 400 chunks/s
    python bench/bench_thousand.py --count 200 --rates 100
    python bench/bench_thousand.py --quick              # a smoke run of a few seconds
    python bench/bench_thousand.py --floor              # each rate also read by a bare HTTP client: the floor
    PERF_SRC=OTHER_TREE python bench/bench_thousand.py  # another source tree's engine, for a side-by-side

No timing is asserted anywhere; the numbers go to stdout for a person to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "perf"))
sys.path.insert(0, os.environ.get("PERF_SRC") or str(ROOT))  # PERF_SRC=OTHER_TREE: that tree's engine, side by side

from bench_scale import WideServer  # noqa: E402

from persona_tui.config import Settings  # noqa: E402
from persona_tui.engine import events as ev  # noqa: E402
from persona_tui.engine.pipeline import generate  # noqa: E402
from persona_tui.engine.providers.openai_compatible import OpenAIProvider  # noqa: E402
from persona_tui.models import GenerationRequest  # noqa: E402
from persona_tui.storage import PersonaStore  # noqa: E402
from tests.helpers import persona_dict  # noqa: E402


def scenarios(count: int, first: float, rate: float, chunk: int) -> tuple[list[dict[str, Any]], float]:
    """Each persona with its own name; and one stream's scripted time (they are all as long)."""
    out = []
    longest = 0.0
    for i in range(count):
        content = json.dumps(persona_dict(f"Tester Number{i:05d}"))
        out.append({"content": content, "first_token_delay": first, "token_delay": 1 / rate, "chunk_chars": chunk})
        longest = max(longest, first + math.ceil(len(content) / chunk) / rate)
    return out, longest


async def one_run(server: WideServer, n: int, k: int, rate: float, chunk: int, first: float) -> dict[str, float]:
    script, stream_time = scenarios(n + k, first, rate, chunk)
    server.script(*script)
    with tempfile.TemporaryDirectory(prefix="bench-thousand-") as tmp:
        data = Path(tmp)
        provider = OpenAIProvider(model="bench-model", api_key=None, base_url=server.base_url, read_timeout=60)
        settings = Settings(
            data_dir=data,
            concurrency=k,
            max_attempts=2,
            first_token_timeout=60,
            idle_timeout=60,
            # The scripted personas fit no slot and read alike: without these each would be asked for again.
            population_plan=False,
            regenerate_duplicates=False,
        )
        saved = failed = chunks = 0
        cpu0, started = time.process_time(), time.monotonic()
        async for event in generate(
            GenerationRequest.create("bench people", n),
            provider=provider,
            store=PersonaStore(settings.personas_dir),
            settings=settings,
        ):
            if isinstance(event, ev.TokenDelta):
                chunks += 1
            elif isinstance(event, ev.PersonaSaved):
                saved += 1
            elif isinstance(event, ev.Failed):
                failed += 1
        wall, cpu = time.monotonic() - started, time.process_time() - cpu0
        await provider.aclose()
        files = sum(1 for name in os.listdir(data / "personas") if name.endswith(".json"))
    ideal = math.ceil(n / k) * stream_time
    return {
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal,
        "saved": saved,
        "failed": failed,
        "files": files,
        "chunks_per_s": chunks / wall,
        "cpu_use": cpu / wall,
        "cpu_per_chunk_us": cpu / max(chunks, 1) * 1e6,
    }


async def floor_run(server: WideServer, n: int, k: int, rate: float, chunk: int, first: float) -> dict[str, float]:
    """The same streams read by a bare HTTP client (the transport the official client runs on) with a
    line split and a parse of each ``data:`` line, and nothing else: the floor of what a chunk costs."""
    import importlib.util

    import jiter

    # The transport the official client runs on: httpx2 in the openai releases here, else httpx.
    httpx: Any = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")

    script, stream_time = scenarios(n + k, first, rate, chunk)
    server.script(*script)
    body = {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": "bench people"}]}
    gate = asyncio.Semaphore(k)

    async def one(client: Any) -> int:
        chunks = 0
        async with gate, client.stream("POST", server.base_url + "/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    jiter.from_json(line[6:].encode())
                    chunks += 1
        return chunks

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=k), timeout=60) as client:
        cpu0, started = time.process_time(), time.monotonic()
        chunks = sum(await asyncio.gather(*(one(client) for _ in range(n))))
        wall, cpu = time.monotonic() - started, time.process_time() - cpu0
    ideal = math.ceil(n / k) * stream_time
    return {"wall": wall, "ideal": ideal, "ratio": wall / ideal, "chunks_per_s": chunks / wall,
            "cpu_use": cpu / wall, "cpu_per_chunk_us": cpu / max(chunks, 1) * 1e6}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("-k", "--concurrency", type=int, default=64)
    parser.add_argument("--rates", default="25,100,400", help="chunks a second per stream, comma-separated")
    parser.add_argument("--chunk", type=int, default=4, help="characters a chunk")
    parser.add_argument("--first", type=float, default=0.3, help="seconds to the first chunk")
    parser.add_argument("--floor", action="store_true", help="also read the same streams with a bare HTTP client")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args()
    n, k, rates = args.count, args.concurrency, [float(r) for r in args.rates.split(",")]
    if args.quick:
        n, k, rates = 12, 4, [2000.0]
    print(f"{n} personas at K = {k}, {args.chunk} characters a chunk, first chunk after {args.first} s", flush=True)
    with WideServer() as server:
        for rate in rates:
            r = await one_run(server, n, k, rate, args.chunk, 0.0 if args.quick else args.first)
            print(
                f"rate {rate:>6.0f}/s per stream ({rate * k:>8,.0f}/s offered): wall {r['wall']:7.2f} s, "
                f"ideal {r['ideal']:7.2f} s, ratio {r['ratio']:.3f}; saved {r['saved']:.0f} (files {r['files']:.0f}), "
                f"failed {r['failed']:.0f}; {r['chunks_per_s']:,.0f} chunks/s received; client CPU "
                f"{r['cpu_use']:.0%} of one core, {r['cpu_per_chunk_us']:.1f} µs a chunk",
                flush=True,
            )
            if args.floor:
                f = await floor_run(server, n, k, rate, args.chunk, 0.0 if args.quick else args.first)
                times = r["cpu_per_chunk_us"] / f["cpu_per_chunk_us"]
                print(
                    f"  floor (bare HTTP client + a JSON parse a line): wall {f['wall']:7.2f} s, ratio "
                    f"{f['ratio']:.3f}; {f['chunks_per_s']:,.0f} chunks/s; client CPU {f['cpu_use']:.0%}, "
                    f"{f['cpu_per_chunk_us']:.1f} µs a chunk (ours / floor: {times:.2f}x)",
                    flush=True,
                )


if __name__ == "__main__":
    asyncio.run(main())
