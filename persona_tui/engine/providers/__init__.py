"""Model providers: the real OpenAI-compatible one and the offline sample generator."""

from __future__ import annotations

from persona_tui.config import Settings, SettingsError
from persona_tui.engine.providers.base import PromptSpec, Provider

__all__ = ["PromptSpec", "Provider", "make_provider"]

OFFLINE_HINT = "Set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) to use a real model."


def make_provider(settings: Settings) -> Provider:
    """The provider the settings ask for: ``auto`` picks offline when no key and no base URL are set."""
    if settings.resolved_provider == "offline":
        from persona_tui.engine.providers.offline import OfflineProvider

        return OfflineProvider(seed=settings.seed, tokens_per_second=settings.offline_tokens_per_second)
    if not (settings.api_key or settings.base_url):
        raise SettingsError("The openai provider needs a key or a server. " + OFFLINE_HINT)
    from persona_tui.engine.providers.openai_compatible import OpenAIProvider

    return OpenAIProvider(
        model=settings.model,
        api_key=settings.api_key,
        base_url=settings.base_url,
        connect_timeout=settings.connect_timeout,
        read_timeout=max(settings.first_token_timeout, settings.idle_timeout) + 5.0,
        temperature=settings.temperature,
    )
