"""Refining one persona by an instruction ("more sceptical of AI, lives alone").

The persona (its JSON) and the instruction go to the model; the revision streams in through the same
attempt, watchdog and retry path as a new persona (stages, thinking, tokens, heartbeats, retries,
cancel), and is validated with the same model, with one correction. Then the front end is asked,
through ``decide``, whether to keep it (the app shows a diff, the CLI prints one and asks); a kept
revision replaces the persona's file atomically, the earlier version kept in the record's versions.
Nothing is saved before the user says so.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from persona_tui.config import Settings
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.estimate import Estimate, EstimateBook, ProgressModel, offline_default
from persona_tui.engine.events import (
    Cancelled,
    Event,
    Failed,
    Finished,
    PersonaSaved,
    Stage,
    StageFinished,
    StageStarted,
    Summary,
)
from persona_tui.engine.pipeline.job import SCHEMA, JobOutcome, PersonaJob
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.prompt import build_refine_messages
from persona_tui.engine.providers.base import PromptSpec, Provider
from persona_tui.models import GenerationRequest, Persona, PersonaRecord
from persona_tui.storage import PersonaStore, StoreError

INSTRUCTION_MAX = 1000

Decide = Callable[[PersonaRecord, PersonaRecord], Awaitable[bool]]
"""Shown the persona as it is and as revised (not saved yet): True keeps the revision."""


class RefineJob(PersonaJob):
    """A persona job whose prompt is the persona to revise and the instruction, not a description."""

    def __init__(self, run: Run, record: PersonaRecord, instruction: str) -> None:
        super().__init__(run, 0)
        self.record = record
        self.instruction = instruction

    def _spec(self, correction: list[dict[str, str]]) -> PromptSpec:
        messages = build_refine_messages(self.record.persona, self.instruction, self.record.request.description)
        return PromptSpec(
            messages=messages + correction,
            schema=SCHEMA,
            description=self.record.request.description,
            revise=self.record.persona,
            instruction=self.instruction,
        )


async def refine(
    record: PersonaRecord,
    instruction: str,
    *,
    provider: Provider,
    store: PersonaStore,
    decide: Decide,
    settings: Settings | None = None,
    estimates: EstimateBook | None = None,
    cancel: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Event]:
    """Revise ``record`` by ``instruction``, yielding every step as an event; the last is :class:`Finished`."""
    settings = settings or Settings()
    estimates = estimates or EstimateBook(None)
    start = clock()
    instruction = " ".join(instruction.split())[:INSTRUCTION_MAX]
    yield StageStarted(Stage.PREPARING, f"refining {record.persona.name} with {provider.label}")
    if not instruction:
        yield Failed(FailureKind.BAD_REQUEST, "The instruction is empty.", "Say what to change, e.g. 'older'.")
        yield Finished(Summary((), 1, False, clock() - start, 0))
        return
    if provider.is_ai:
        estimate = estimates.get(provider.name, provider.model, Estimate())
    else:
        estimate = offline_default(settings.offline_tokens_per_second)
    run = Run(
        request=GenerationRequest(description=record.request.description or "a persona", count=1),
        provider=provider,
        store=store,
        settings=settings,
        estimates=estimates,
        progress=ProgressModel(1, estimate, 1),
        cancel=cancel,
        rng=random.Random(),
        clock=clock,
        existing=[],
        start=start,
    )
    yield StageFinished(Stage.PREPARING, clock() - start)
    job = RefineJob(run, record, instruction)
    run.progress.start(0)
    yield run.progress_event(0)
    revised: Persona | None = None
    async for item in job._persona():
        if isinstance(item, Persona):
            revised = item
        elif isinstance(item, JobOutcome):
            break
        else:
            yield item
    if revised is None or run.cancelled():
        async for event in _ended(run, job, cancelled=run.cancelled() or job.answer.cancelled):
            yield event
        return
    new = record.with_change(
        revised,
        "refine",
        note=instruction,
        provider=provider.name,
        model=provider.model,
        generation_seconds=round(clock() - start, 3),
        tokens=job.tokens,
        usage=job.usage,
    )
    if not await decide(record, new):
        async for event in _ended(run, job, cancelled=True, discarded=True):
            yield event
        return
    async for event in _save(run, job, record, new):
        yield event


async def _ended(run: Run, job: RefineJob, *, cancelled: bool, discarded: bool = False) -> AsyncIterator[Event]:
    """A refinement that saved nothing: cancelled (or discarded), or failed (its failure already told)."""
    if cancelled:
        yield Cancelled(run.elapsed(), (), discarded=discarded)
    yield Finished(Summary((), 0 if cancelled else 1, cancelled, run.elapsed(), job.tokens))


async def _save(run: Run, job: RefineJob, old: PersonaRecord, new: PersonaRecord) -> AsyncIterator[Event]:
    started = run.clock()
    yield StageStarted(Stage.SAVING, str(run.store.root))
    try:
        path = await run.store.replace(new)
    except StoreError as err:
        yield Failed(FailureKind.SAVE, err.message, err.hint)
        yield Finished(Summary((), 1, False, run.elapsed(), job.tokens))
        return
    yield StageFinished(Stage.SAVING, run.clock() - started)
    answer = job.answer
    rate = answer.answer_tokens() / answer.stream_seconds if answer.stream_seconds > 0 else 0.0
    yield PersonaSaved(new, path, run.elapsed(), new.tokens, rate, usage=job.usage)
    yield Finished(Summary((new,), 0, False, run.elapsed(), job.tokens))
