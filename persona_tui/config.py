"""Settings, resolved by one convention everywhere.

For each setting the first source that has it wins: a command-line flag, then
a ``PERSONA_TUI_*`` environment variable, then the optional TOML config file,
then the default. The OpenAI key and base URL also come from the variables the
openai client itself reads (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).

The API key is kept out of every ``repr``, and it is never read from the config
file, so it cannot end up written beside the data.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

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
    retry_base_delay: float = 1.0
    retry_max_delay: float = 30.0
    temperature: float | None = 0.9
    """None (``default`` in a flag, a variable or the file) sends none: the model's own default."""
    exa_base_url: str = "https://api.exa.ai"
    exa_api_key: str | None = field(default=None, repr=False)
    enrich_timeout: float = 8.0
    enrich_results: int = 3
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """Per-provider options from the config file's ``[providers.NAME]`` tables."""

    @property
    def personas_dir(self) -> Path:
        return self.data_dir / "personas"

    @property
    def organizations_dir(self) -> Path:
        return self.data_dir / "organizations"


_ENV_ONLY = {"api_key": "OPENAI_API_KEY", "exa_api_key": "EXA_API_KEY"}
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
        if f.name == "provider_options":
            continue
        found = _source_of(f.name, flags, env, file_values, path)
        if found is not None and found[0] is not None:
            values[f.name] = _coerce(f.name, *found)
    if PROVIDER_TABLES in file_values:
        values["provider_options"] = _provider_tables(file_values[PROVIDER_TABLES], path)
    return Settings(**values)


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
    known = ({f.name for f in fields(Settings)} - set(_ENV_ONLY) - {"provider_options"}) | {PROVIDER_TABLES}
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
        raise SettingsError(f"{source} has an invalid value {raw!r}: {exc}.") from None


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


_SPECIAL: dict[str, Any] = {"data_dir": _folder, "provider": _provider_name, "temperature": _temperature}


def _check_range(name: str, number: float) -> None:
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    if name in _POSITIVE and number <= 0:
        raise ValueError("must be greater than 0")
    if number < 0:
        raise ValueError("must not be negative")
    if name == "temperature" and number > TEMPERATURE_MAX:
        raise ValueError(f"must be from 0 to {TEMPERATURE_MAX:g} (or 'default' to send none)")
