"""The context stages before any persona: the organization it is for, and the web's real-world detail.

Each is a stage with its own timing that may be skipped, and says why, but
never fails the run: a persona without context is still a persona.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from persona_tui.config import Settings
from persona_tui.engine.enrich import EnrichmentSkipped, build_query, search_sources
from persona_tui.engine.events import Event, Stage, StageFinished, StageSkipped, StageStarted
from persona_tui.models import GenerationRequest, Organization, Source
from persona_tui.storage import OrganizationStore, StoreError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Context:
    """What the context stages found."""

    org: Organization | None = None
    sources: list[Source] = field(default_factory=list)


async def unless_cancelled(work: Coroutine[Any, Any, T], cancel: asyncio.Event | None) -> T | None:
    """Await ``work`` unless the user cancels first (then it is cancelled and None returned)."""
    task = asyncio.ensure_future(work)
    if cancel is None:
        return await task
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled():
        return None
    return task.result()


async def context_stages(
    request: GenerationRequest,
    organizations: OrganizationStore | None,
    settings: Settings,
    cancel: asyncio.Event | None,
    clock: Callable[[], float],
) -> AsyncIterator[Event | Context]:
    """Both stages; the last item is the :class:`Context` found."""
    org: Organization | None = None
    async for item in _organization(request.organization, organizations, cancel, clock):
        if isinstance(item, Organization):
            org = item
        else:
            yield item
    if cancel is not None and cancel.is_set():
        yield Context(org)
        return
    sources: list[Source] = []
    async for found in _enrichment(request, org, settings, cancel, clock):
        if isinstance(found, list):
            sources = found
        else:
            yield found
    yield Context(org, sources)


async def _organization(
    name: str | None, organizations: OrganizationStore | None, cancel: asyncio.Event | None, clock: Callable[[], float]
) -> AsyncIterator[Event | Organization]:
    if not name:
        yield StageSkipped(Stage.ORGANIZATION, "no organization chosen")
        return
    if organizations is None:
        yield StageSkipped(Stage.ORGANIZATION, "no organization folder")
        return
    started = clock()
    yield StageStarted(Stage.ORGANIZATION, name)
    try:
        org = await unless_cancelled(organizations.get(name), cancel)
    except StoreError as err:
        yield StageSkipped(Stage.ORGANIZATION, err.message)
        return
    if org is not None:
        yield StageFinished(Stage.ORGANIZATION, clock() - started, note=org.name)
        yield org


async def _enrichment(
    request: GenerationRequest,
    org: Organization | None,
    settings: Settings,
    cancel: asyncio.Event | None,
    clock: Callable[[], float],
) -> AsyncIterator[Event | list[Source]]:
    if not request.enrich:
        yield StageSkipped(Stage.ENRICHING, "not requested")
        return
    query = build_query(request, org)
    started = clock()
    yield StageStarted(Stage.ENRICHING, f"Searching the web for: {query}")
    search = search_sources(
        query,
        api_key=settings.exa_api_key,
        base_url=settings.exa_base_url,
        timeout=settings.enrich_timeout,
        results=settings.enrich_results,
    )
    try:
        found = await unless_cancelled(search, cancel)
    except EnrichmentSkipped as skip:
        yield StageSkipped(Stage.ENRICHING, skip.reason)
        return
    if found is not None:
        yield StageFinished(Stage.ENRICHING, clock() - started, note=f"{len(found)} source(s)")
        yield found
