"""Issue 16: runs with a manifest, resume after a cancel or a kill, the runs listing, the names index,
counts up to 10,000 and a worker pool bounded by the lanes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.diversity import SimilarityIndex
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.models import COUNT_MAX, GenerationRequest, PersonaRecord, RequestError, RunRecord
from persona_tui.storage import PersonaStore, RunStore, run_state
from tests.helpers import persona_dict

DESCRIPTION = "bakers in Porto"


def settings(tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "seed": 3, "concurrency": 3, "offline_tokens_per_second": 0}
    values.update(kw)
    return Settings(**values)


async def drive(
    s: Settings,
    request: GenerationRequest,
    *,
    resume: RunRecord | None = None,
    stop_after: int = 0,
    runs: RunStore | None = None,
    on_event: Any = None,
) -> list[ev.Event]:
    """Run a generation to its end; with ``stop_after``, set the cancel event once that many are saved."""
    cancel = asyncio.Event()
    events: list[ev.Event] = []
    async for event in generate(
        request,
        provider=OfflineProvider(seed=1, tokens_per_second=0),
        store=PersonaStore(s.personas_dir),
        settings=s,
        estimates=EstimateBook(None),
        cancel=cancel,
        rng=random.Random(0),
        runs=runs or RunStore(s.runs_dir),
        resume=resume,
    ):
        events.append(event)
        if on_event is not None:
            on_event(event)
        saved = sum(isinstance(e, ev.PersonaSaved) for e in events)
        if stop_after and saved >= stop_after:
            cancel.set()
    return events


def stored(folder: Path) -> list[PersonaRecord]:
    """The personas in the folder (a killed writer's temporary file, a dot-name, is not one)."""
    return [PersonaRecord.model_validate_json(p.read_bytes()) for p in folder.glob("[!.]*.json")]


def assert_whole_run(s: Settings, run: RunRecord, count: int) -> None:
    """Every slot has exactly one persona of the run, as planned, with no name twice."""
    records = [r for r in stored(s.personas_dir) if r.run_id == run.id]
    assert len(records) == count
    assert sorted(r.slot.index for r in records if r.slot is not None) == list(range(count))
    assert len({r.persona.name.casefold() for r in records}) == count
    assert run.plan is not None
    for record in records:
        assert record.slot == run.plan.slots[record.slot.index]  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_cancel_mid_run_then_resume_makes_only_the_rest(tmp_path: Path) -> None:
    s = settings(tmp_path)
    request = GenerationRequest.create(DESCRIPTION, 12)
    first = await drive(s, request, stop_after=4)
    assert isinstance(first[-1], ev.Finished) and first[-1].summary.cancelled
    run = RunStore(s.runs_dir).latest_sync()
    assert run is not None and run.stopped and run_state(run) == "unfinished"
    before = len(stored(s.personas_dir))
    assert 4 <= before < 12
    assert len(run.saved) == before and set(run.saved.values()) == {r.id for r in stored(s.personas_dir)}
    plan = run.plan
    first_saved = set(run.saved)

    second = await drive(s, run.to_request(), resume=run)
    summary = second[-1].summary  # type: ignore[union-attr]
    assert summary.ok and len(summary.saved) == 12 - before
    assert {e.index for e in second if isinstance(e, ev.PersonaSaved)}.isdisjoint(first_saved)
    done = RunStore(s.runs_dir).latest_sync()
    assert done is not None and done.id == run.id and done.plan == plan
    assert run_state(done) == "finished" and len(done.persona_ids) == 12 and not done.in_flight
    assert_whole_run(s, done, 12)
    # The report at the end of the resumed session is the whole run's, not the session's.
    report = next(e.report for e in second if isinstance(e, ev.DiversityReported))
    assert report.count == 12


@pytest.mark.asyncio
async def test_a_resumed_run_checks_its_new_personas_against_those_saved_before(tmp_path: Path) -> None:
    s = settings(tmp_path, concurrency=1)
    request = GenerationRequest.create(DESCRIPTION, 6)
    await drive(s, request, stop_after=2)
    run = RunStore(s.runs_dir).latest_sync()
    assert run is not None
    earlier = {r.persona.name for r in stored(s.personas_dir)}
    held: list[list[str]] = []
    nearest = SimilarityIndex.nearest

    def spy(index: SimilarityIndex, persona: Any) -> Any:
        held.append([p.persona.name if hasattr(p, "persona") else p.name for p, _ in index._bags])
        return nearest(index, persona)

    SimilarityIndex.nearest = spy  # type: ignore[method-assign]
    try:
        await drive(s, run.to_request(), resume=run)
    finally:
        SimilarityIndex.nearest = nearest  # type: ignore[method-assign]
    assert held and earlier <= set(held[0])  # the first new persona already meets the earlier ones


@pytest.mark.asyncio
async def test_resume_of_a_finished_run_makes_nothing(tmp_path: Path) -> None:
    s = settings(tmp_path)
    await drive(s, GenerationRequest.create(DESCRIPTION, 3))
    run = RunStore(s.runs_dir).latest_sync()
    assert run is not None and run_state(run) == "finished"
    events = await drive(s, run.to_request(), resume=run)
    assert not any(isinstance(e, ev.PersonaSaved) for e in events)
    assert len(stored(s.personas_dir)) == 3


@pytest.mark.asyncio
async def test_manifest_writes_are_coalesced(tmp_path: Path) -> None:
    s = settings(tmp_path, concurrency=4)

    class Counting(RunStore):
        writes = 0

        async def save(self, run: RunRecord) -> Path:
            Counting.writes += 1
            return await super().save(run)

    started = time.monotonic()
    await drive(s, GenerationRequest.create(DESCRIPTION, 120), runs=Counting(s.runs_dir))
    seconds = time.monotonic() - started
    assert Counting.writes <= 2 + seconds / 0.5 + 2, (Counting.writes, seconds)
    run = RunStore(s.runs_dir).latest_sync()
    assert run is not None and len(run.saved) == 120 and run.finished_at is not None


@pytest.mark.asyncio
async def test_worker_pool_is_bounded_by_the_lanes(tmp_path: Path) -> None:
    s = settings(tmp_path, concurrency=3)
    most, tasks = 0, 0

    def count_tasks(_: ev.Event) -> None:
        nonlocal most, tasks
        names = [getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks()]
        most = max(most, sum(name in ("_lane", "_job") for name in names))
        tasks = max(tasks, len(names))

    events = await drive(s, GenerationRequest.create(DESCRIPTION, 150), on_event=count_tasks)
    assert events[-1].summary.ok  # type: ignore[union-attr]
    assert most == 3  # one worker per lane, not one task per persona
    assert tasks < 20, tasks  # with each lane's own helpers, nowhere near the 150 personas


def test_counts_up_to_ten_thousand() -> None:
    assert COUNT_MAX == 10_000
    assert GenerationRequest.create("nurses", 10_000).count == 10_000
    with pytest.raises(RequestError) as info:
        GenerationRequest.create("nurses", 10_001)
    assert "1 to 10,000" in info.value.message


# ----- the names index -----


def record_for(name: str, description: str = DESCRIPTION, run_id: str | None = None) -> PersonaRecord:
    return PersonaRecord.model_validate(
        {
            "provider": "offline",
            "model": "templates",
            "request": {"description": description},
            "generation_seconds": 0.1,
            "tokens": 10,
            "persona": persona_dict(name),
            "run_id": run_id,
        }
    )


@pytest.mark.asyncio
async def test_names_index_follows_saves_and_deletes(tmp_path: Path) -> None:
    store = PersonaStore(tmp_path / "personas")
    await store.save(record_for("Ana Sousa"))
    assert [e.name for e in await store.names(DESCRIPTION)] == ["Ana Sousa"]  # built from the files
    second = record_for("Rui Costa")
    await store.save(second)
    await store.save(record_for("Joana Lima", description="miners in Chile"))
    assert store.index.fresh()
    assert sorted(e.name for e in await store.names(DESCRIPTION.upper())) == ["Ana Sousa", "Rui Costa"]
    await store.delete(second.id)
    assert store.index.fresh()
    assert [e.name for e in await store.names(DESCRIPTION)] == ["Ana Sousa"]
    assert [e.people for e in await store.names("miners in chile")] == ["Joana Lima (47, Field nurse, Kisumu, Kenya)"]


@pytest.mark.asyncio
async def test_names_index_is_rebuilt_when_stale_or_missing(tmp_path: Path) -> None:
    store = PersonaStore(tmp_path / "personas")
    await store.save(record_for("Ana Sousa"))
    await store.names(DESCRIPTION)
    assert store.index.fresh()
    # Another program drops a file in: the folder's time moves on without the index.
    time.sleep(0.01)
    outside = record_for("Tiago Reis")
    (store.root / f"tiago-reis-{outside.id}.json").write_text(outside.model_dump_json())
    assert not store.index.fresh()
    assert sorted(e.name for e in await store.names(DESCRIPTION)) == ["Ana Sousa", "Tiago Reis"]
    assert store.index.fresh()
    shutil.rmtree(store.index.folder)
    again = PersonaStore(store.root)
    assert sorted(e.name for e in await again.names(DESCRIPTION)) == ["Ana Sousa", "Tiago Reis"]
    assert again.index.fresh()
    # An unreadable index line means a rebuild, not a crash.
    shard = next(store.index.folder.glob("names-*.jsonl"))
    shard.write_text("not json\n")
    assert store.index.entries(DESCRIPTION) is None
    assert len(await store.names(DESCRIPTION)) == 2


@pytest.mark.asyncio
async def test_a_file_added_while_the_index_is_rebuilt_leaves_it_stale(tmp_path: Path) -> None:
    """The folder's time is read before its files are listed: one that lands after the listing is not lost."""
    store = PersonaStore(tmp_path / "personas")
    await store.save(record_for("Ana Sousa"))
    await store.names(DESCRIPTION)
    shutil.rmtree(store.index.folder)
    late = record_for("Tiago Reis")
    listing = store.load_all_sync

    def list_then_another_program_saves(*args: Any) -> Any:
        result = listing(*args)
        (store.root / f"tiago-reis-{late.id}.json").write_text(late.model_dump_json())
        stamp = os.stat(store.root).st_mtime_ns + 1_000_000  # the clock moved on, whatever its granularity
        os.utime(store.root, ns=(stamp, stamp))
        return result

    store.load_all_sync = list_then_another_program_saves  # type: ignore[method-assign]
    assert [e.name for e in await store.names(DESCRIPTION)] == ["Ana Sousa"]  # as listed
    assert not store.index.fresh()
    store.load_all_sync = listing  # type: ignore[method-assign]
    assert sorted(e.name for e in await store.names(DESCRIPTION)) == ["Ana Sousa", "Tiago Reis"]


# ----- the command line -----


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    clean.update(
        PERSONA_TUI_DATA_DIR=str(tmp_path / "data"),
        PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND="0",
        PERSONA_TUI_PROVIDER="offline",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        COLUMNS="160",
    )
    return clean


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_runs_listing_and_resume_of_a_finished_run(env: dict[str, str]) -> None:
    assert "nothing" not in cli(env, "runs").stderr
    none = cli(env, "resume")
    assert none.returncode == 2 and "There is no unfinished run to resume." in none.stderr and "Hint:" in none.stderr
    assert cli(env, "generate", "bakers in Porto", "-n", "2").returncode == 0
    assert cli(env, "generate", "miners in Chile", "-n", "3").returncode == 0
    rows = json.loads(cli(env, "runs", "--json").stdout)
    assert [r["description"] for r in rows] == ["miners in Chile", "bakers in Porto"]
    assert [(r["count"], r["saved"], r["failed"], r["state"]) for r in rows] == [
        (3, 3, 0, "finished"),
        (2, 2, 0, "finished"),
    ]
    table = cli(env, "runs")
    assert table.returncode == 0 and rows[0]["id"][:8] in table.stdout and "finished" in table.stdout
    again = cli(env, "resume", rows[1]["id"][:6])
    assert again.returncode == 2
    assert "is finished: all 2 of its personas are saved, so there is nothing to resume." in " ".join(
        again.stderr.split()
    )
    assert "Hint:" in again.stderr and "Traceback" not in again.stderr
    short = cli(env, "resume", "abc")
    assert short.returncode == 2 and "at least 4 characters" in short.stderr


def test_sigkill_mid_run_then_resume_saves_all_once(env: dict[str, str]) -> None:
    count = 16
    slow = {**env, "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "600"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "persona_tui", "generate", "bakers in Porto", "-n", str(count), "-j", "3"],
        env=slow,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = Path(env["PERSONA_TUI_DATA_DIR"]) / "personas"
    kill_at = random.Random().randint(1, count // 2)
    deadline = time.monotonic() + 60
    while len(list(folder.glob("[!.]*.json"))) < kill_at and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = len(list(folder.glob("[!.]*.json")))
    assert 1 <= before < count
    rows = json.loads(cli(env, "runs", "--json").stdout)
    assert rows[0]["state"] == "unfinished"
    assert rows[0]["saved"] == before, "counted in the store, not the manifest's last checkpoint"
    plan_before = RunRecord.model_validate_json(next((folder.parent / "runs").glob("run-*.json")).read_bytes()).plan
    resumed = cli(env, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    records = stored(folder)
    assert len(records) == count
    assert len({r.run_id for r in records}) == 1
    slots = Counter(r.slot.index for r in records if r.slot is not None)
    assert sorted(slots) == list(range(count)) and max(slots.values()) == 1
    assert len({r.persona.name.casefold() for r in records}) == count
    run = RunStore(folder.parent / "runs").latest_sync()
    assert run is not None and run.plan == plan_before and run_state(run) == "finished"
    assert json.loads(cli(env, "runs", "--json").stdout)[0]["state"] == "finished"


# ----- the app -----


@pytest.mark.asyncio
async def test_app_offers_to_resume_and_ctrl_shift_r_continues(tmp_path: Path, app_factory: Any) -> None:
    s = settings(tmp_path)
    await drive(s, GenerationRequest.create(DESCRIPTION, 10), stop_after=3)
    run = RunStore(s.runs_dir).latest_sync()
    assert run is not None and run_state(run) == "unfinished"
    app = app_factory(
        OfflineProvider(seed=1, tokens_per_second=0), population_plan=True, seed=3, offline_tokens_per_second=0
    )
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(100):
            await pilot.pause(0.02)
            if app._notifications:
                break
        said = [f"{n.title}: {n.message}" for n in app._notifications]
        assert any("An unfinished run (bakers in Porto) has" in m and "ctrl+b" in m for m in said), said
        await pilot.press("ctrl+b")
        for _ in range(300):
            await pilot.pause(0.02)
            if not app.running and len(stored(s.personas_dir)) == 10:
                break
    done = RunStore(s.runs_dir).latest_sync()
    assert done is not None and done.id == run.id and run_state(done) == "finished"
    assert_whole_run(s, done, 10)


@pytest.mark.asyncio
async def test_the_app_resumes_a_run_with_its_own_model_or_says_why_not(tmp_path: Path, app_factory: Any) -> None:
    s = settings(tmp_path)
    await drive(s, GenerationRequest.create(DESCRIPTION, 6), stop_after=2)
    runs = RunStore(s.runs_dir)
    run = runs.latest_sync()
    assert run is not None
    run.provider, run.model = "nowhere-ai", "ghost-1"  # made with a provider this machine does not have
    await runs.save(run)
    before = len(stored(s.personas_dir))
    app = app_factory(OfflineProvider(seed=1, tokens_per_second=0), offline_tokens_per_second=0)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("ctrl+b")
        for _ in range(100):
            await pilot.pause(0.02)
            if any(n.title == "Run not resumed" for n in app._notifications):
                break
        said = [n.message for n in app._notifications if n.title == "Run not resumed"]
        assert said and "was made with ghost-1 (nowhere-ai), which is not set up here" in said[0]
        assert not app.running
    assert len(stored(s.personas_dir)) == before  # nothing made with another model in its place


@pytest.mark.asyncio
async def test_names_come_from_the_files_when_the_index_cannot_be_written(tmp_path: Path) -> None:
    store = PersonaStore(tmp_path / "personas")
    await store.save(record_for("Ana Sousa"))
    (tmp_path / ".index").write_text("a file where the index's folder would be")
    assert [e.name for e in await store.names(DESCRIPTION)] == ["Ana Sousa"]
    await store.save(record_for("Rui Costa"))  # a save is not stopped by it either
    assert sorted(e.name for e in await store.names(DESCRIPTION)) == ["Ana Sousa", "Rui Costa"]


def test_a_killed_process_nobody_reaped_is_not_running() -> None:
    """In a container whose init does not reap, a SIGKILLed run stays a zombie: it must not count as running."""
    import signal
    import subprocess
    import sys
    import time

    from persona_tui.storage import _alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _alive(child.pid)
        child.send_signal(signal.SIGKILL)
        for _ in range(100):  # not reaped: a zombie until wait()
            if not _alive(child.pid):
                break
            time.sleep(0.02)
        assert not _alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_run_whose_pid_went_to_another_process_is_not_running(tmp_path: Path) -> None:
    """Containers hand out the same pids after a restart: a recorded start time tells the processes apart."""
    import os

    from persona_tui.models import RequestInfo, RunRecord
    from persona_tui.storage import process_start, run_state

    run = RunRecord(provider="offline", model="m", request=RequestInfo(description="x"), count=3, pid=1)
    started = process_start(1)
    if started is None:
        pytest.skip("no /proc here: the start time cannot be read")
    run.pid_start = started
    assert run_state(run) == "running"  # pid 1 with its own start time: alive
    run.pid_start = started + 1
    assert run_state(run) == "unfinished"  # the same pid, another process
    run.pid, run.pid_start = os.getpid(), process_start(os.getpid())
    assert run_state(run) == "unfinished", "the process asking is not the run it asks about"


def test_a_resumed_run_keeps_its_numbers_and_counts_what_was_saved_before() -> None:
    """Tags say the run's own numbers ([14/20], not [14/13]) and the end counts every persona of the run."""
    from persona_tui.batch_state import BatchState
    from persona_tui.engine import events as ev
    from persona_tui.narrate import finished_summary

    state = BatchState.begin(20, 0.0, already=7)
    assert state.saved == 7
    summary = ev.Summary(saved=(), failed=0, cancelled=False, seconds=3.0, tokens=0, already=7)
    assert finished_summary(summary, 20).startswith("7 of 20 saved in 3.0 s (0 now)")
