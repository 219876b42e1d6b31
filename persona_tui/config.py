"""Settings, resolved by one convention everywhere.

For each setting the first source that has it wins: a command-line flag, then
a ``PERSONA_TUI_*`` environment variable, then the optional TOML config file,
then the default. The OpenAI key and base URL also come from the variables the
openai client itself reads (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``).

The API key is kept out of every ``repr``, and it is never read from the config
file, so it cannot end up written beside the data.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import platformdirs

APP_NAME = "persona-tui"
ENV_PREFIX = "PERSONA_TUI_"
DEFAULT_MODEL = "gpt-4o-mini"

ProviderChoice = Literal["auto", "openai", "offline"]


class SettingsError(ValueError):
    """A setting with a value that cannot be used; the message names the source."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of persona-tui. Field docstrings are shown by ``--help``."""

    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    provider: ProviderChoice = "auto"
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    offline_tokens_per_second: float = 80.0
    seed: int | None = None
    heartbeat_seconds: float = 3.0
    slow_seconds: float = 15.0
    connect_timeout: float = 10.0
    first_token_timeout: float = 30.0
    idle_timeout: float = 20.0
    total_timeout: float = 300.0
    concurrency: int = 4
    max_attempts: int = 4
    retry_base_delay: float = 1.0
    retry_max_delay: float = 30.0
    temperature: float = 0.9
    exa_base_url: str = "https://api.exa.ai"
    exa_api_key: str | None = field(default=None, repr=False)
    enrich_timeout: float = 8.0
    enrich_results: int = 3

    @property
    def personas_dir(self) -> Path:
        return self.data_dir / "personas"

    @property
    def organizations_dir(self) -> Path:
        return self.data_dir / "organizations"

    @property
    def resolved_provider(self) -> Literal["openai", "offline"]:
        """``auto`` means the real model when a key or a base URL is set, else offline."""
        if self.provider == "auto":
            return "openai" if (self.api_key or self.base_url) else "offline"
        return self.provider


_ENV_ONLY = {"api_key": "OPENAI_API_KEY", "exa_api_key": "EXA_API_KEY"}
_ENV_FALLBACK = {"base_url": "OPENAI_BASE_URL"}
_POSITIVE = {
    "heartbeat_seconds",
    "slow_seconds",
    "connect_timeout",
    "first_token_timeout",
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
        name = f.name
        if name in flags:
            raw, source = flags[name], f"--{name.replace('_', '-')}"
        elif name in _ENV_ONLY:
            raw, source = env.get(_ENV_ONLY[name]) or None, _ENV_ONLY[name]
        elif env.get(ENV_PREFIX + name.upper()):
            raw, source = env[ENV_PREFIX + name.upper()], ENV_PREFIX + name.upper()
        elif name in _ENV_FALLBACK and env.get(_ENV_FALLBACK[name]):
            raw, source = env[_ENV_FALLBACK[name]], _ENV_FALLBACK[name]
        elif name in file_values:
            raw, source = file_values[name], f"{path} ({name})"
        else:
            continue
        if raw is None:
            continue
        values[name] = _coerce(name, raw, source)
    return Settings(**values)


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
    known = {f.name for f in fields(Settings)} - set(_ENV_ONLY)
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"The config file {path} has unknown settings: {', '.join(unknown)}.")
    return data


def _coerce(name: str, raw: Any, source: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if name == "data_dir":
            if not isinstance(raw, str | os.PathLike):
                raise ValueError("expected a folder path")
            if not str(raw).strip():
                raise ValueError("must not be empty")
            return Path(raw).expanduser()
        if name == "provider":
            value = str(raw).lower()
            if value not in ("auto", "openai", "offline"):
                raise ValueError("use auto, openai or offline")
            return value
        if "float" in str(kind):
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError("expected a number")
            number = float(raw)
            _check_range(name, number)
            return number
        if "int" in str(kind):
            if (
                isinstance(raw, bool)
                or not isinstance(raw, int | str)
                or (isinstance(raw, str) and not raw.strip().lstrip("-").isdigit())
            ):
                raise ValueError("expected a whole number")
            number = int(raw)
            _check_range(name, number)
            return number
        if not isinstance(raw, str):
            raise ValueError("expected text")
        value = raw.strip()
        if not value and "None" not in str(kind):
            raise ValueError("must not be empty")
        return value or None
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{source} has an invalid value {raw!r}: {exc}.") from None


def _check_range(name: str, number: float) -> None:
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    if name in _POSITIVE and number <= 0:
        raise ValueError("must be greater than 0")
    if number < 0:
        raise ValueError("must not be negative")
