"""The providers persona-tui knows, found through the ``persona_tui.providers`` entry-point group.

The built-in ``openai`` and ``offline`` providers are registered in the
project's own ``pyproject.toml`` exactly as a plugin would register its own:
an entry point naming a :class:`~persona_tui.engine.providers.base.ProviderInfo`.
Names are read from package metadata without importing anything; a provider's
module is imported only when it is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import fields
from functools import cache
from importlib.metadata import EntryPoint

from pydantic import BaseModel, ValidationError

from persona_tui.config import PROVIDER_GROUP, Settings, SettingsError, provider_entry_points
from persona_tui.engine.providers.base import Provider, ProviderInfo
from persona_tui.models import plain_reason

log = logging.getLogger(__name__)

_SETTING_NAMES = frozenset(field.name for field in fields(Settings))
_registered: dict[str, ProviderInfo] = {}
"""Providers registered in-process (tests, embedding code), beside the entry points."""


def register(info: ProviderInfo) -> None:
    """Make a provider available by name without an entry point (for tests and programs that embed persona-tui)."""
    _registered[info.name] = info


def unregister(name: str) -> None:
    _registered.pop(name, None)


def names() -> list[str]:
    """Every provider name, built-ins first, without importing any provider."""
    found = [ep.name for ep in provider_entry_points()]
    return found + [name for name in _registered if name not in found]


@cache
def _load(entry: EntryPoint) -> ProviderInfo:
    info = entry.load()
    if not isinstance(info, ProviderInfo):
        raise SettingsError(
            f"The provider plugin {entry.name!r} ({entry.value}) is not a persona-tui provider "
            f"(its {PROVIDER_GROUP} entry point must name a ProviderInfo)."
        )
    return info


def get(name: str) -> ProviderInfo:
    """The provider registered under ``name``, raising :class:`SettingsError` naming the choices."""
    if name in _registered:
        return _registered[name]
    for entry in provider_entry_points():
        if entry.name == name:
            try:
                return _load(entry)
            except Exception as exc:  # a plugin's own bug, whatever it is, is reported as that plugin's
                raise SettingsError(f"The provider plugin {name!r} could not be loaded: {exc}.") from None
    raise SettingsError(f"There is no provider named {name!r}; use auto, {', '.join(names())}.")


def loadable() -> Iterator[ProviderInfo]:
    """Every provider that loads; a broken plugin is logged and passed over, never in the way of the others."""
    for name in names():
        try:
            yield get(name)
        except SettingsError as exc:
            log.warning("%s", exc)


def chosen(settings: Settings) -> ProviderInfo:
    """The provider the settings ask for; ``auto`` takes the best-ranked one that is set up."""
    if settings.provider != "auto":
        return get(settings.provider)
    candidates = [info for info in loadable() if info.ready is not None and info.ready(settings)]
    if not candidates:
        raise SettingsError("No provider is set up. " + setup_hint(settings))
    return min(candidates, key=lambda info: info.auto_rank)


def options_for(info: ProviderInfo, settings: Settings) -> BaseModel:
    """The provider's options: settings of the same names, and its ``[providers.NAME]`` table for the rest.

    A setting of persona-tui's own (``model``, ``seed``...) is never taken from the table, so a flag or
    an environment variable always wins over the file, as for every other setting.
    """
    table = settings.provider_options.get(info.name, {})
    shadowing = sorted(key for key in table if key in _SETTING_NAMES)
    if shadowing:
        raise SettingsError(
            f"[providers.{info.name}] sets {', '.join(shadowing)}, which is a setting of its own: "
            "set it at the top of the config file instead."
        )
    values = {key: getattr(settings, key) for key in info.options.model_fields if key in _SETTING_NAMES}
    values.update(table)
    try:
        return info.options.model_validate(values)
    except ValidationError as exc:
        where, reason = plain_reason(exc)
        raise SettingsError(f"The {info.name} provider's option {where} is not valid: {reason}.") from None


def make_provider(settings: Settings) -> Provider:
    """Build the provider the settings ask for."""
    info = chosen(settings)
    return info.build(options_for(info, settings), settings)


def setup_hint(settings: Settings) -> str:
    """How to get a real model: the hints of every AI provider that could be set up."""
    return " ".join(info.setup_hint for info in loadable() if info.is_ai and info.setup_hint)


def key_hint() -> str:
    """A few words on getting a real model, for a header: the key of the first AI provider that needs one."""
    for info in loadable():
        if info.is_ai and info.key_env_var:
            return f"set {info.key_env_var} for a real model"
    return "no real model is set up"
