"""What the pipeline needs from a provider, and what a provider declares about itself."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel

from persona_tui.engine.providers.parts import StreamPart
from persona_tui.models import Persona, Slot

if TYPE_CHECKING:
    from persona_tui.config import Settings


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
    slot: Slot | None = None
    """The persona's slot in the population plan: the offline generator composes to it."""
    variant: int = 0
    """How many times this persona was asked for again as someone else (a near-duplicate): the offline
    generator draws anew for each."""
    revise: Persona | None = None
    """A persona to revise by ``instruction`` (a refinement) rather than one to write anew."""
    instruction: str = ""


@runtime_checkable
class Provider(Protocol):
    """A source of streamed persona JSON.

    ``stream`` yields typed parts (:mod:`persona_tui.engine.providers.parts`):
    answer text that together forms one JSON object, and beside it reasoning,
    usage and server notices. It raises
    :class:`~persona_tui.engine.errors.GenerationError` for failures it
    understands. Closing the generator (or cancelling the task iterating it)
    must release the connection at once.
    """

    name: str
    """Stable id written into each record: ``openai``, ``offline``, or a plugin's name."""
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

    def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]: ...

    def prepare(self) -> None:
        """Do slow set-up (imports, clients) ahead of the first request; safe to run in a thread."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, so front ends offer only what works."""

    json_schema: bool = False
    """Answers are held to the persona's JSON schema by the server."""
    reasoning: bool = False
    """It can pass on a model's reasoning (or say that the model is reasoning)."""
    batch: bool = False
    """It can submit many requests as one batch job."""
    list_models: bool = False
    """It can ask its server which models it serves (:class:`ListsModels`), so users pick instead of guessing."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model a server says it serves.

    ``id`` is kept exactly as the server wrote it, because it is what the next request
    must send back; it is untrusted text, so front ends pass it through
    ``strip_control`` before drawing it. ``owned_by`` and ``created`` are None when the
    server leaves them out (LM Studio and llama.cpp often do).
    """

    id: str
    owned_by: str | None = None
    created: datetime | None = None

    def to_json(self) -> dict[str, object]:
        """A plain dict for ``--json`` output: ``created`` as ISO 8601 in UTC, or null."""
        return {
            "id": self.id,
            "owned_by": self.owned_by,
            "created": self.created.isoformat().replace("+00:00", "Z") if self.created else None,
        }


@runtime_checkable
class ListsModels(Protocol):
    """The optional part of a provider that lists its server's models.

    Optional because not every source has a choice of models (the offline generator
    has none); a provider that has it also declares ``Capabilities(list_models=True)``.
    """

    async def list_models(self) -> list[ModelEntry]:
        """The models the server serves; raises ``GenerationError`` (one sentence and a hint) when it cannot say."""
        ...


class NoOptions(BaseModel):
    """A provider without settings of its own."""


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A provider as the registry knows it: everything needed before one is built.

    Registered through the ``persona_tui.providers`` entry-point group: the
    entry point names an object of this type.
    """

    name: str
    """The id used by ``--provider`` and written into each record."""
    title: str
    """A few words for help texts: what it talks to."""
    build: Callable[[BaseModel, Settings], Provider]
    """Makes the provider from its validated options (and the settings, for timeouts and the key)."""
    options: type[BaseModel] = NoOptions
    """Its options, read from the settings of the same names."""
    key_env_var: str | None = None
    """The environment variable holding its key, if it needs one."""
    capabilities: Capabilities = Capabilities()
    setup_hint: str = ""
    """One sentence telling a user how to set it up, shown when it cannot be used."""
    is_ai: bool = True
    ready: Callable[[Settings], bool] | None = None
    """Whether ``--provider auto`` may pick it with these settings; None means never picked by auto."""
    auto_rank: int = 100
    """Among the ready ones, auto picks the lowest rank."""
