"""What the pipeline needs from a provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """Everything a provider needs to write one persona.

    ``messages`` is the chat prompt for a model; ``description`` and ``index``
    let the offline generator honour the request without a model.
    """

    messages: list[dict[str, str]]
    schema: dict[str, object]
    description: str
    index: int = 0
    avoid_names: tuple[str, ...] = ()


@runtime_checkable
class Provider(Protocol):
    """A source of streamed persona JSON.

    ``stream`` yields text deltas (about one token each) that together form
    one JSON object. It raises :class:`~persona_tui.engine.errors.GenerationError`
    for failures it understands. Closing the iterator (or cancelling the task
    iterating it) must release the connection at once.
    """

    name: str
    """Stable id written into each record: ``openai`` or ``offline``."""
    model: str
    is_ai: bool
    """False for the offline sample generator, which must say so wherever it shows."""

    @property
    def endpoint(self) -> str:
        """Where requests go, for display: a host, or ``local``."""
        ...

    @property
    def label(self) -> str:
        """One line for headers and logs, e.g. ``gpt-4o-mini at api.openai.com``."""
        ...

    def stream(self, spec: PromptSpec) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...
