"""PersonaStore: one JSON file per persona, written so that no reader ever sees half a file.

A save writes a temporary file in the same folder (so the final move never
crosses a file system), flushes and fsyncs it, then moves it into place with
``os.replace``, which is atomic. A failure at any point removes the temporary
file and leaves whatever was there before untouched.

File names are derived from the persona's name only after it is reduced to a
short, safe slug, and always end with the record's id: a model-supplied name
can never leave the folder, hit a reserved device name or clash with another.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
from pydantic import ValidationError

from persona_tui.models import ORG_KIND, RECORD_KIND, Organization, PersonaRecord, RunRecord

log = logging.getLogger(__name__)

SLUG_MAX = 40
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 600
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class StoreError(Exception):
    """A store operation that failed, explained for the user."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class LoadProblem:
    """A file in the folder that is not a readable persona; reported, never touched."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class LoadResult:
    records: list[PersonaRecord]
    """Newest first."""
    problems: list[LoadProblem]
    paths: dict[str, Path]


def slugify(name: str) -> str:
    """A short ASCII slug that is safe as part of a file name on every platform."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if text.split("-")[0] in _WINDOWS_RESERVED:
        text = f"p-{text}"
    return text[:SLUG_MAX].strip("-") or "persona"


def file_name_for(record: PersonaRecord) -> str:
    return f"{slugify(record.persona.name)}-{record.id}.json"


class PersonaStore:
    """The folder of saved personas. Its async methods never block the event loop."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.index = NamesIndex(self.root)

    async def save(self, record: PersonaRecord) -> Path:
        """Write ``record`` atomically and return its path (the names index is told)."""
        final = self.root / file_name_for(record)
        data = record.model_dump_json(indent=2).encode("utf-8") + b"\n"
        self.index.begin()  # a stat, before the try: a cancel can then not leave it begun and never ended
        try:
            await atomic_write(final, data)
        except BaseException as exc:
            self.index.end()  # the folder may have changed (a temporary file came and went), nothing else did
            if isinstance(exc, OSError):
                raise StoreError(
                    f"The persona could not be saved to {self.root}: {exc.strerror or exc}.",
                    "Check that the data folder is writable and the disk has space, or choose another with --data-dir.",
                ) from exc
            raise
        await asyncio.to_thread(self.index.end, record, "+")
        return final

    async def replace(self, record: PersonaRecord) -> Path:
        """Save ``record`` in place of the persona with its id: the new file is written atomically first;
        only then is the old one removed, when it has another name (a persona renamed, or an older file name)."""
        try:
            _, before = await self.find(record.id)
        except StoreError:
            before = None  # gone meanwhile: the new version is simply saved
        final = await self.save(record)
        if before is not None and before != final:
            self.index.begin()
            try:
                await aiofiles.os.remove(before)
            except FileNotFoundError:
                pass
            except OSError as exc:  # two files now hold the id: say which one to remove
                raise StoreError(
                    f"The new version was saved as {final.name}, but the old file {before.name} could not be "
                    f"removed: {exc.strerror or exc}.",
                    f"Remove {before} by hand; until then the store lists one of the two.",
                ) from exc
            finally:
                self.index.end()
        return final

    async def names(self, description: str) -> list[IndexEntry]:
        """The personas made for ``description`` (any case), from the names index; rebuilt first when stale."""
        return await asyncio.to_thread(self.names_sync, description)

    def names_sync(self, description: str) -> list[IndexEntry]:
        entries = self.index.entries(description)
        if entries is None:
            # The folder's time is read before its files are listed: a file another program adds while
            # they are read leaves the index stamped older than the folder, so it is rebuilt again next time
            # rather than trusted without that file.
            seen = self.index.folder_mtime()
            records = list(reversed(self.load_all_sync().records))  # oldest first, as saves append
            self.index.rebuild(records, seen)
            entries = self.index.entries(description)
            if entries is None:  # the index could not be written: the files still say who exists
                wanted = description.casefold()
                entries = [index_entry(r) for r in records if r.request.description.casefold() == wanted]
        return entries

    async def problem(self) -> StoreError | None:
        """Why personas could not be saved here, found before anything is paid for; None when the folder is usable."""
        return await asyncio.to_thread(self._problem_sync)

    def _problem_sync(self) -> StoreError | None:
        self.index.begin()  # the probe file comes and goes: the folder's time moves, its personas do not
        try:
            return folder_problem(self.root)
        finally:
            self.index.end()

    async def load_all(self) -> LoadResult:
        """Read every persona in one worker thread (thousands of small files)."""
        return await asyncio.to_thread(self.load_all_sync)

    def load_all_sync(self, wanted: Callable[[str], bool] | None = None) -> LoadResult:
        """Every persona file (or those whose name ``wanted`` accepts), newest first."""
        records: list[PersonaRecord] = []
        problems: list[LoadProblem] = []
        paths: dict[str, Path] = {}
        for entry in self._persona_files():
            if wanted is not None and not wanted(entry.name):
                continue
            path = Path(entry.path)
            if not _is_regular_file(entry):  # a folder or a named pipe: reading it would fail or block
                problems.append(LoadProblem(path, "is not a regular file"))
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(LoadProblem(path, f"could not be read: {exc.strerror or exc}"))
                continue
            try:
                record = PersonaRecord.model_validate_json(data)
            except ValidationError as exc:
                problems.append(LoadProblem(path, _why_invalid(exc, data)))
                continue
            if record.id in paths:
                problems.append(LoadProblem(path, f"duplicates the id of {paths[record.id].name}"))
                continue
            records.append(record)
            paths[record.id] = path
        records.sort(key=lambda r: r.created_at, reverse=True)
        return LoadResult(records, problems, paths)

    async def find(self, id_or_prefix: str) -> tuple[PersonaRecord, Path]:
        """The persona whose id starts with ``id_or_prefix`` (at least 4 characters)."""
        prefix = id_or_prefix.strip().lower()
        if len(prefix) < 4 or not re.fullmatch(r"[0-9a-f]+", prefix):
            raise StoreError(
                f"{id_or_prefix!r} is not a persona id.",
                "Give at least the first 4 characters of an id from `persona-tui list`.",
            )
        result = await asyncio.to_thread(self._load_matching, prefix)
        matches = [r for r in result.records if r.id.startswith(prefix)]
        if not matches:
            raise StoreError(f"No persona has an id starting with {prefix}.", "See `persona-tui list` for the ids.")
        if len(matches) > 1:
            shown = ", ".join(f"{r.id[:12]} ({r.persona.name})" for r in matches[:5])
            more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
            raise StoreError(
                f"{len(matches)} personas have ids starting with {prefix}: {shown}{more}.",
                "Give more characters of the id.",
            )
        return matches[0], result.paths[matches[0].id]

    async def load_ids(self, ids: Iterable[str]) -> list[PersonaRecord]:
        """The personas with these ids that are still in the store, newest first: one listing of the
        folder and only the files named for them (``slug-ID.json``) read."""
        wanted = set(ids)
        tail = re.compile(r"-([0-9a-f]{32})\.json$")

        def named(name: str) -> bool:
            found = tail.search(name)
            return found is not None and found.group(1) in wanted

        if not wanted:
            return []
        result = await asyncio.to_thread(self.load_all_sync, named)
        return [r for r in result.records if r.id in wanted]

    def _load_matching(self, prefix: str) -> LoadResult:
        """Only the files whose names can hold an id starting with ``prefix`` (``slug-ID.json``), so
        finding one persona reads one file, not the store; files named otherwise are read to be sure."""
        tail = re.compile(r"-([0-9a-f]{32})\.json$")

        def candidate(name: str) -> bool:
            named = tail.search(name)
            return named is None or named.group(1).startswith(prefix)

        return self.load_all_sync(candidate)

    async def delete(self, id_or_prefix: str) -> PersonaRecord:
        record, path = await self.find(id_or_prefix)
        self.index.begin()
        try:
            await aiofiles.os.remove(path)
        except BaseException as exc:
            self.index.end()
            if isinstance(exc, OSError):
                raise StoreError(f"{path.name} could not be deleted: {exc.strerror or exc}.") from exc
            raise
        await asyncio.to_thread(self.index.end, record, "-")
        return record

    def _persona_files(self) -> list[os.DirEntry[str]]:
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(
                f"The personas in {self.root} could not be read: {exc.strerror or exc}.",
                "Check that the data folder is a folder you can read, or choose another with --data-dir.",
            ) from exc
        _sweep_stale_temps(e for e in entries if e.name.startswith(TEMP_PREFIX))
        return [e for e in entries if e.name.endswith(".json") and not e.name.startswith(".")]


INDEX_FOLDER = ".index"
INDEX_VERSION = 1


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One persona as the names index knows it: enough to start a run without reading its file."""

    id: str
    name: str
    people: str
    """The short line the model is told: "Name (age, occupation, location)"."""
    run_id: str = ""
    slot: int = -1
    """Its slot's index in its run's plan; -1 without a plan."""


def index_entry(record: PersonaRecord) -> IndexEntry:
    p = record.persona
    return IndexEntry(
        record.id,
        p.name,
        f"{p.name} ({p.age}, {p.occupation}, {p.location})",
        record.run_id or "",
        record.slot.index if record.slot is not None else -1,
    )


class NamesIndex:
    """Per description, the personas made for it, kept beside the store so a run's start reads no persona file.

    One append-only JSON-lines file per description (``<data>/.index/personas/names-HASH.jsonl``:
    ``["+", entry]`` on a save, ``["-", id]`` on a delete), and ``state.json`` there holding the persona
    folder's modification time (in ns) as of the last change the index saw. Any other change of the
    folder (another program adding or removing a file, a crash between a save and its index line) leaves
    that time behind: the index is then stale and rebuilt from the files, once, in a worker thread. A file
    edited in place (not moved into place as this program writes) is not noticed. The index is only a
    shortcut: its files are written without fsync, and an unreadable one means a rebuild.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root.parent / INDEX_FOLDER / (root.name or "personas")
        """Beside the persona folder, not in it (``<data>/.index/personas/``): writing it leaves that folder's time."""
        self._lock = threading.Lock()
        self._pending = 0
        self._ok = False

    def _shard(self, description: str) -> Path:
        digest = hashlib.sha1(description.casefold().encode("utf-8")).hexdigest()[:16]
        return self.folder / f"names-{digest}.jsonl"

    def folder_mtime(self) -> int:
        try:
            return os.stat(self.root).st_mtime_ns
        except OSError:
            return -1

    def fresh(self) -> bool:
        try:
            state = json.loads((self.folder / "state.json").read_bytes())
        except (OSError, ValueError):
            return False
        return (
            isinstance(state, dict)
            and state.get("version") == INDEX_VERSION
            and state.get("mtime_ns") == (self.folder_mtime())
        )

    def _mark(self) -> None:
        state = {"version": INDEX_VERSION, "mtime_ns": self.folder_mtime()}
        _write_quick(self.folder / "state.json", json.dumps(state).encode("utf-8"))

    def entries(self, description: str) -> list[IndexEntry] | None:
        """The personas made for ``description``; None when the index is missing or stale."""
        with self._lock:
            if not self.fresh():
                return None
            try:
                lines = self._shard(description).read_bytes().splitlines()
            except FileNotFoundError:
                return []
            except OSError:
                return None
        try:  # one parse for the whole file: 50,000 lines in one call, not 50,000 calls
            ops = json.loads(b"[" + b",".join(line for line in lines if line.strip()) + b"]")
            found: dict[str, list[Any]] = {}
            for op, value in ops:
                if op == "+":
                    found[value[0]] = value
                else:
                    found.pop(value, None)
            return [IndexEntry(*value) for value in found.values()]
        except (ValueError, TypeError):
            return None

    def begin(self) -> None:
        """A save or delete of this process is about to change the folder: is the index up to date before it?"""
        with self._lock:
            if self._pending == 0:
                self._ok = self.fresh()
            self._pending += 1

    def end(self, record: PersonaRecord | None = None, op: str = "+") -> None:
        """The change is done (``record`` saved with "+", deleted with "-", or nothing when it failed).

        The last change of this process in flight marks the index up to date again, if it was before they
        began: the folder's new time is then this process's doing only.
        """
        with self._lock:
            self._pending = max(self._pending - 1, 0)
            try:
                if record is not None and self.folder.is_dir():
                    e = index_entry(record)
                    line = ["+", [e.id, e.name, e.people, e.run_id, e.slot]] if op == "+" else ["-", record.id]
                    with self._shard(record.request.description).open("ab") as fh:
                        fh.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
                if self._pending == 0 and self._ok:
                    self._mark()
            except OSError as exc:
                log.warning("could not update the names index: %s", exc)

    def rebuild(self, records: Iterable[PersonaRecord], seen: int | None = None) -> None:
        """Write the index again from ``records`` (all of the store, read just now), stamped with the
        folder's time ``seen`` before they were listed (now, if not given)."""
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("could not write the names index: %s", exc)
                return
            mtime = self.folder_mtime() if seen is None else seen
            shards: dict[Path, list[bytes]] = {}
            for record in records:
                e = index_entry(record)
                line = json.dumps(["+", [e.id, e.name, e.people, e.run_id, e.slot]], ensure_ascii=False)
                shards.setdefault(self._shard(record.request.description), []).append(line.encode("utf-8"))
            try:
                for old in self.folder.glob("names-*.jsonl"):
                    if old not in shards:
                        old.unlink()
                for path, lines in shards.items():
                    _write_quick(path, b"\n".join(lines) + b"\n")
                state = {"version": INDEX_VERSION, "mtime_ns": mtime}
                _write_quick(self.folder / "state.json", json.dumps(state).encode("utf-8"))
            except OSError as exc:
                log.warning("could not write the names index: %s", exc)


def _write_quick(final: Path, data: bytes) -> None:
    """Replace ``final`` with ``data`` through a temporary file, without fsync (for caches that can be rebuilt)."""
    temp = final.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        temp.write_bytes(data)
        os.replace(temp, final)
    except BaseException:
        _remove_quietly(temp)
        raise


def _is_regular_file(entry: os.DirEntry[str]) -> bool:
    """Whether the entry is (or links to) a regular file; the directory listing usually knows, with no stat."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _sweep_stale_temps(entries: Iterable[os.DirEntry[str]]) -> None:
    """Remove temporary files a killed writer left behind (never a fresh one: another writer may own it)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)


def _why_invalid(exc: ValidationError, data: bytes, kind: str = RECORD_KIND) -> str:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return "is not valid JSON"
    try:
        document = json.loads(data)
    except ValueError:
        return "is not valid JSON"
    if not isinstance(document, dict) or document.get("kind") != kind:
        return f"is not a {kind.replace('/', ' ')}"
    where = ".".join(str(p) for p in first["loc"]) or "file"
    return f"has an invalid {where}: {first['msg']}"


async def atomic_write(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` so that readers see the old file or the new one, never a mix.

    The temporary file lives in the same folder (the move never crosses file
    systems) under a dot-name that loaders skip; any failure, cancellation
    included, removes it.
    """
    folder = final.parent
    temp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}{final.suffix}"
    try:
        await aiofiles.os.makedirs(folder, exist_ok=True)
        async with aiofiles.open(temp, "xb") as fh:
            await fh.write(data)
            await fh.flush()
            await asyncio.to_thread(os.fsync, fh.fileno())
        await aiofiles.os.replace(temp, final)
    except BaseException:
        _remove_quietly(temp)
        raise


def folder_problem(folder: Path) -> StoreError | None:
    """Try the folder the way a save will use it (create it, write a file in it, remove it); say why it fails."""
    hint = "Choose a folder you can write to with --data-dir (or PERSONA_TUI_DATA_DIR)."
    probe = folder / f"{TEMP_PREFIX}probe-{uuid.uuid4().hex}"
    try:
        for part in (folder, *folder.parents):
            if part.exists() and not part.is_dir():
                return StoreError(f"The data folder {folder} cannot be used: {part} is a file, not a folder.", hint)
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("xb") as fh:
            fh.write(b"ok")
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        return StoreError(f"The data folder {folder} cannot be used: {why}.", hint)
    finally:
        _remove_quietly(probe)
    return None


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class OrganizationStore:
    """Organizations, one JSON file each, written like personas. Names are unique, ignoring case."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, org: Organization) -> Path:
        return self.root / f"{slugify(org.name)}-{org.id}.json"

    def load_all_sync(self) -> tuple[list[Organization], list[LoadProblem]]:
        orgs: list[Organization] = []
        problems: list[LoadProblem] = []
        try:
            entries = sorted(p for p in self.root.glob("*.json") if not p.name.startswith("."))
        except OSError as exc:
            raise StoreError(f"The organizations in {self.root} could not be read: {exc.strerror or exc}.") from exc
        for path in entries:
            try:
                data = path.read_bytes()
                orgs.append(Organization.model_validate_json(data))
            except OSError as exc:
                problems.append(LoadProblem(path, f"could not be read: {exc.strerror or exc}"))
            except ValidationError as exc:
                problems.append(LoadProblem(path, _why_invalid(exc, data, ORG_KIND)))
        orgs.sort(key=lambda o: o.name.casefold())
        return orgs, problems

    async def load_all(self) -> tuple[list[Organization], list[LoadProblem]]:
        return await asyncio.to_thread(self.load_all_sync)

    async def get(self, name: str) -> Organization:
        wanted = name.strip().casefold()
        orgs, _ = await self.load_all()
        for org in orgs:
            if org.name.casefold() == wanted:
                return org
        known = ", ".join(o.name for o in orgs[:10]) or "none yet"
        raise StoreError(
            f"No organization is named {name.strip()!r} (known: {known}).", "Add it with `persona-tui org add NAME`."
        )

    async def save(self, org: Organization, *, replacing: Organization | None = None) -> Path:
        """Save a new organization, or ``replacing`` an existing one (its file is renamed if the name changed)."""
        orgs, _ = await self.load_all()
        for other in orgs:
            if other.name.casefold() == org.name.casefold() and other.id != org.id:
                raise StoreError(f"An organization named {other.name!r} already exists.", "Choose another name.")
        path = self._path(org)
        try:
            await atomic_write(path, org.model_dump_json(indent=2).encode("utf-8") + b"\n")
            if replacing is not None and self._path(replacing) != path:
                await aiofiles.os.remove(self._path(replacing))
        except OSError as exc:
            raise StoreError(
                f"The organization could not be saved to {self.root}: {exc.strerror or exc}.",
                "Check that the data folder is writable, or choose another with --data-dir.",
            ) from exc
        return path

    async def delete(self, name: str) -> Organization:
        org = await self.get(name)
        try:
            await aiofiles.os.remove(self._path(org))
        except OSError as exc:
            raise StoreError(f"{org.name} could not be deleted: {exc.strerror or exc}.") from exc
        return org


RUN_LIST_HINT = "Give more of the id; the runs are files named run-DATE-TIME-ID.json in the data folder's runs/."


class RunStore:
    """Runs (one per generation), one JSON file each, named so that the newest sorts last."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, run: RunRecord) -> Path:
        return self.root / f"run-{run.created_at:%Y%m%d-%H%M%S-%f}-{run.id}.json"

    async def save(self, run: RunRecord) -> Path:
        """Write the run atomically (again as it goes: the same file each time)."""
        final = self.path_for(run)
        data = await asyncio.to_thread(run.model_dump_json, indent=2)  # a 10,000-slot plan takes a while
        try:
            await atomic_write(final, data.encode("utf-8") + b"\n")
        except OSError as exc:
            raise StoreError(f"The run could not be recorded in {self.root}: {exc.strerror or exc}.") from exc
        return final

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.root.glob("run-*.json") if p.is_file())
        except OSError as exc:
            raise StoreError(f"The runs in {self.root} could not be read: {exc.strerror or exc}.") from exc

    def latest_sync(self, id_prefix: str = "") -> RunRecord | None:
        """The newest run (or the one whose id starts with ``id_prefix``) that can be read; None when none.

        A prefix must have at least 4 characters and fit one run only (:class:`StoreError` says which fit).
        """
        wanted = id_prefix.strip().lower()
        paths = list(reversed(self._files()))
        if wanted:
            if len(wanted) < 4:
                raise StoreError(f"A run id needs at least 4 characters (got {id_prefix!r}).", RUN_LIST_HINT)
            paths = [path for path in paths if path.stem.rsplit("-", 1)[-1].startswith(wanted)]
            if len(paths) > 1:
                ids = ", ".join(path.stem.rsplit("-", 1)[-1][:8] for path in paths[:5])
                raise StoreError(f"{len(paths)} runs have ids starting with {id_prefix!r} ({ids}).", RUN_LIST_HINT)
        for path in paths:
            try:
                return RunRecord.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                log.warning("skipping unreadable run %s: %s", path.name, exc)
        return None

    async def latest(self, id_prefix: str = "") -> RunRecord | None:
        return await asyncio.to_thread(self.latest_sync, id_prefix)

    def all_sync(self) -> list[RunRecord]:
        """Every run that can be read, newest first."""
        runs: list[RunRecord] = []
        for path in reversed(self._files()):
            try:
                runs.append(RunRecord.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError) as exc:
                log.warning("skipping unreadable run %s: %s", path.name, exc)
        return runs

    def unfinished_sync(self) -> RunRecord | None:
        """The newest run that stopped (or was stopped) before all its personas were saved, and is not running."""
        return next((run for run in self.all_sync() if run_state(run) == "unfinished"), None)

    async def unfinished(self) -> RunRecord | None:
        return await asyncio.to_thread(self.unfinished_sync)


def run_state(run: RunRecord) -> str:
    """``finished`` (every persona saved), ``running`` (its process is alive) or ``unfinished`` (resume it)."""
    if run.complete:
        return "finished"
    if run.finished_at is None and run.pid is not None and run.pid != os.getpid() and _alive(run.pid, run.pid_start):
        return "running"
    return "unfinished"


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell it from a later one with its pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` still runs: not a killed one nobody reaped (a zombie), nor another process that
    was given its pid since (its start differs from ``started``, when that was recorded)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    try:  # Linux: "PID (name) STATE ..."; elsewhere the signal's answer is all there is
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    if state in ("Z", "X"):
        return False
    return started is None or process_start(pid) in (None, started)


ESTIMATES_FILE = "estimates.json"
SERVERS_FILE = "servers.json"


class NotesFile:
    """A small JSON object kept beside the personas: what earlier runs learned (estimates, server quirks).

    Only a shortcut, so a missing or unreadable file reads as empty (and is
    replaced on the next save) rather than stopping anything.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def in_folder(cls, data_dir: Path, name: str = ESTIMATES_FILE) -> NotesFile:
        return cls(Path(data_dir) / name)

    def read(self) -> dict[str, dict[str, Any]]:
        """The entries as saved, each a JSON object; {} when there is no usable file."""
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return {}
        if not isinstance(raw, dict):
            log.warning("ignoring %s: not a JSON object", self.path)
            return {}
        return {str(key): value for key, value in raw.items() if isinstance(value, dict)}

    async def write(self, entries: dict[str, dict[str, Any]]) -> None:
        await atomic_write(self.path, json.dumps(entries, indent=2, sort_keys=True).encode("utf-8"))
