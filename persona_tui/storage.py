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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
from pydantic import ValidationError

from persona_tui.models import ORG_KIND, RECORD_KIND, FocusGroup, Organization, PersonaRecord, RunRecord, Turn

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


_ID_IN_NAME = re.compile(r"-([0-9a-f]{32})\.json$")


def _id_in_name(name: str) -> str | None:
    """The persona id in a file name as :func:`file_name_for` makes it (``slug-ID.json``); None in another name."""
    found = _ID_IN_NAME.search(name)
    return found.group(1) if found is not None else None


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
        if entries is None and self.refresh_index():
            entries = self.index.entries(description, fresh=False)
        if entries is None:
            self.rebuild_index()
            # As built just now (stale again if a file came meanwhile); None if it could not be written.
            entries = self.index.entries(description, fresh=False) if self.index.built else None
            if entries is None:  # the index could not be written: the files still say who exists
                wanted = description.casefold()
                records = reversed(self.load_all_sync().records)  # oldest first, as saves append
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

    async def table_rows(self) -> RowsResult:
        """Every persona's table row, newest first, from the rows index (rebuilt first when stale), in a thread."""
        return await asyncio.to_thread(self.table_rows_sync)

    def table_rows_sync(self) -> RowsResult:
        found = self.index.rows()
        if found is None and self.refresh_index():
            found = self.index.rows(fresh=False)
        if found is None:
            problems = self.rebuild_index()
            # As built just now (stale again if a file came meanwhile); None if it could not be written.
            found = self.index.rows(fresh=False) if self.index.built else None
            if found is None:  # the index could not be written: rows straight from the files
                result = self.load_all_sync()
                return RowsResult([table_row(r, result.paths[r.id].name) for r in result.records], result.problems)
            return RowsResult(found, problems)
        return RowsResult(found, self.index.problems(self.root))

    def search_texts_sync(self) -> dict[str, str]:
        """Each persona's search text (every field, case folded), by id; {} when the index cannot say."""
        return self.index.texts() or {}

    def refresh_index(self) -> bool:
        """Bring a stale index up to date reading only the files that came or changed since (by name and
        modification time), not the whole folder; False when it has to be rebuilt (missing, unreadable, or
        written by another version).

        The folder's time is read before it is listed, as for a rebuild.
        """
        known = self.index.rows(fresh=False) if self.index.same_version() else None
        if known is None:
            return False
        stamp = self.index.stamp()
        by_file = {row.file: row for row in known}
        problems: list[LoadProblem] = []
        came: list[tuple[PersonaRecord, str, int]] = []
        kept: set[str] = set()
        for entry in self._persona_files():
            row = by_file.get(entry.name)
            try:
                when = entry.stat().st_mtime_ns
            except OSError:
                when = -1
            if row is not None and row.stamp == when:
                kept.add(entry.name)
                continue
            record = _read_record(entry, Path(entry.path), problems)
            if record is not None:
                came.append((record, entry.name, when))
                kept.add(entry.name)
        changed = {name for _, name, _ in came}
        gone = [row for row in known if row.file not in kept or row.file in changed]
        return self.index.apply(gone, came, stamp, problems)

    def rebuild_index(self) -> list[LoadProblem]:
        """Write the indexes again from the files, read one at a time (never all records at once).

        The folder's time is read before it is listed: a file saved between the two leaves the index
        stale (rebuilt again next time), never fresh without that file.
        """
        stamp = self.index.stamp()
        problems: list[LoadProblem] = []
        self.index.rebuild(self.iter_records(problems), stamp, problems)
        return problems

    def iter_records(
        self, problems: list[LoadProblem], wanted: Callable[[str], bool] | None = None
    ) -> Iterator[tuple[PersonaRecord, Path]]:
        """Each readable persona with its path, in file-name order; unreadable files go to ``problems``."""
        seen: dict[str, Path] = {}
        for entry in self._persona_files():
            if wanted is not None and not wanted(entry.name):
                continue
            path = Path(entry.path)
            record = _read_record(entry, path, problems)
            if record is None:
                continue
            if record.id in seen:
                problems.append(LoadProblem(path, f"duplicates the id of {seen[record.id].name}"))
                continue
            seen[record.id] = path
            yield record, path

    async def read(self, persona_id: str, file: str = "") -> tuple[PersonaRecord, Path]:
        """One persona by its full id, from ``file`` (its name in the folder, as the rows index has it) when
        that still holds it, else found like :meth:`find`."""
        if file and Path(file).name == file and file.endswith(".json") and not file.startswith("."):
            path = self.root / file
            record = await asyncio.to_thread(_read_quietly, path)
            if record is not None and record.id == persona_id:
                return record, path
        return await self.find(persona_id)

    async def read_many(self, rows: Iterable[TableRow]) -> list[PersonaRecord]:
        """The records of ``rows`` in their order, read in a worker thread; those gone since are left out."""
        wanted = list(rows)
        return await asyncio.to_thread(self.read_many_sync, wanted)

    def read_many_sync(self, rows: list[TableRow]) -> list[PersonaRecord]:
        records: list[PersonaRecord] = []
        missing: set[str] = set()
        for row in rows:
            record = _read_quietly(self.root / row.file)
            if record is None or record.id != row.id:
                missing.add(row.id)
                continue
            records.append(record)
        if missing:  # renamed by hand, perhaps: look once through the folder for them
            problems: list[LoadProblem] = []
            found = {record.id: record for record, _ in self.iter_records(problems) if record.id in missing}
            order = {row.id: i for i, row in enumerate(rows)}
            records = sorted([*records, *found.values()], key=lambda r: order[r.id])
        return records

    async def trash(self, rows: Iterable[TableRow]) -> TrashBatch:
        """Move these personas' files aside (``<data>/.trash/personas/BATCH/``), to be restored or emptied."""
        return await asyncio.to_thread(self._trash_sync, list(rows))

    def _trash_sync(self, rows: list[TableRow]) -> TrashBatch:
        folder = self.trash_folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        moved: list[tuple[str, str]] = []
        gone: list[PersonaRecord] = []
        self.index.begin()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for row in rows:
                source = self.root / row.file
                try:
                    record = PersonaRecord.model_validate_json(source.read_bytes())
                    if record.id != row.id:
                        continue
                    os.replace(source, folder / row.file)
                except (OSError, ValidationError) as exc:
                    log.warning("could not move %s aside: %s", row.file, exc)
                    continue
                moved.append((row.id, row.file))
                gone.append(record)
        except OSError as exc:
            raise StoreError(
                f"The personas could not be moved aside to {folder}: {exc.strerror or exc}.",
                "Check that the data folder is writable.",
            ) from exc
        finally:
            self.index.end_many(gone, "-")
        return TrashBatch(folder, moved)

    async def restore(self, batch: TrashBatch) -> list[TableRow]:
        """Put a trashed batch's files back (the index told); their rows, newest first."""
        return await asyncio.to_thread(self._restore_sync, batch)

    def _restore_sync(self, batch: TrashBatch) -> list[TableRow]:
        back: list[PersonaRecord] = []
        rows: list[TableRow] = []
        files: dict[str, tuple[str, int]] = {}
        self.index.begin()
        try:
            for _, file in batch.moved:
                source = batch.folder / file
                try:
                    record = PersonaRecord.model_validate_json(source.read_bytes())
                    os.replace(source, self.root / file)
                except (OSError, ValidationError) as exc:
                    log.warning("could not restore %s: %s", file, exc)
                    continue
                back.append(record)
                files[record.id] = (file, _mtime(self.root / file))
                rows.append(table_row(record, file, files[record.id][1]))
        finally:
            self.index.end_many(back, "+", files)
        with contextlib.suppress(OSError):
            batch.folder.rmdir()
        rows.sort(key=lambda r: r.created, reverse=True)
        return rows

    @property
    def trash_folder(self) -> Path:
        return self.root.parent / TRASH_FOLDER / (self.root.name or "personas")

    def empty_trash(self, batches: Iterable[TrashBatch]) -> None:
        """Remove the files of these trashed batches for good (a clean close of the app)."""
        for batch in batches:
            for _, file in batch.moved:
                _remove_quietly(batch.folder / file)
            with contextlib.suppress(OSError):
                batch.folder.rmdir()
        with contextlib.suppress(OSError):
            self.trash_folder.rmdir()
            self.trash_folder.parent.rmdir()

    async def load_all(self) -> LoadResult:
        """Read every persona in one worker thread (thousands of small files)."""
        return await asyncio.to_thread(self.load_all_sync)

    def load_all_sync(self, wanted: Callable[[str], bool] | None = None) -> LoadResult:
        """Every persona file (or those whose name ``wanted`` accepts), newest first."""
        records: list[PersonaRecord] = []
        problems: list[LoadProblem] = []
        paths: dict[str, Path] = {}
        for record, path in self.iter_records(problems, wanted):
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

        def named(name: str) -> bool:
            return _id_in_name(name) in wanted

        if not wanted:
            return []
        result = await asyncio.to_thread(self.load_all_sync, named)
        return [r for r in result.records if r.id in wanted]

    def _load_matching(self, prefix: str) -> LoadResult:
        """Only the files whose names can hold an id starting with ``prefix`` (``slug-ID.json``), so
        finding one persona reads one file, not the store; files named otherwise are read to be sure."""

        def candidate(name: str) -> bool:
            named = _id_in_name(name)
            return named is None or named.startswith(prefix)

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
INDEX_VERSION = 2
"""2: the rows and search-text files joined the names (a version-1 index is rebuilt once)."""
TRASH_FOLDER = ".trash"
ROWS_FILE = "rows.jsonl"
TEXTS_FILE = "texts.jsonl"
PROBLEMS_FILE = "problems.json"


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


def people_line(name: str, age: int, occupation: str, location: str) -> str:
    """The short line a model is told of a persona already made: "Name (age, occupation, location)"."""
    return f"{name} ({age}, {occupation}, {location})"


def index_entry(record: PersonaRecord) -> IndexEntry:
    p = record.persona
    return IndexEntry(
        record.id,
        p.name,
        people_line(p.name, p.age, p.occupation, p.location),
        record.run_id or "",
        record.slot.index if record.slot is not None else -1,
    )


@dataclass(slots=True)
class TableRow:
    """One persona as the table shows it, kept in the rows index: no file is read to list the store."""

    id: str
    name: str
    age: int
    occupation: str
    location: str
    created: float
    """``created_at`` as a POSIX timestamp (sorts as the moment, shown in local time)."""
    provider: str
    model: str
    org_id: str
    org: str
    run_id: str
    slot: int
    file: str
    """The file's name in the persona folder (``slug-ID.json``)."""
    description: str = ""
    stamp: int = 0
    """The file's modification time (ns) when the index read it: a file changed since is read again."""
    search: str = ""
    """Every field's text, case folded; from the rows index, only the columns' text until the search-text
    file is read (after the rows are shown)."""

    def entry(self) -> IndexEntry:
        """As the names index has it (for a resumed run)."""
        people = people_line(self.name, self.age, self.occupation, self.location)
        return IndexEntry(self.id, self.name, people, self.run_id, self.slot)


def search_text(record: PersonaRecord) -> str:
    """Every field a user may look for, on one case-folded line: the persona's words, its model, request and id."""
    parts: list[str] = [record.id, record.provider, record.model, record.request.description]
    parts.append(record.request.organization or "")
    for value in record.persona.model_dump(mode="json").values():
        if isinstance(value, list):
            parts.extend(str(item) for item in value)
        else:
            parts.append(str(value))
    return " ".join(" ".join(parts).split()).casefold()


def columns_text(row: TableRow) -> str:
    """What a find can match before the search text is read: the table's columns, the organization, the request."""
    return " ".join((row.name, row.occupation, row.location, row.model, row.org, row.description)).casefold()


def find_words(query: str) -> list[str]:
    """The words of a find: every one must be in a persona's text (any case)."""
    return query.casefold().split()


def has_words(text: str, words: list[str]) -> bool:
    return all(word in text for word in words)


def table_row(record: PersonaRecord, file: str | None = None, stamp: int = 0) -> TableRow:
    p = record.persona
    return TableRow(
        record.id,
        p.name,
        p.age,
        p.occupation,
        p.location,
        record.created_at.timestamp(),
        record.provider,
        record.model,
        record.request.organization_id or "",
        record.request.organization or "",
        record.run_id or "",
        record.slot.index if record.slot is not None else -1,
        file or file_name_for(record),
        record.request.description,
        stamp,
        search_text(record),
    )


def _row_line(row: TableRow) -> list[Any]:
    return [
        row.id,
        row.name,
        row.age,
        row.occupation,
        row.location,
        row.created,
        row.provider,
        row.model,
        row.org_id,
        row.org,
        row.run_id,
        row.slot,
        row.file,
        row.description,
        row.stamp,
    ]


@dataclass(frozen=True, slots=True)
class RowsResult:
    rows: list[TableRow]
    """Newest first."""
    problems: list[LoadProblem]


@dataclass(frozen=True, slots=True)
class TrashBatch:
    """Personas moved aside by one delete: ``(id, file name)`` each, in ``folder``."""

    folder: Path
    moved: list[tuple[str, str]]


def _folded(lines: list[bytes]) -> dict[str, list[Any]]:
    """An index file's operations, in one parse (50,000 lines in one call, not 50,000 calls), folded: each
    id's value as its last ``["+", [id, ...]]`` left it, ids removed by a later ``["-", id]`` gone."""
    found: dict[str, list[Any]] = {}
    for op, value in json.loads(b"[" + b",".join(line for line in lines if line.strip()) + b"]"):
        if op == "+":
            found[value[0]] = value
        else:
            found.pop(value, None)
    return found


class NamesIndex:
    """The indexes kept beside the store, so neither a run's start nor the table reads every persona file.

    Per description, the personas made for it: one append-only JSON-lines file each
    (``<data>/.index/personas/names-HASH.jsonl``: ``["+", entry]`` on a save, ``["-", id]`` on a delete).
    The table's rows (``rows.jsonl``) and each persona's search text (``texts.jsonl``), appended the same way.
    ``state.json`` there holds the persona folder's modification time (in ns) as of the last change the
    index saw. Any other change of the folder (another program adding or removing a file, a crash between
    a save and its index line) leaves that time behind: the index is then stale and rebuilt from the files,
    once, in a worker thread. A file edited in place (not moved into place as this program writes) is not
    noticed. The index is only a shortcut: its files are written without fsync, and an unreadable one means
    a rebuild.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root.parent / INDEX_FOLDER / (root.name or "personas")
        """Beside the persona folder, not in it (``<data>/.index/personas/``): writing it leaves that folder's time."""
        self._lock = threading.Lock()
        self._pending = 0
        self._ok = False
        self.built = False
        """Whether the last rebuild wrote every file."""

    def _shard(self, description: str) -> Path:
        digest = hashlib.sha1(description.casefold().encode("utf-8")).hexdigest()[:16]
        return self.folder / f"names-{digest}.jsonl"

    def folder_mtime(self) -> int:
        try:
            return os.stat(self.root).st_mtime_ns
        except OSError:
            return -1

    def stamp(self) -> int:
        """The folder's time now: read it before listing the folder for a rebuild."""
        return self.folder_mtime()

    def _state(self) -> dict[str, Any] | None:
        """``state.json`` as written by this version (its folder time and version); None otherwise."""
        try:
            state = json.loads((self.folder / "state.json").read_bytes())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and state.get("version") == INDEX_VERSION else None

    def _write_state(self, mtime: int) -> None:
        """Stamp the index as up to date with the persona folder as it was at ``mtime``."""
        state = {"version": INDEX_VERSION, "mtime_ns": mtime}
        _write_quick(self.folder / "state.json", json.dumps(state).encode("utf-8"))

    def fresh(self) -> bool:
        state = self._state()
        return state is not None and state.get("mtime_ns") == self.folder_mtime()

    def same_version(self) -> bool:
        """Whether the index on disk was written by this version (else it is rebuilt, not refreshed)."""
        return self._state() is not None

    def apply(
        self,
        gone: list[TableRow],
        came: list[tuple[PersonaRecord, str, int]],
        stamp: int,
        problems: list[LoadProblem],
    ) -> bool:
        """Bring the index up to date with the files another program removed (``gone``) and added or changed
        (``came``: record, file name, modification time), as the folder was at ``stamp``."""
        with self._lock:
            try:
                self._append_gone(gone)
                self._append([record for record, _, _ in came], "+", {r.id: (f, t) for r, f, t in came})
                unreadable = [[p.path.name, p.reason] for p in problems]
                _write_quick(self.folder / PROBLEMS_FILE, json.dumps(unreadable).encode("utf-8"))
                self._write_state(stamp)
            except OSError as exc:
                log.warning("could not update the names index: %s", exc)
                return False
        return True

    def _append_gone(self, rows: list[TableRow]) -> None:
        shards: dict[Path, list[bytes]] = {}
        lines = [_json_line(["-", row.id]) for row in rows]
        for row, line in zip(rows, lines, strict=True):
            shards.setdefault(self._shard(row.description), []).append(line)
        self._write_appended(shards, lines, lines)

    def _write_appended(self, shards: dict[Path, list[bytes]], rows: list[bytes], texts: list[bytes]) -> None:
        """Append lines to the names shards, the rows file and the search-text file (only those with lines)."""
        for path, lines in (*shards.items(), (self.folder / ROWS_FILE, rows), (self.folder / TEXTS_FILE, texts)):
            if lines:
                with path.open("ab") as fh:
                    fh.write(b"".join(lines))

    def _mark(self) -> None:
        self._write_state(self.folder_mtime())

    def _read_fresh(self, path: Path, fresh: bool = True) -> list[bytes] | None:
        """The lines of one index file; None when the index is stale (and ``fresh`` asked) or the file unreadable."""
        with self._lock:
            if fresh and not self.fresh():
                return None
            try:
                return path.read_bytes().splitlines()
            except FileNotFoundError:
                return []
            except OSError:
                return None

    def entries(self, description: str, fresh: bool = True) -> list[IndexEntry] | None:
        """The personas made for ``description``; None when the index is missing (or stale, if ``fresh``)."""
        lines = self._read_fresh(self._shard(description), fresh)
        if lines is None:
            return None
        try:
            return [IndexEntry(*value) for value in _folded(lines).values()]
        except (ValueError, TypeError):
            return None

    def rows(self, fresh: bool = True) -> list[TableRow] | None:
        """Every persona's table row, newest first (no search text yet); None when missing (or stale, if
        ``fresh`` is asked)."""
        lines = self._read_fresh(self.folder / ROWS_FILE, fresh)
        if lines is None:
            return None
        try:
            rows = [TableRow(*value) for value in _folded(lines).values()]
        except (ValueError, TypeError):
            return None
        for row in rows:
            row.search = columns_text(row)
        rows.sort(key=lambda r: r.created, reverse=True)
        return rows

    def texts(self) -> dict[str, str] | None:
        """Each persona's search text by id; None when missing or stale."""
        lines = self._read_fresh(self.folder / TEXTS_FILE)
        if lines is None:
            return None
        try:
            return {persona_id: value[1] for persona_id, value in _folded(lines).items()}
        except (ValueError, TypeError, IndexError):
            return None

    def problems(self, root: Path) -> list[LoadProblem]:
        """The unreadable files the last rebuild met (the folder has not changed since, or it would be stale)."""
        try:
            found = json.loads((self.folder / PROBLEMS_FILE).read_bytes())
            return [LoadProblem(root / str(name), str(reason)) for name, reason in found if (root / str(name)).exists()]
        except (OSError, ValueError, TypeError):
            return []

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
        self.end_many([record] if record is not None else [], op)

    def end_many(
        self, records: Iterable[PersonaRecord], op: str = "+", files: dict[str, tuple[str, int]] | None = None
    ) -> None:
        """Like :meth:`end`, for many records saved (or deleted, or restored under the names in ``files``)."""
        with self._lock:
            self._pending = max(self._pending - 1, 0)
            try:
                if self.folder.is_dir():
                    self._append(list(records), op, files)
                if self._pending == 0 and self._ok:
                    self._mark()
            except OSError as exc:
                log.warning("could not update the names index: %s", exc)

    def _append(self, records: list[PersonaRecord], op: str, files: dict[str, tuple[str, int]] | None = None) -> None:
        """Lines for records saved ("+", in ``files`` when not named as this program names them) or deleted."""
        shards: dict[Path, list[bytes]] = {}
        rows: list[bytes] = []
        texts: list[bytes] = []
        for record in records:
            if op == "+":
                file, stamp = (files or {}).get(record.id) or (
                    file_name_for(record),
                    _mtime(self.root / file_name_for(record)),
                )
                row = table_row(record, file, stamp)
                name_line = _name_line(record)
                rows.append(_row_json(row))
                texts.append(_text_json(row))
            else:
                name_line = gone = _json_line(["-", record.id])  # the same line in all three files
                rows.append(gone)
                texts.append(gone)
            shards.setdefault(self._shard(record.request.description), []).append(name_line)
        self._write_appended(shards, rows, texts)

    def rebuild(
        self, records: Iterable[tuple[PersonaRecord, Path]], stamp: int, problems: list[LoadProblem] | None = None
    ) -> None:
        """Write the index again from ``records`` (all of the store, read one at a time just now, after
        ``stamp`` was taken); ``problems`` are the files that could not be read (filled as records are read)."""
        with self._lock:
            self.built = False
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("could not write the names index: %s", exc)
                return
            temps = {name: self.folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}" for name in (ROWS_FILE, TEXTS_FILE)}
            try:
                names = self._stream_rebuild(records, temps)
                names.sort(key=lambda item: item[0])  # oldest first, as saves append
                shards: dict[Path, list[bytes]] = {}
                for _, shard, name_line in names:
                    shards.setdefault(shard, []).append(name_line)
                unreadable = [[p.path.name, p.reason] for p in problems or []]
                for old in self.folder.glob("names-*.jsonl"):
                    if old not in shards:
                        old.unlink()
                for shard, lines in shards.items():
                    _write_quick(shard, b"".join(lines))
                for name, temp in temps.items():
                    os.replace(temp, self.folder / name)
                _write_quick(self.folder / PROBLEMS_FILE, json.dumps(unreadable).encode("utf-8"))
                self._write_state(stamp)
                self.built = True
            except OSError as exc:
                log.warning("could not write the names index: %s", exc)
            finally:
                for temp in temps.values():
                    _remove_quietly(temp)

    def _stream_rebuild(
        self, records: Iterable[tuple[PersonaRecord, Path]], temps: dict[str, Path]
    ) -> list[tuple[float, Path, bytes]]:
        """The rows and search texts written as the records are read (held nowhere: their order does not
        matter); the names lines kept, to be written oldest first."""
        names: list[tuple[float, Path, bytes]] = []
        with temps[ROWS_FILE].open("wb") as rows, temps[TEXTS_FILE].open("wb") as texts:
            for record, path in records:
                row = table_row(record, path.name, _mtime(path))
                names.append((row.created, self._shard(record.request.description), _name_line(record)))
                rows.write(_row_json(row))
                texts.write(_text_json(row))
        return names


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _json_line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8") + b"\n"


def _name_line(record: PersonaRecord) -> bytes:
    """A names shard's line for a persona saved."""
    e = index_entry(record)
    return _json_line(["+", [e.id, e.name, e.people, e.run_id, e.slot]])


def _row_json(row: TableRow) -> bytes:
    """The rows file's line for a persona saved."""
    return _json_line(["+", _row_line(row)])


def _text_json(row: TableRow) -> bytes:
    """The search-text file's line for a persona saved."""
    return _json_line(["+", [row.id, row.search]])


def _write_quick(final: Path, data: bytes) -> None:
    """Replace ``final`` with ``data`` through a temporary file, without fsync (for caches that can be rebuilt)."""
    temp = final.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        temp.write_bytes(data)
        os.replace(temp, final)
    except BaseException:
        _remove_quietly(temp)
        raise


def _read_quietly(path: Path) -> PersonaRecord | None:
    try:
        return PersonaRecord.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _read_record(entry: os.DirEntry[str], path: Path, problems: list[LoadProblem]) -> PersonaRecord | None:
    if not _is_regular_file(entry):  # a folder or a named pipe: reading it would fail or block
        problems.append(LoadProblem(path, "is not a regular file"))
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(LoadProblem(path, f"could not be read: {exc.strerror or exc}"))
        return None
    try:
        return PersonaRecord.model_validate_json(data)
    except ValidationError as exc:
        problems.append(LoadProblem(path, _why_invalid(exc, data)))
        return None


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


# ----- conversations: interview transcripts and focus groups -----

_ID = re.compile(r"^[0-9a-f]{32}$")


def _checked_id(persona_id: str) -> str:
    """A persona id fit to name a file (ids are ours, but a path is never built from unchecked text)."""
    if not _ID.fullmatch(persona_id):
        raise StoreError(f"{persona_id!r} is not a persona id.", "Give the full 32-character id.")
    return persona_id


class TranscriptStore:
    """Interview transcripts, one JSON-lines file per persona (``<data>/transcripts/<persona-id>.jsonl``).

    A turn is appended as one line and fsynced before the append returns, so a kill loses at most the turn
    being written. A line torn by a kill (no newline at its end) is skipped on read, and the next append
    starts on a fresh line, so the torn fragment never swallows a later turn.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, persona_id: str) -> Path:
        return self.root / f"{_checked_id(persona_id)}.jsonl"

    async def append(self, turn: Turn) -> Path:
        path = self.path_for(turn.persona_id)
        line = turn.model_dump_json().encode("utf-8") + b"\n"
        try:
            await asyncio.to_thread(_append_line, path, line)
        except OSError as exc:
            raise StoreError(
                f"The turn could not be added to the transcript in {self.root}: {exc.strerror or exc}.",
                "Check that the data folder is writable and the disk has space.",
            ) from exc
        return path

    async def read(self, persona_id: str) -> list[Turn]:
        return await asyncio.to_thread(self.read_sync, persona_id)

    def read_sync(self, persona_id: str) -> list[Turn]:
        """The persona's turns, oldest first; none when it was never interviewed; torn or foreign lines skipped."""
        try:
            data = self.path_for(persona_id).read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"The transcript could not be read: {exc.strerror or exc}.") from exc
        turns: list[Turn] = []
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                turns.append(Turn.model_validate_json(raw))
            except ValidationError:
                log.warning("skipping an unreadable line of the transcript of %s", persona_id)
        return turns


def _append_line(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":
            line = b"\n" + line  # a torn last line: this turn starts on a line of its own
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1)


GROUP_HINT = "Give more of the id; focus groups are files named group-DATE-TIME-ID.json in the data folder's groups/."


class GroupStore:
    """Focus groups, one JSON file each (``<data>/groups/group-DATE-TIME-ID.json``), rewritten atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, group: FocusGroup) -> Path:
        return self.root / f"group-{group.created_at:%Y%m%d-%H%M%S}-{group.id}.json"

    async def save(self, group: FocusGroup) -> Path:
        final = self.path_for(group)
        try:
            await atomic_write(final, group.model_dump_json(indent=2).encode("utf-8") + b"\n")
        except OSError as exc:
            raise StoreError(
                f"The focus group could not be saved in {self.root}: {exc.strerror or exc}.",
                "Check that the data folder is writable and the disk has space.",
            ) from exc
        return final

    def all_sync(self) -> list[FocusGroup]:
        """Every readable focus group, newest first."""
        try:
            files = sorted((p for p in self.root.glob("group-*.json") if p.is_file()), reverse=True)
        except OSError as exc:
            raise StoreError(f"The focus groups in {self.root} could not be read: {exc.strerror or exc}.") from exc
        groups: list[FocusGroup] = []
        for path in files:
            try:
                groups.append(FocusGroup.model_validate_json(path.read_bytes()))
            except (OSError, ValidationError) as exc:
                log.warning("skipping focus group %s: %s", path, exc)
        return groups

    async def all(self) -> list[FocusGroup]:
        return await asyncio.to_thread(self.all_sync)

    async def find(self, id_prefix: str) -> FocusGroup:
        prefix = id_prefix.strip().lower()
        found = [g for g in await self.all() if g.id.startswith(prefix)] if prefix else []
        if len(found) != 1:
            what = "No focus group" if not found else f"{len(found)} focus groups"
            raise StoreError(f"{what} has an id starting with {id_prefix!r}.", GROUP_HINT)
        return found[0]
