"""Settings, resolved by one convention everywhere.

For each setting the first source that has it wins: a command-line flag, then
a ``PERSONA_TUI_*`` environment variable, then the optional TOML config file,
then the default. The OpenAI key and base URL also come from the variables the
openai client itself reads (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).

The API key is kept out of every ``repr``, and it is never read from the config
file, so it cannot end up written beside the data.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

APP_NAME = "persona-tui"
ENV_PREFIX = "PERSONA_TUI_"
DEFAULT_MODEL = "gpt-4o-mini"

TEMPERATURE_MAX = 2.0
"""The highest sampling temperature OpenAI-compatible servers accept."""
PROVIDER_GROUP = "persona_tui.providers"
"""The entry-point group providers register in (the built-in ones too)."""


@cache
def provider_entry_points() -> tuple[EntryPoint, ...]:
    """The registered providers, read from package metadata without importing them (first name wins)."""
    seen: dict[str, EntryPoint] = {}
    for entry in entry_points(group=PROVIDER_GROUP):
        seen.setdefault(entry.name, entry)
    return tuple(seen.values())


class SettingsError(ValueError):
    """A setting with a value that cannot be used; the message names the source."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of persona-tui. Field docstrings are shown by ``--help``."""

    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    provider: str = "auto"
    """``auto`` or the name of a registered provider."""
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    offline_tokens_per_second: float = 80.0
    seed: int | None = None
    heartbeat_seconds: float = 3.0
    slow_seconds: float = 15.0
    connect_timeout: float = 10.0
    first_token_timeout: float = 30.0
    thinking_timeout: float = 180.0
    """Silence allowed while a model thinks in hidden (OpenAI's reasoning models stream nothing meanwhile)."""
    idle_timeout: float = 20.0
    total_timeout: float = 300.0
    concurrency: int = 4
    max_attempts: int = 4
    batch_poll_seconds: float = 10.0
    """Seconds between two looks at a Batch API batch (``generate --batch-api``)."""
    retry_base_delay: float = 1.0
    retry_max_delay: float = 30.0
    temperature: float | None = 0.9
    """None (``default`` in a flag, a variable or the file) sends none: the model's own default."""
    exa_base_url: str = "https://api.exa.ai"
    exa_api_key: str | None = field(default=None, repr=False)
    enrich_timeout: float = 8.0
    enrich_results: int = 3
    population_plan: bool = True
    """Draw each persona's slot (age, pronouns, place, job, tech, life stage) before the first call and hold the
    persona to it; false lets the model choose freely."""
    similarity_threshold: float = 0.8
    """Two personas of a batch this similar (0 to 1, text over background, goals and quote) are near-duplicates."""
    regenerate_duplicates: bool = True
    """Write the later of a near-duplicate pair again, once, at the end of a batch."""
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """Per-provider options from the config file's ``[providers.NAME]`` tables."""
    config_file: Path | None = field(default=None, compare=False, repr=False)
    """The config file these settings were read from (or would be, when it does not exist yet): where the app
    remembers a model chosen in it. Not a setting itself: ``--config`` or ``PERSONA_TUI_CONFIG`` choose it."""

    @property
    def personas_dir(self) -> Path:
        return self.data_dir / "personas"

    @property
    def organizations_dir(self) -> Path:
        return self.data_dir / "organizations"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def transcripts_dir(self) -> Path:
        return self.data_dir / "transcripts"

    @property
    def groups_dir(self) -> Path:
        return self.data_dir / "groups"


_ENV_ONLY = {"api_key": "OPENAI_API_KEY", "exa_api_key": "EXA_API_KEY"}
_NOT_SETTINGS = frozenset({"provider_options", "config_file"})
"""Fields of :class:`Settings` that no flag, variable or top-level config key sets."""
_ENV_FALLBACK = {"base_url": "OPENAI_BASE_URL"}
_POSITIVE = {
    "heartbeat_seconds",
    "slow_seconds",
    "connect_timeout",
    "first_token_timeout",
    "thinking_timeout",
    "idle_timeout",
    "total_timeout",
    "max_attempts",
    "concurrency",
    "enrich_timeout",
    "enrich_results",
    "retry_max_delay",
    "batch_poll_seconds",
}


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Resolve settings from flags, environment, config file and defaults, in that order."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    explicit_config = config_path is not None or bool(env.get(ENV_PREFIX + "CONFIG"))
    path = config_path or Path(env.get(ENV_PREFIX + "CONFIG") or default_config_path())
    file_values = _read_config(path, required=explicit_config)

    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in _NOT_SETTINGS:
            continue
        found = _source_of(f.name, flags, env, file_values, path)
        if found is not None and found[0] is not None:
            values[f.name] = _coerce(f.name, *found)
    if PROVIDER_TABLES in file_values:
        values["provider_options"] = _provider_tables(file_values[PROVIDER_TABLES], path)
    return Settings(**values, config_file=path)


def _source_of(
    name: str, flags: Mapping[str, Any], env: Mapping[str, str], file_values: Mapping[str, Any], path: Path
) -> tuple[Any, str] | None:
    """The raw value of one setting and where it came from, by precedence; None when nothing sets it."""
    if name in flags:
        return flags[name], f"--{name.replace('_', '-')}"
    if name in _ENV_ONLY:
        return env.get(_ENV_ONLY[name]) or None, _ENV_ONLY[name]
    if env.get(ENV_PREFIX + name.upper()):
        return env[ENV_PREFIX + name.upper()], ENV_PREFIX + name.upper()
    if name in _ENV_FALLBACK and env.get(_ENV_FALLBACK[name]):
        return env[_ENV_FALLBACK[name]], _ENV_FALLBACK[name]
    if name in file_values:
        return file_values[name], f"{path} ({name})"
    return None


PROVIDER_TABLES = "providers"
"""The config file's table of per-provider tables: ``[providers.NAME]``."""


def _provider_tables(raw: Any, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise SettingsError(f"{path} ({PROVIDER_TABLES}) must hold one table per provider, like [providers.openai].")
    return {str(name): dict(table) for name, table in raw.items()}


def _read_config(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        if required:
            raise SettingsError(f"The config file {path} does not exist.") from None
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"The config file {path} could not be read: {exc}") from None
    secrets = sorted(set(data) & set(_ENV_ONLY))
    if secrets:
        where = ", ".join(_ENV_ONLY[name] for name in secrets)
        raise SettingsError(
            f"The config file {path} sets {', '.join(secrets)}: keys are read only from the environment ({where}), "
            "never from a file. Remove the line and set the variable instead."
        )
    known = ({f.name for f in fields(Settings)} - set(_ENV_ONLY) - _NOT_SETTINGS) | {PROVIDER_TABLES}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"The config file {path} has unknown settings: {_with_suggestions(unknown, known)}.")
    return data


def _with_suggestions(unknown: list[str], known: set[str]) -> str:
    """``modle (did you mean model?)``: the nearest known name for each typo."""
    said = []
    for name in unknown:
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.7)
        said.append(f"{name} (did you mean {near[0]}?)" if near else name)
    return ", ".join(said)


def _coerce(name: str, raw: Any, source: str) -> Any:
    kind = str({f.name: f.type for f in fields(Settings)}[name])
    if name in _SPECIAL:
        reader = _SPECIAL[name]
    elif kind == "bool":
        reader = _bool
    elif "float" in kind:
        reader = _float
    elif "int" in kind:
        reader = _int
    else:
        reader = _text if "None" in kind else _required_text
    try:
        value = reader(raw)
        if isinstance(value, int | float):
            _check_range(name, value)
        return value
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{source} has an invalid value {_as_written(raw)}: {exc}.") from None


def _as_written(raw: Any) -> str:
    """A value as the user wrote it (TOML's ``true``, not Python's ``True``)."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, dict):
        return "a table"
    if isinstance(raw, list):
        return "a list"
    return repr(raw) if isinstance(raw, str) else str(raw)


def _folder(raw: Any) -> Path:
    if not isinstance(raw, str | os.PathLike):
        raise ValueError("expected a folder path")
    if not str(raw).strip():
        raise ValueError("must not be empty")
    return Path(raw).expanduser()


def _provider_name(raw: Any) -> str:
    value = str(raw).strip().lower()
    choices = ["auto", *(entry.name for entry in provider_entry_points())]
    if value not in choices:
        raise ValueError(f"use {', '.join(choices[:-1])} or {choices[-1]}")
    return value


def _float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("expected a number")
    return float(raw)


def _temperature(raw: Any) -> float | None:
    if isinstance(raw, str) and raw.strip().lower() in ("default", "none", ""):
        return None
    return _float(raw)


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _int(raw: Any) -> int:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | str)
        or (isinstance(raw, str) and not raw.strip().lstrip("-").isdigit())
    ):
        raise ValueError("expected a whole number")
    return int(raw)


def _text(raw: Any) -> str | None:
    if not isinstance(raw, str):
        raise ValueError("expected text")
    return raw.strip() or None


def _required_text(raw: Any) -> str:
    value = _text(raw)
    if value is None:
        raise ValueError("must not be empty")
    return value


def _server_url(raw: Any) -> str | None:
    """An http(s) address with a host and a port that can be; a typo is caught here, not as a traceback later."""
    text = _text(raw)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- reading it checks the port
    except ValueError:
        raise ValueError("is not a valid address (check the host and the port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// address, like http://localhost:11434/v1")
    return text


_SPECIAL: dict[str, Any] = {
    "data_dir": _folder,
    "provider": _provider_name,
    "temperature": _temperature,
    "base_url": _server_url,
    "exa_base_url": _server_url,
}


def _check_range(name: str, number: float) -> None:
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    if name in _POSITIVE and number <= 0:
        raise ValueError("must be greater than 0")
    if number < 0:
        raise ValueError("must not be negative")
    if name == "similarity_threshold" and not 0 < number <= 1:
        raise ValueError("must be above 0 and at most 1")
    if name == "temperature" and number > TEMPERATURE_MAX:
        raise ValueError(f"must be from 0 to {TEMPERATURE_MAX:g} (or 'default' to send none)")


# ----- remembering a choice made in the app -----


class ConfigWriteError(Exception):
    """The config file could not be updated; ``reason`` is a few words (``Permission denied``)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Could not write {path}: {reason}.")
        self.path = path
        self.reason = reason


def env_override(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The environment variable that sets ``name`` now and so wins over the config file, if any."""
    env = os.environ if env is None else env
    variable = ENV_PREFIX + name.upper()
    return variable if env.get(variable) else None


def remember_setting(path: Path, name: str, value: str) -> Path:
    """Set ``name = "value"`` in the TOML config file at ``path``, keeping every other line and comment.

    An existing top-level line for the setting is replaced in place (its trailing comment kept); otherwise
    the line is added after the other top-level settings, before the first table. The folder and the file
    are made when missing, and the file is replaced atomically (a temporary file in the same folder,
    fsynced, then moved into place), so a crash leaves the old file or the new one, never half of one. A
    config file that is a symlink (dotfiles) is written through, and stays a link.

    Blocking: call it in a thread from async code. Keys are never written (they are read only from the
    environment). Returns the file written; raises :class:`ConfigWriteError` with one sentence.
    """
    if name in _ENV_ONLY or name in _NOT_SETTINGS or name not in {f.name for f in fields(Settings)}:
        raise ValueError(f"{name!r} is not a setting the config file may hold")
    target = path.expanduser()
    if target.is_symlink():
        target = target.resolve()
    try:
        text = target.read_bytes().decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigWriteError(path, _reason(exc)) from None
    _write_atomically(target, with_setting(text, name, value, path=path).encode("utf-8"))
    return path


_TABLE_HEADER = re.compile(r"\s*\[")
_COMMENT_OR_BLANK = re.compile(r"\s*(#.*)?$")


def with_setting(text: str, name: str, value: str, *, path: Path | None = None) -> str:
    """The config text with ``name`` set to the string ``value``; everything else exactly as it was.

    The result is parsed before it is returned: if anything but this one setting would read differently
    (a layout this edit does not understand), :class:`ConfigWriteError` is raised and nothing is written.
    """
    where = path or Path("config.toml")
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    top_end = next((i for i, line in enumerate(lines) if _TABLE_HEADER.match(line)), len(lines))
    key = re.compile(rf"""(\s*)(?:{re.escape(name)}|"{re.escape(name)}"|'{re.escape(name)}')\s*=(.*)""")
    setting = f"{name} = {_toml_string(value)}"
    for i in range(top_end):
        found = key.fullmatch(lines[i].rstrip("\r\n"))
        if found:
            comment = _trailing_comment(found.group(2))
            if comment is None:
                raise ConfigWriteError(where, f"its {name} line is not one line of TOML")
            lines[i] = found.group(1) + setting + (f"  {comment}" if comment else "") + newline
            break
    else:
        _insert(lines, top_end, setting, newline)
    result = "".join(lines)
    _check_edit(text, result, name, value, where)
    return result


def _insert(lines: list[str], top_end: int, setting: str, newline: str) -> None:
    """Add the setting after the top-level settings: before the first table and the comments that head it."""
    at = top_end
    if top_end < len(lines):
        while at > 0 and _COMMENT_OR_BLANK.fullmatch(lines[at - 1].rstrip("\r\n")):
            at -= 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += newline
    added = [setting + newline]
    if at < len(lines) and lines[at].strip():
        added.append(newline)  # a blank line keeps the table (and its comments) apart from the settings
    lines[at:at] = added


def _trailing_comment(rest: str) -> str | None:
    """The comment after a one-line value ('' when none), or None when the value is not one line of TOML."""
    cuts = [i for i, char in enumerate(rest) if char == "#"] + [len(rest)]
    for cut in cuts:
        try:
            tomllib.loads("v =" + rest[:cut])
        except tomllib.TOMLDecodeError:
            continue
        return rest[cut:].strip()
    return None


def _check_edit(before: str, after: str, name: str, value: str, where: Path) -> None:
    try:
        old = tomllib.loads(before)
        new = tomllib.loads(after)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigWriteError(where, f"it is not valid TOML ({exc})") from None
    old.pop(name, None)
    if new.pop(name, None) != value or new != old:
        raise ConfigWriteError(where, f"its layout is not one this edit understands; set {name} in it by hand")


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped (TOML forbids them raw)."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _write_atomically(target: Path, data: bytes) -> None:
    """A temporary file beside the target, flushed and fsynced, then moved over it; the file's mode is kept."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            mode: int | None = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = None
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _fsync_folder(folder)
    except OSError as exc:
        raise ConfigWriteError(target, _reason(exc)) from None


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (not on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return exc.strerror or str(exc)
