"""PersonaStore on real files: round trips, atomic writes, safe names, bad files, find and delete."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import re
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiofiles.os
import pytest
import pytest_asyncio

from persona_tui.models import Persona, PersonaRecord, RequestInfo
from persona_tui.storage import (
    TEMP_PREFIX,
    LoadProblem,
    PersonaStore,
    StoreError,
    atomic_write,
    file_name_for,
    slugify,
)
from tests.helpers import persona_dict

STEM_MAX = 40
FILE_NAME = re.compile(r"^[a-z0-9-]+-[0-9a-f]{32}\.json$")
# Written out here rather than imported, so a wrong list in the module cannot hide a bug.
WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_record(name: str = "Amina Otieno", *, created_at: datetime | None = None, **kw: Any) -> PersonaRecord:
    extra: dict[str, Any] = {"created_at": created_at} if created_at is not None else {}
    extra.update(kw)
    return PersonaRecord(
        provider="offline",
        model="sample-1",
        request=RequestInfo(description="field nurses in rural Kenya", organization="Health NGO"),
        generation_seconds=1.25,
        tokens=321,
        persona=Persona.model_validate(persona_dict(name)),
        **extra,
    )


def renamed(record: PersonaRecord, name: str) -> PersonaRecord:
    """The record with a persona name the model would not accept (too long, empty...), bypassing validation."""
    return record.model_copy(update={"persona": record.persona.model_copy(update={"name": name})})


def with_background(record: PersonaRecord, background: str) -> PersonaRecord:
    return record.model_copy(update={"persona": record.persona.model_copy(update={"background": background})})


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)) if folder.exists() else []


def snapshot(paths: list[Path]) -> dict[Path, bytes | str]:
    """Bytes of each file, or a marker for a folder (with its listing)."""
    out: dict[Path, bytes | str] = {}
    for p in paths:
        out[p] = f"dir:{sorted(os.listdir(p))}" if p.is_dir() else p.read_bytes()
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "personas"


@pytest.fixture
def store(root: Path) -> PersonaStore:
    return PersonaStore(root)


# --- round trip and order -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_save_creates_folder_and_load_round_trips_exactly(store: PersonaStore, root: Path) -> None:
    record = make_record(created_at=T0)
    assert not root.exists()
    path = await store.save(record)
    assert path.parent == root
    assert path.name == file_name_for(record)
    assert path.read_bytes().endswith(b"\n")
    assert json.loads(path.read_bytes())["kind"] == "persona-tui/persona"

    result = await store.load_all()
    assert result.problems == []
    assert result.records == [record]
    assert result.records[0].created_at == T0
    assert result.records[0].created_at.tzinfo is not None
    assert result.paths == {record.id: path}


@pytest.mark.asyncio
async def test_load_all_is_newest_first(store: PersonaStore) -> None:
    # Names chosen so that file-name order and creation order disagree.
    offsets = {"Ada": 3, "Bea": -7, "Cy": 11, "Dee": 0, "Eli": -1}
    records = [make_record(name, created_at=T0 + timedelta(minutes=m)) for name, m in offsets.items()]
    for r in records:
        await store.save(r)
    result = await store.load_all()
    assert result.problems == []
    assert [r.persona.name for r in result.records] == ["Cy", "Ada", "Dee", "Eli", "Bea"]
    assert sorted(result.records, key=lambda r: r.id) == sorted(records, key=lambda r: r.id)


@pytest.mark.asyncio
async def test_resave_same_record_replaces_its_file(store: PersonaStore, root: Path) -> None:
    record = make_record(created_at=T0)
    first = await store.save(record)
    changed = with_background(record, "Moved to Nairobi last year.")
    second = await store.save(changed)
    assert first == second
    assert [p.name for p in root.iterdir()] == [first.name]
    assert (await store.load_all()).records == [changed]


# --- atomic writes --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_temp_file_remains_after_save(store: PersonaStore, root: Path) -> None:
    for i in range(5):
        await store.save(make_record(f"Person {i}"))
    assert temp_files(root) == []
    assert len(list(root.iterdir())) == 5


@pytest.mark.asyncio
async def test_failed_replace_keeps_old_file_and_removes_temp(
    store: PersonaStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = make_record(created_at=T0)
    path = await store.save(record)
    old = path.read_bytes()
    changed = with_background(record, "A completely different life story.")
    seen: list[tuple[Path, bytes]] = []

    async def failing_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        # The new content is fully written to a temp file in the same folder before the move.
        seen.append((Path(src), Path(src).read_bytes()))
        assert Path(dst) == path
        raise OSError(errno.EIO, "Input/output error (injected)")

    monkeypatch.setattr(aiofiles.os, "replace", failing_replace)
    with pytest.raises(StoreError) as info:
        await store.save(changed)

    assert len(seen) == 1
    temp, data = seen[0]
    assert temp.parent == root and temp.name.startswith(TEMP_PREFIX) and temp.suffix == ".json"
    assert PersonaRecord.model_validate_json(data) == changed
    assert not temp.exists()
    assert temp_files(root) == []
    assert path.read_bytes() == old
    assert [p.name for p in root.iterdir()] == [path.name]
    assert str(root) in info.value.message
    assert "Input/output error" in info.value.message
    assert info.value.hint
    assert isinstance(info.value.__cause__, OSError)
    assert (await store.load_all()).records == [record]


@pytest.mark.asyncio
async def test_failed_write_removes_temp_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = root / "x.json"
    await atomic_write(final, b"old\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        await atomic_write(final, b"new\n")
    assert final.read_bytes() == b"old\n"
    assert temp_files(root) == []


@pytest.mark.asyncio
async def test_cancel_during_fsync_keeps_old_file_and_removes_temp(
    store: PersonaStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = make_record(created_at=T0)
    path = await store.save(record)
    old = path.read_bytes()

    started, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def blocking_fsync(fd: int) -> None:
        started.set()
        release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", blocking_fsync)
    task = asyncio.create_task(store.save(with_background(record, "Never written.")))
    try:
        assert await asyncio.to_thread(started.wait, 10), "the save never reached fsync"
        during = temp_files(root)
        assert len(during) == 1, "the new content is first written to one temp file"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not during[0].exists()
    finally:
        release.set()
    assert temp_files(root) == []
    assert path.read_bytes() == old
    assert [p.name for p in root.iterdir()] == [path.name]


@pytest.mark.asyncio
async def test_save_into_unusable_folder_is_store_error_naming_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"I am a file")
    store = PersonaStore(blocker)
    with pytest.raises(StoreError) as info:
        await store.save(make_record())
    assert str(blocker) in info.value.message
    assert "--data-dir" in info.value.hint
    assert blocker.read_bytes() == b"I am a file"


# --- file-name safety -----------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../x",
    "..\\..\\x",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "CON",
    "con.txt",
    "NUL",
    "LPT1",
    "com9 port",
    "COM¹",
    "Aux",
    "x" * 400,
    "con " + "b" * 60,
    "a-" * 200,
    "???",
    "",
    ".",
    "..",
    "   ",
    "李小龙",
    "Zoë Ångström",
    "Ørjan Ødegård",
    "a\x00b\nc\r\nd",
    "\x00",
    "name.json",
    ".hidden",
    "-leading and trailing-",
    "🙂 emoji 🙂",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[:30])
async def test_hostile_names_give_safe_file_inside_root(store: PersonaStore, root: Path, name: str) -> None:
    record = renamed(make_record(), name)
    path = await store.save(record)

    assert path.exists()
    assert path.resolve().parent == root.resolve()
    assert [p.name for p in root.iterdir()] == [path.name]
    assert FILE_NAME.match(path.name), path.name
    stem = path.name.removesuffix(f"-{record.id}.json")
    assert stem != path.name
    assert 1 <= len(stem) <= STEM_MAX, stem
    assert stem.split("-")[0] not in WINDOWS_RESERVED
    assert not stem.startswith("-") and not stem.endswith("-")
    # The file holds exactly what was saved, whatever the name.
    assert json.loads(path.read_bytes())["persona"]["name"] == name


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[:30])
def test_slugify_invariants(name: str) -> None:
    slug = slugify(name)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug
    assert len(slug) <= STEM_MAX
    assert slug.split("-")[0] not in WINDOWS_RESERVED


def test_slugify_examples() -> None:
    assert slugify("Zoë Ångström") == "zoe-angstrom"
    assert slugify("../../x") == "x"
    assert slugify("???") == "persona"
    assert slugify("李小龙") == "persona"
    assert slugify("CON") == "p-con"
    assert slugify("con.txt") == "p-con-txt"
    assert slugify("Console Cowboy") == "console-cowboy"  # only whole segments are reserved


def test_slugify_fuzz() -> None:
    rng = random.Random(20240501)
    alphabet = 'aZ0 -_./\\:*?"<>|\x00\n\té李🙂' + "".join(chr(c) for c in range(0x2460, 0x2470))
    for _ in range(3000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90)))
        if rng.random() < 0.3:
            name = rng.choice(sorted(WINDOWS_RESERVED)).upper() + rng.choice(["", ".", " ", "-", ".txt "]) + name
        slug = slugify(name)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), (name, slug)
        assert len(slug) <= STEM_MAX, (name, slug)
        assert slug.split("-")[0] not in WINDOWS_RESERVED, (name, slug)


@pytest.mark.asyncio
async def test_same_name_gives_different_files(store: PersonaStore, root: Path) -> None:
    a, b = make_record("Sam Lee", created_at=T0), make_record("Sam Lee", created_at=T0 + timedelta(seconds=1))
    pa, pb = await store.save(a), await store.save(b)
    assert pa != pb
    assert sorted(p.name for p in root.iterdir()) == sorted([pa.name, pb.name])
    result = await store.load_all()
    assert result.problems == []
    assert result.records == [b, a]


# --- corrupt, foreign and odd files ---------------------------------------------------------------


def _write_bad_files(root: Path, valid: PersonaRecord) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    good_bytes = valid.model_dump_json(indent=2).encode()
    wrong_type = json.loads(good_bytes)
    wrong_type["persona"]["age"] = "forty-seven"
    other_kind = json.loads(good_bytes)
    other_kind["kind"] = "someone-else/thing"
    bad = {
        "truncated": (root / "truncated.json", good_bytes[: len(good_bytes) // 2]),
        "empty": (root / "empty.json", b""),
        "array": (root / "array.json", b'[{"kind": "persona-tui/persona"}, 2]'),
        "foreign": (root / "other-app.json", b'{"hello": 1}\n'),
        "other_kind": (root / "other-kind.json", json.dumps(other_kind).encode()),
        "wrong_type": (root / "wrong-type.json", json.dumps(wrong_type).encode()),
        "binary": (root / "binary.json", bytes(range(256)) * 4),
    }
    paths: dict[str, Path] = {}
    for key, (path, data) in bad.items():
        path.write_bytes(data)
        paths[key] = path
    folder = root / "folder.json"
    folder.mkdir()
    (folder / "inside.json").write_bytes(good_bytes)
    paths["folder"] = folder
    return paths


EXPECTED_REASON = {
    "truncated": "not valid JSON",
    "empty": "not valid JSON",
    "array": "not a persona-tui persona",
    "foreign": "not a persona-tui persona",
    "other_kind": "not a persona-tui persona",
    "wrong_type": "persona.age",
    "binary": "not valid JSON",
    "folder": "not a regular file",
}


@pytest.mark.asyncio
async def test_bad_files_are_reported_skipped_and_untouched(store: PersonaStore, root: Path) -> None:
    good = [make_record("Ada", created_at=T0), make_record("Bea", created_at=T0 + timedelta(hours=1))]
    for r in good:
        await store.save(r)
    bad = _write_bad_files(root, good[0])
    before = snapshot(list(bad.values()))

    result = await store.load_all()

    assert result.records == [good[1], good[0]]
    by_path: dict[Path, LoadProblem] = {p.path: p for p in result.problems}
    assert len(by_path) == len(result.problems) == len(bad), result.problems
    for key, path in bad.items():
        assert path in by_path, key
        assert EXPECTED_REASON[key] in by_path[path].reason, (key, by_path[path].reason)
    assert snapshot(list(bad.values())) == before

    # A later save (new record, and a re-save of an existing one) leaves them alone too.
    await store.save(make_record("Cy"))
    await store.save(with_background(good[0], "Changed background."))
    assert snapshot(list(bad.values())) == before
    again = await store.load_all()
    assert {p.path for p in again.problems} == set(bad.values())
    assert len(again.records) == 3


@pytest.mark.asyncio
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read a chmod 000 file")
async def test_unreadable_file_is_reported_and_untouched(store: PersonaStore, root: Path) -> None:
    good = make_record()
    await store.save(good)
    locked = root / "locked.json"
    locked.write_bytes(good.model_dump_json().encode())
    locked.chmod(0)
    try:
        result = await store.load_all()
        assert result.records == [good]
        assert [(p.path, "could not be read" in p.reason) for p in result.problems] == [(locked, True)]
        assert stat.S_IMODE(locked.stat().st_mode) == 0
    finally:
        locked.chmod(0o600)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_reported_without_blocking(store: PersonaStore, root: Path) -> None:
    root.mkdir(parents=True)
    fifo = root / "pipe.json"
    os.mkfifo(fifo)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(store.load_all_sync()), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader so the test run can end
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(5)
        pytest.fail("load_all_sync blocked reading a named pipe")
    [result] = outcome
    assert [p.path for p in result.problems] == [fifo]


@pytest.mark.asyncio
async def test_duplicate_id_is_reported(store: PersonaStore, root: Path) -> None:
    record = make_record("Ada")
    path = await store.save(record)
    copy = root / "copy-of-ada.json"
    copy.write_bytes(path.read_bytes())
    result = await store.load_all()
    assert result.records == [record]
    assert len(result.problems) == 1
    # Files are read in name order: the original ("ada-...") is kept and the copy reported.
    assert result.problems[0].path == copy
    assert f"duplicates the id of {path.name}" in result.problems[0].reason
    assert result.paths == {record.id: path}


@pytest.mark.asyncio
async def test_temp_and_hidden_files_are_ignored(store: PersonaStore, root: Path) -> None:
    good = make_record()
    await store.save(good)
    (root / f"{TEMP_PREFIX}0123abcd.json").write_bytes(make_record("Leftover").model_dump_json().encode())
    (root / f"{TEMP_PREFIX}deadbeef.json").write_bytes(b'{"half": ')
    (root / "notes.txt").write_bytes(b"not json at all")
    (root / "README").write_bytes(b"hi")
    result = await store.load_all()
    assert result.records == [good]
    assert result.problems == []


@pytest.mark.asyncio
async def test_missing_folder_loads_empty_without_creating_it(tmp_path: Path) -> None:
    root = tmp_path / "nothing" / "here"
    store = PersonaStore(root)
    result = await store.load_all()
    assert (result.records, result.problems, result.paths) == ([], [], {})
    assert not root.exists()
    assert not root.parent.exists()
    with pytest.raises(StoreError, match="No persona"):
        await store.find("abcd")
    assert not root.parent.exists()


@pytest.mark.asyncio
async def test_folder_that_is_a_file_is_store_error_on_load(tmp_path: Path) -> None:
    blocker = tmp_path / "personas"
    blocker.write_bytes(b"oops")
    store = PersonaStore(blocker)
    with pytest.raises(StoreError) as info:
        await store.load_all()
    assert str(blocker) in info.value.message
    assert blocker.read_bytes() == b"oops"


# --- find and delete ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def three(store: PersonaStore) -> list[PersonaRecord]:
    records = [
        make_record("Ada", id="abcd1234" + "0" * 24, created_at=T0),
        make_record("Bea", id="abcd5678" + "1" * 24, created_at=T0 + timedelta(seconds=1)),
        make_record("Cy", id="ef012345" + "2" * 24, created_at=T0 + timedelta(seconds=2)),
    ]
    for r in records:
        await store.save(r)
    return records


@pytest.mark.asyncio
async def test_find_by_prefix(store: PersonaStore, root: Path, three: list[PersonaRecord]) -> None:
    ada, _, cy = three
    record, path = await store.find("abcd1")
    assert record == ada and path == root / file_name_for(ada)
    assert (await store.find("ef01"))[0] == cy
    assert (await store.find("  EF0123 "))[0] == cy
    assert (await store.find(cy.id))[0] == cy


@pytest.mark.asyncio
async def test_find_ambiguous_prefix(store: PersonaStore, three: list[PersonaRecord]) -> None:
    with pytest.raises(StoreError) as info:
        await store.find("abcd")
    assert "2 personas" in info.value.message and "abcd" in info.value.message
    assert "more characters" in info.value.hint
    matches = [r for r in three if r.id.startswith("abcd")]
    for record in matches:  # the matches are listed, so the user can pick one
        assert f"{record.id[:12]} ({record.persona.name})" in info.value.message


@pytest.mark.asyncio
async def test_find_unknown_prefix(store: PersonaStore, three: list[PersonaRecord]) -> None:
    with pytest.raises(StoreError) as info:
        await store.find("9999")
    assert "No persona" in info.value.message and "9999" in info.value.message
    with pytest.raises(StoreError, match="No persona"):
        await store.find(three[0].id + "0")


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", ["", "abc", "   ab  ", "zzzz", "abcd-1234", "../abcd", "abcd\n", "ａｂｃｄ", "0x1234"])
async def test_find_rejects_non_ids(store: PersonaStore, three: list[PersonaRecord], bad: str) -> None:
    with pytest.raises(StoreError) as info:
        await store.find(bad)
    if bad.strip().lower() != "abcd":
        assert "is not a persona id" in info.value.message
        assert "4" in info.value.hint


@pytest.mark.asyncio
async def test_find_ignores_bad_files(store: PersonaStore, root: Path, three: list[PersonaRecord]) -> None:
    (root / "abcd9999-junk.json").write_bytes(b"{")
    assert (await store.find("abcd5"))[0] == three[1]


@pytest.mark.asyncio
async def test_delete_removes_exactly_that_file(store: PersonaStore, root: Path, three: list[PersonaRecord]) -> None:
    (root / "junk.json").write_bytes(b"[]")
    before = snapshot(sorted(root.iterdir()))
    target = root / file_name_for(three[1])
    deleted = await store.delete("abcd5")
    assert deleted == three[1]
    after = snapshot(sorted(root.iterdir()))
    assert set(before) - set(after) == {target}
    assert after == {p: d for p, d in before.items() if p != target}
    with pytest.raises(StoreError, match="No persona"):
        await store.find("abcd5")
    assert [r.id for r in (await store.load_all()).records] == [three[2].id, three[0].id]


@pytest.mark.asyncio
async def test_delete_ambiguous_or_unknown_deletes_nothing(
    store: PersonaStore, root: Path, three: list[PersonaRecord]
) -> None:
    before = snapshot(sorted(root.iterdir()))
    for prefix in ("abcd", "0000", "nope"):
        with pytest.raises(StoreError):
            await store.delete(prefix)
    assert snapshot(sorted(root.iterdir())) == before


# --- threading and scale --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_load_all_reads_in_a_worker_thread(
    store: PersonaStore, monkeypatch: pytest.MonkeyPatch, three: list[PersonaRecord]
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = store.load_all_sync

    def spy() -> Any:
        seen.append(threading.get_ident())
        return real()

    monkeypatch.setattr(store, "load_all_sync", spy)
    result = await store.load_all()
    assert len(seen) == 1
    assert seen[0] != loop_thread
    assert len(result.records) == 3


@pytest.mark.asyncio
async def test_thousand_files_load(store: PersonaStore, root: Path) -> None:
    root.mkdir(parents=True)
    records = [make_record(f"Person {i}", created_at=T0 + timedelta(seconds=i)) for i in range(1000)]
    for r in records:
        (root / file_name_for(r)).write_bytes(r.model_dump_json(indent=2).encode())
    result = await store.load_all()
    assert result.problems == []
    assert len(result.records) == 1000
    assert result.records == list(reversed(records))
    assert len(result.paths) == 1000
    assert all(result.paths[r.id].name == file_name_for(r) for r in records)


def test_no_event_loop_needed_for_sync_load(store: PersonaStore) -> None:
    assert store.load_all_sync().records == []
