"""Batch concurrency: 20 personas at K = 1, 4 and 8 parallel streams, against the ideal.

A loopback server (tests/fake_openai.py) answers every request after 1 s with a
persona streamed at 50 tokens per second. The ideal wall time of a batch is the
slowest stream's time times the number of rounds (ceil(20 / K)); the ratio of the
measured wall time to it shows what the pipeline, the client and the server add.

    python bench/bench_batch.py            # the full run, about 4 minutes
    python bench/bench_batch.py --quick    # a smoke run of a few seconds

No timing is asserted anywhere: the numbers go to stdout (and, with --write, into
BENCHMARKS.md) for a person to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persona_tui.config import Settings  # noqa: E402
from persona_tui.engine import events as ev  # noqa: E402
from persona_tui.engine.pipeline import generate  # noqa: E402
from persona_tui.engine.providers.openai_compatible import OpenAIProvider  # noqa: E402
from persona_tui.models import GenerationRequest  # noqa: E402
from persona_tui.storage import PersonaStore  # noqa: E402
from tests.fake_openai import FakeOpenAIServer, Scenario  # noqa: E402
from tests.helpers import persona_dict  # noqa: E402

FIRST_NAMES = [
    "Ana",
    "Bo",
    "Chen",
    "Dana",
    "Emeka",
    "Farah",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kemal",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tomas",
]


def scenarios(count: int, first_token: float, token_delay: float, chunk: int) -> list[Scenario]:
    out = []
    for i in range(count):
        content = json.dumps(persona_dict(f"{FIRST_NAMES[i % len(FIRST_NAMES)]} Tester{i}"))
        out.append(Scenario(content=content, first_token_delay=first_token, token_delay=token_delay, chunk_chars=chunk))
    return out


async def one_batch(server: FakeOpenAIServer, n: int, k: int, data: Path) -> dict[str, float]:
    provider = OpenAIProvider(model="bench-model", api_key=None, base_url=server.base_url, read_timeout=60)
    settings = Settings(
        data_dir=data,
        concurrency=k,
        max_attempts=1,
        first_token_timeout=30,
        idle_timeout=30,
        # The fake server's persona is fixed: it fits no slot and every one reads alike. Without these
        # each persona would be asked for twice (a correction, a rewrite) and the batch would measure that.
        population_plan=False,
        regenerate_duplicates=False,
    )
    sent: dict[int, float] = {}
    streams: list[float] = []
    tokens = 0
    started = time.monotonic()
    saved = 0
    async for event in generate(
        GenerationRequest.create("bench people", n),
        provider=provider,
        store=PersonaStore(settings.personas_dir),
        settings=settings,
    ):
        now = time.monotonic()
        if isinstance(event, ev.RequestSent):
            sent[event.index] = now
        elif isinstance(event, ev.StageFinished) and event.stage is ev.Stage.STREAMING:
            streams.append(now - sent[event.index])
        elif isinstance(event, ev.PersonaSaved):
            saved += 1
            tokens += event.tokens
    wall = time.monotonic() - started
    await provider.aclose()
    names = {json.loads(p.read_text())["persona"]["name"] for p in (data / "personas").glob("[!.]*.json")}
    ideal = max(streams) * math.ceil(n / k)
    return {
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal,
        "saved": saved,
        "distinct": len(names),
        "slowest": max(streams),
        "tokens_per_persona": tokens / max(saved, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--runs", type=int, default=3, help="runs per K (K = 1 runs once in the full run)")
    args = parser.parse_args()
    if args.quick:
        n, ks, first, delay, runs = 4, (1, 2), 0.05, 0.001, 1
    else:
        n, ks, first, delay, runs = 20, (1, 4, 8), 1.0, 0.02, args.runs
    rows = []
    with FakeOpenAIServer() as server:
        for k in ks:
            results = []
            for _ in range(1 if k == 1 and not args.quick else runs):
                server.script(*scenarios(n + 5, first, delay, chunk=4))
                with tempfile.TemporaryDirectory() as tmp:
                    results.append(await one_batch(server, n, k, Path(tmp)))
            med = {key: statistics.median(r[key] for r in results) for key in results[0]}
            rows.append((k, len(results), med))
            print(
                f"K={k:<2} runs={len(results)}  wall {med['wall']:6.2f} s  ideal {med['ideal']:6.2f} s  "
                f"ratio {med['ratio']:.3f}  saved {med['saved']:.0f}/{n} distinct {med['distinct']:.0f}  "
                f"slowest stream {med['slowest']:.2f} s  {med['tokens_per_persona']:.0f} tokens/persona",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
