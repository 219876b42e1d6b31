"""Model providers, found through the ``persona_tui.providers`` entry points (see :mod:`.registry`)."""

from __future__ import annotations

from persona_tui.engine.providers.base import Capabilities, ListsModels, ModelEntry, PromptSpec, Provider, ProviderInfo
from persona_tui.engine.providers.listing import NoModelList, server_models
from persona_tui.engine.providers.registry import chosen, make_provider, names, register, setup_hint

__all__ = [
    "Capabilities",
    "ListsModels",
    "ModelEntry",
    "NoModelList",
    "PromptSpec",
    "Provider",
    "ProviderInfo",
    "chosen",
    "make_provider",
    "names",
    "register",
    "server_models",
    "setup_hint",
]
