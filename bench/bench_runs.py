"""Issue 16: a run's start against the size of the store, and resume after a SIGKILL.

1. Run start: the preparing stage's time (the folder check and the names already taken) for a
   1-persona offline run with 0, 10,000 and 50,000 personas stored. The stored files are written
   directly as JSON, spread over 200 descriptions (the run's own holds 1/200 of them); the first
   start after they are written finds no names index and builds it (in a worker thread), every later
   one reads the index. For comparison: the old way, reading and validating every file.
2. Resume: a 200-persona offline run in a subprocess (the CLI, slowed to a pace), killed with
   SIGKILL at a random point, then `persona-tui resume`: all 200 saved, none twice, same slots.

    python bench/bench_runs.py           # the full run, about 2 minutes
    python bench/bench_runs.py --quick   # small sizes, a few seconds

No timing is asserted: the numbers go to stdout for a person to read (and into BENCHMARKS.md by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persona_tui.config import Settings  # noqa: E402
from persona_tui.engine import events as ev  # noqa: E402
from persona_tui.engine.estimate import EstimateBook  # noqa: E402
from persona_tui.engine.pipeline import generate  # noqa: E402
from persona_tui.engine.providers.offline import OfflineProvider  # noqa: E402
from persona_tui.models import GenerationRequest, PersonaRecord  # noqa: E402
from persona_tui.storage import PersonaStore, RunStore  # noqa: E402
from tests.helpers import persona_dict  # noqa: E402

DESCRIPTIONS = 200
RUN_DESCRIPTION = "description 0"


def write_store(folder: Path, count: int, descriptions: int = DESCRIPTIONS) -> None:
    """``count`` persona files, written as JSON directly (no pipeline), over ``DESCRIPTIONS`` descriptions."""
    folder.mkdir(parents=True, exist_ok=True)
    template = PersonaRecord.model_validate(
        {
            "provider": "offline",
            "model": "templates",
            "request": {"description": RUN_DESCRIPTION},
            "generation_seconds": 0.1,
            "tokens": 100,
            "persona": persona_dict("Ana Sousa"),
        }
    ).model_dump(mode="json")
    for i in range(count):
        template["id"] = uuid.uuid4().hex
        template["request"]["description"] = f"description {i % descriptions}"
        template["persona"]["name"] = f"Person Number{i}"
        (folder / f"person-{template['id']}.json").write_text(json.dumps(template))


async def preparing_seconds(data: Path) -> float:
    """The preparing stage's time of a 1-persona offline run."""
    s = Settings(data_dir=data, offline_tokens_per_second=0, seed=1)
    async for event in generate(
        GenerationRequest.create(RUN_DESCRIPTION, 1),
        provider=OfflineProvider(seed=1, tokens_per_second=0),
        store=PersonaStore(s.personas_dir),
        settings=s,
        estimates=EstimateBook(None),
        runs=RunStore(s.runs_dir),
    ):
        if isinstance(event, ev.StageFinished) and event.stage is ev.Stage.PREPARING:
            return event.seconds
    raise RuntimeError("no preparing stage")


def start_times(sizes: list[int], repeats: int, descriptions: int = DESCRIPTIONS) -> list[str]:
    lines = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            write_store(data / "personas", size, descriptions)
            first = asyncio.run(preparing_seconds(data))
            warm = statistics.median(asyncio.run(preparing_seconds(data)) for _ in range(repeats))
            started = time.perf_counter()
            PersonaStore(data / "personas").load_all_sync()
            old = time.perf_counter() - started
        lines.append(
            f"stored={size:,} over {descriptions} description(s): run start {warm * 1000:.1f} ms "
            f"(median of {repeats}); first start, building the "
            f"index: {first * 1000:.0f} ms; reading every file (the old way): {old * 1000:.0f} ms"
        )
        print(lines[-1], flush=True)
    return lines


def cli(env: dict[str, str], *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True)


def resume_after_kill(count: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
        env.update(
            PERSONA_TUI_DATA_DIR=str(Path(tmp) / "data"),
            PERSONA_TUI_PROVIDER="offline",
            PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND="4000",
            XDG_CONFIG_HOME=str(Path(tmp) / "config"),
        )
        folder = Path(tmp) / "data" / "personas"
        proc = subprocess.Popen(
            [sys.executable, "-m", "persona_tui", "generate", "bakers in Porto", "-n", str(count), "-j", "4"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        kill_at = random.randint(count // 10, count * 3 // 4)
        while len(list(folder.glob("[!.]*.json"))) < kill_at and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = len(list(folder.glob("[!.]*.json")))
        state = json.loads(cli(env, "runs", "--json").stdout)[0]
        started = time.perf_counter()
        resumed = cli({**env, "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "0"}, "resume")
        seconds = time.perf_counter() - started
        records = [PersonaRecord.model_validate_json(p.read_bytes()) for p in folder.glob("[!.]*.json")]
        slots = Counter(r.slot.index for r in records if r.slot is not None)
        names = Counter(r.persona.name.casefold() for r in records)
        duplicates = sum(n - 1 for n in slots.values()) + sum(n - 1 for n in names.values())
        line = (
            f"resume after SIGKILL of a {count}-persona run: killed with {before} saved "
            f"(manifest said {state['saved']}, state {state['state']}); resume exit {resumed.returncode} in "
            f"{seconds:.1f} s; {len(records)} saved, {len(slots)} distinct slots, {duplicates} duplicates; "
            f"runs says {json.loads(cli(env, 'runs', '--json').stdout)[0]['state']}"
        )
        print(line, flush=True)
        return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--worst", action="store_true", help="also the worst case: every stored persona made for the run's description"
    )
    args = parser.parse_args()
    sizes = [0, 500, 2_000] if args.quick else [0, 10_000, 50_000]
    start_times(sizes, 3 if args.quick else 7)
    if args.worst:
        start_times(sizes[1:], 3 if args.quick else 7, descriptions=1)
    resume_after_kill(40 if args.quick else 200)


if __name__ == "__main__":
    main()
