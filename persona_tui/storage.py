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
import json
import logging
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable
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

    async def save(self, record: PersonaRecord) -> Path:
        """Write ``record`` atomically and return its path."""
        final = self.root / file_name_for(record)
        try:
            await atomic_write(final, record.model_dump_json(indent=2).encode("utf-8") + b"\n")
        except OSError as exc:
            raise StoreError(
                f"The persona could not be saved to {self.root}: {exc.strerror or exc}.",
                "Check that the data folder is writable and the disk has space, or choose another with --data-dir.",
            ) from exc
        return final

    async def problem(self) -> StoreError | None:
        """Why personas could not be saved here, found before anything is paid for; None when the folder is usable."""
        return await asyncio.to_thread(folder_problem, self.root)

    async def load_all(self) -> LoadResult:
        """Read every persona in one worker thread (thousands of small files)."""
        return await asyncio.to_thread(self.load_all_sync)

    def load_all_sync(self) -> LoadResult:
        records: list[PersonaRecord] = []
        problems: list[LoadProblem] = []
        paths: dict[str, Path] = {}
        for entry in self._persona_files():
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
        result = await self.load_all()
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

    async def delete(self, id_or_prefix: str) -> PersonaRecord:
        record, path = await self.find(id_or_prefix)
        try:
            await aiofiles.os.remove(path)
        except OSError as exc:
            raise StoreError(f"{path.name} could not be deleted: {exc.strerror or exc}.") from exc
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
        try:
            await atomic_write(final, run.model_dump_json(indent=2).encode("utf-8") + b"\n")
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
