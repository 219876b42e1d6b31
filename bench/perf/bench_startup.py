"""Target 6: starting the app with 10,000 saved personas.

10,000 valid persona files (``PersonaRecord`` written as ``PersonaStore.save``
writes them: ``model_dump_json(indent=2)``, named by ``file_name_for``) go into
a temporary data dir. Each run is a fresh process (startup_child.py) that
builds the app with ``make_app`` and runs it headless (``run_test``, terminal
encoding simulated), reporting:

* time to the first frame, from the app's construction (imports done) and
  from the process spawn;
* time until the table holds all 10,000 rows (``PersonaTable.load_async``
  returned), and to the first frame after it;
* peak memory: the process's peak resident set (``VmHWM`` from /proc; ``ru_maxrss``
  is also recorded, but on Linux it carries the parent's RSS across the exec).

The same is measured with an empty data dir, as the baseline. The files are
written once, so the runs read them from a warm page cache.

Run alone: ``python bench/perf/bench_startup.py [--runs N] [--count N] [--quick]``.

Side by side (issue 16, the table at 50,000): ``--compare SRC`` runs the same children
alternately against another source tree (``git archive main | tar -x -C SRC``), the
first frame with rows and the peak memory of each, medians; and one start of this tree
with the indexes removed first (the one start that reads every file, to rebuild them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Result, child_env, median

HERE = Path(__file__).resolve().parent
COUNT = 10_000
ADDED = 100
"""With --compare: personas another program removes and adds before a start (the index is refreshed, not rebuilt)."""

FIRST = ["Amina", "Bo", "Chen", "Dana", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kofi", "Lena"]
LAST = ["Otieno", "Lindqvist", "Wei", "Kowalski", "Yilmaz", "Haddad", "Mensah", "Tanaka", "Silva", "Berg"]
JOBS = ["Field nurse", "Warehouse lead", "UX researcher", "Teacher", "Farmer", "Driver", "Pharmacist"]
PLACES = ["Kisumu, Kenya", "Gothenburg, Sweden", "Chengdu, China", "Porto, Portugal", "Accra, Ghana"]


def write_personas(folder: Path, count: int, first: int = 0) -> None:
    """``count`` valid persona files, as the store writes them."""
    from persona_tui.models import Persona, PersonaRecord, RequestInfo
    from persona_tui.storage import file_name_for

    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(first, first + count):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i}"
        persona = Persona(
            name=name,
            age=20 + i % 50,
            pronouns=("she/her", "he/him", "they/them")[i % 3],
            location=PLACES[i % len(PLACES)],
            occupation=JOBS[i % len(JOBS)],
            background=f"{name} has worked for {i % 30 + 1} years. Drives between villages twice a week, "
            "keeps paper notes when the signal drops and types them up at night.",
            goals=["Keep vaccine records accurate", "Train two new nurses", "Spend less time on forms"],
            frustrations=["Patchy mobile signal", "Paper forms that get wet", "Apps that need a login each time"],
            personality_traits=["patient", "practical", "wry", "curious"],
            tech_savviness=("novice", "basic", "intermediate", "advanced", "expert")[i % 5],
            communication_style="Short, warm sentences; asks before she explains.",
            quote="If it works in the rain, I will use it.",
        )
        record = PersonaRecord(
            id=hashlib.sha256(f"persona-{i}".encode()).hexdigest()[:32],
            created_at=start + timedelta(minutes=i),
            provider="openai",
            model="gpt-4o-mini",
            request=RequestInfo(description=f"field workers, batch {i // 50}"),
            generation_seconds=9.4,
            tokens=412,
            persona=persona,
        )
        (folder / file_name_for(record)).write_text(record.model_dump_json(indent=2) + "\n")


def child(
    data_dir: Path,
    expected: int,
    provider: str = "openai",
    profile_to: Path | None = None,
    src: Path | None = None,
) -> dict[str, float]:
    env = child_env(**({"PYTHONPATH": str(src), "PERF_SRC": str(src)} if src is not None else {}))
    extra = ["--profile", str(profile_to)] if profile_to else []
    spawned = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(HERE / "startup_child.py"), str(data_dir), repr(spawned), str(expected), provider, *extra],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"startup child failed: {done.stderr[-2000:]}")
    if profile_to:
        print(done.stderr, file=sys.stderr)
    data: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if data["rows"] != expected:
        raise RuntimeError(f"the table held {data['rows']:.0f} rows, expected {expected}")
    return data


def run_startup(runs: int, count: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="perf-startup-") as tmp:
        full, empty = Path(tmp) / "full", Path(tmp) / "empty"
        write_personas(full / "personas", count)
        (empty / "personas").mkdir(parents=True)
        child(full, count)  # warm-up: page cache, .pyc files
        loaded: list[dict[str, float]] = []
        offline: list[dict[str, float]] = []
        bare: list[dict[str, float]] = []
        for _ in range(runs):
            loaded.append(child(full, count, "openai"))
            offline.append(child(full, count, "offline"))
            bare.append(child(empty, 0, "openai"))

    def m(samples: list[dict[str, float]], key: str) -> float:
        return median(s[key] for s in samples)

    def ms(samples: list[dict[str, float]], key: str) -> str:
        return f"{m(samples, key) * 1000:.0f} ms"

    n = f"{count:,}"
    samples: dict[str, Any] = {}
    for label, group in (("openai", loaded), ("offline", offline), ("empty", bare)):
        samples.update({f"{label}_{k}": [s[k] for s in group] for k in group[0]})
    first, table, rss = (
        m(loaded, "first_frame_from_app_s"),
        m(loaded, "table_full_from_app_s"),
        m(loaded, "peak_rss_mb"),
    )
    return [
        Result(
            key="startup_first_frame",
            title=f"6a. Startup with {n} personas: time to first frame",
            measured=f"{first * 1000:.0f} ms from make_app() (openai provider; "
            f"{ms(loaded, 'first_frame_from_spawn_s')} from process spawn, imports "
            f"{ms(loaded, 'imports_s')}); offline provider: {ms(offline, 'first_frame_from_app_s')} "
            f"({ms(offline, 'first_frame_from_spawn_s')} from spawn); empty data dir, openai: "
            f"{ms(bare, 'first_frame_from_app_s')}",
            figure=first * 1000,
            unit="ms",
            target=300.0,
            target_text="≤ 300 ms",
            runs=runs,
            samples=samples,
            notes="clock starts at make_app(), after `import persona_tui.tui.app`; the openai provider is the one "
            "used with OPENAI_API_KEY set",
        ),
        Result(
            key="startup_table",
            title=f"6b. Startup with {n} personas: table holds all rows",
            measured=f"{table * 1000:.0f} ms from make_app() (records read by {ms(loaded, 'records_read_from_app_s')}; "
            f"first frame showing them {ms(loaded, 'frame_after_full_from_app_s')}; "
            f"{ms(loaded, 'table_full_from_spawn_s')} from spawn); offline provider: "
            f"{ms(offline, 'table_full_from_app_s')}",
            figure=table * 1000,
            unit="ms",
            target=1000.0,
            target_text="≤ 1 s",
            runs=runs,
        ),
        Result(
            key="startup_memory",
            title=f"6c. Startup with {n} personas: peak memory",
            measured=f"peak RSS {rss:.0f} MB (offline provider {m(offline, 'peak_rss_mb'):.0f} MB; empty data dir "
            f"{m(bare, 'peak_rss_mb'):.0f} MB, so {rss - m(bare, 'peak_rss_mb'):.0f} MB for the personas)",
            figure=rss,
            unit="MB",
            target=150.0,
            target_text="≤ 150 MB",
            runs=runs,
        ),
    ]


def run_compare(runs: int, count: int, before: Path) -> dict[str, Any]:
    """The first frame with rows and the peak memory of ``before`` (another source tree) and of this tree,
    alternately, in one session; and this tree's start with its indexes to rebuild."""
    import shutil

    with tempfile.TemporaryDirectory(prefix="perf-startup-") as tmp:
        full = Path(tmp) / "full"
        write_personas(full / "personas", count)
        child(full, count)  # warm-up: page cache, .pyc files, the indexes built
        child(full, count, src=before)
        samples: dict[str, list[dict[str, float]]] = {"before": [], "after": [], "rebuild": [], "refresh": []}
        for run in range(runs):  # the other tree's start leaves this tree's indexes stale (its probe file)
            samples["before"].append(child(full, count, src=before))
            shutil.rmtree(full / ".index", ignore_errors=True)
            samples["rebuild"].append(child(full, count))
            samples["after"].append(child(full, count))
            for old in sorted((full / "personas").glob("*.json"))[:ADDED]:  # another program's work
                old.unlink()
            write_personas(full / "personas", ADDED, first=count * 10 + run * ADDED)  # new ones each time
            samples["refresh"].append(child(full, count))

    def m(which: str, key: str) -> float:
        return median(s[key] for s in samples[which])

    out: dict[str, Any] = {"count": count, "runs": runs}
    for which in samples:
        out[which] = {
            "first_frame_with_rows_ms": m(which, "frame_after_full_from_app_s") * 1000,
            "rows_ready_ms": m(which, "table_full_from_app_s") * 1000,
            "search_ready_ms": m(which, "search_ready_from_app_s") * 1000,
            "peak_rss_mb": m(which, "peak_rss_mb"),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--quick", action="store_true", help="1 run with 500 personas")
    parser.add_argument("--profile", type=Path, default=None, help="profile one start with pyinstrument to this HTML")
    parser.add_argument("--compare", type=Path, default=None, help="another source tree to measure side by side")
    args = parser.parse_args()
    if args.compare:
        result = run_compare(args.runs, args.count, args.compare.resolve())
        for which in ("before", "after", "rebuild", "refresh"):
            r = result[which]
            print(
                f"{which:8} {args.count:,} personas: first frame with rows {r['first_frame_with_rows_ms']:.0f} ms, "
                f"rows ready {r['rows_ready_ms']:.0f} ms, search ready {r['search_ready_ms']:.0f} ms, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB (median of {args.runs})",
                flush=True,
            )
        return
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="perf-startup-") as tmp:
            write_personas(Path(tmp) / "personas", args.count)
            print(json.dumps(child(Path(tmp), args.count, "openai", args.profile), indent=1))
        return
    runs, count = (1, 500) if args.quick else (args.runs, args.count)
    for r in run_startup(runs, count):
        print(f"{r.title}: {r.measured} -> {r.figure:.0f} {r.unit} (target {r.target_text})")


if __name__ == "__main__":
    main()
