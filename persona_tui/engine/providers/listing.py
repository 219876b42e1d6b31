"""Which models a provider's server serves, asked the same way by the CLI (`models`) and the app's picker.

Users of Ollama and LM Studio otherwise have to guess a model's exact name.
Listing is optional for a provider (:class:`~.base.ListsModels`); one that
cannot list is told apart from a server that cannot be reached, because the
first is a matter of setup (exit 2 in the CLI) and the second a failure
worth trying again (exit 1).
"""

from __future__ import annotations

from persona_tui.config import Settings, SettingsError
from persona_tui.engine.providers.base import ListsModels, ModelEntry, Provider
from persona_tui.engine.providers.registry import get, setup_hint


class NoModelList(Exception):
    """The chosen provider has no models to choose from: one sentence and a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def lister_of(provider: Provider) -> ListsModels | None:
    """The provider as a lister, or None when it declares (or shows) that it cannot list.

    A registered provider must declare the capability; one that is not registered
    (a test double, an embedding program's own) is judged by the method alone.
    """
    try:
        declared = get(provider.name).capabilities.list_models
    except SettingsError:
        declared = True
    if declared and isinstance(provider, ListsModels):
        return provider
    return None


def cannot_list(provider: Provider, settings: Settings) -> NoModelList:
    """Why this provider offers no list, in the words a user needs."""
    if provider.name == "offline":
        return NoModelList("The offline sample generator has no models to choose from.", setup_hint(settings))
    who = f"The {provider.name} provider"
    if not provider.is_ai:
        return NoModelList(f"{who} has no models to choose from.", setup_hint(settings))
    return NoModelList(
        f"{who} cannot list the models of {provider.endpoint}.",
        "Give the model by name with --model, PERSONA_TUI_MODEL or `model` in the config file.",
    )


async def server_models(provider: Provider, settings: Settings) -> list[ModelEntry]:
    """The models of the provider's server, sorted by name, each once.

    Raises :class:`NoModelList` when the provider cannot list, and the provider's
    ``GenerationError`` when its server cannot be reached or refuses.
    """
    lister = lister_of(provider)
    if lister is None:
        raise cannot_list(provider, settings)
    seen: dict[str, ModelEntry] = {}
    for entry in await lister.list_models():
        seen.setdefault(entry.id, entry)
    return sorted(seen.values(), key=lambda entry: (entry.id.casefold(), entry.id))
