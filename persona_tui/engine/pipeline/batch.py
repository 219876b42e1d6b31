"""``generate()``: one request in, every moment of the work out as typed events.

The batch prepares once (estimates, names already used, the context stages),
then runs up to ``concurrency`` persona jobs at once, passing their events on
as they come, and ends with a summary. Providers only stream parts; everything
that is not specific to a model lives in this package.

Two ways to stop it: set the ``cancel`` event (streams are closed, then
:class:`Cancelled` and :class:`Finished` are yielded), or cancel the task
iterating it (streams are closed and no file is left half-written, but no
more events come). Either way the personas already saved stay saved.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from persona_tui.config import Settings
from persona_tui.engine.diversity import diversity_report
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.estimate import Estimate, EstimateBook, ProgressModel, offline_default
from persona_tui.engine.events import (
    Cancelled,
    DiversityReported,
    Event,
    Failed,
    Finished,
    PersonaReplaced,
    PlanDrawn,
    ServerNotice,
    Stage,
    StageFinished,
    StageSkipped,
    StageStarted,
    Summary,
)
from persona_tui.engine.pipeline.context import Context, context_stages
from persona_tui.engine.pipeline.job import JobOutcome, PersonaJob
from persona_tui.engine.pipeline.names import names_for
from persona_tui.engine.pipeline.rewrite import Rewrite, original_run, record_replacement
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.plan import draw_plan
from persona_tui.engine.providers.base import Provider
from persona_tui.models import GenerationRequest, PersonaRecord, RequestInfo, RunRecord
from persona_tui.storage import OrganizationStore, PersonaStore, RunStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Done:
    """A persona's job has finished (saved, failed, cancelled or never started)."""

    index: int
    outcome: JobOutcome


@dataclass(slots=True)
class _Tally:
    saved: list[PersonaRecord] = field(default_factory=list)
    failed: int = 0
    not_started: int = 0
    tokens: int = 0
    stopped: bool = False

    def add(self, outcome: JobOutcome) -> bool:
        """Count one finished job; True if it saved a record."""
        self.tokens += outcome.tokens
        if outcome.record is not None:
            self.saved.append(outcome.record)
            return True
        if outcome.cancelled:
            self.stopped = True
        else:
            self.failed += 1
            self.not_started += not outcome.started
        return False


async def generate(
    request: GenerationRequest,
    *,
    provider: Provider,
    store: PersonaStore,
    settings: Settings | None = None,
    estimates: EstimateBook | None = None,
    cancel: asyncio.Event | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
    existing: list[PersonaRecord] | None = None,
    organizations: OrganizationStore | None = None,
    runs: RunStore | None = None,
    rewrite: Rewrite | None = None,
) -> AsyncIterator[Event]:
    """Generate ``request.count`` personas, yielding every step as an event.

    With ``rewrite`` (and its :meth:`~Rewrite.request`), the personas it names are written
    again in their own slots instead, each replacing its old file once saved.

    The last event is always :class:`Finished`, unless the iterating task
    itself is cancelled.
    """
    settings = settings or Settings()
    estimates = estimates or EstimateBook(None)
    start = clock()
    yield StageStarted(Stage.PREPARING, f"{request.count} persona(s) with {provider.label}")
    problem = await store.problem()
    if problem is not None:  # found before any request: nothing is paid for that could not be kept
        yield Failed(FailureKind.SAVE, problem.message, problem.hint)
        yield Finished(Summary((), request.count, False, clock() - start, 0))
        return
    if provider.is_ai:
        estimate = estimates.get(provider.name, provider.model, Estimate())
    else:  # the offline generator's pace is a setting, not something to learn
        estimate = offline_default(settings.offline_tokens_per_second)
    lanes = min(settings.concurrency, request.count)
    run = Run(
        request=request,
        provider=provider,
        store=store,
        settings=settings,
        estimates=estimates,
        progress=ProgressModel(request.count, estimate, lanes),
        cancel=cancel,
        rng=rng or random.Random(),
        clock=clock,
        existing=existing,
        organizations=organizations,
        start=start,
        names=await names_for(request.description, existing, store),
        rewrite=rewrite,
    )
    if rewrite is not None:  # the new personas must read unlike the rest of their run
        for record in (*rewrite.keep, *rewrite.partners):
            run.similar.add(record.persona)
    yield StageFinished(Stage.PREPARING, clock() - start)
    async for item in context_stages(request, organizations, settings, cancel, clock):
        if isinstance(item, Context):
            run.org, run.sources = item.org, item.sources
        else:
            yield item
    if run.cancelled():
        yield Cancelled(run.elapsed(), ())
        yield Finished(Summary((), 0, True, run.elapsed(), 0))
        return
    async for event in _planning(run, runs):
        yield event
    yield run.progress_event(0)
    async for event in _batch(run, lanes):
        yield event


async def _planning(run: Run, runs: RunStore | None) -> AsyncIterator[Event]:
    """Draw the population plan (seeded: the setting's seed, else a fresh one kept with the run) and record the run."""
    if run.rewrite is not None:
        async for event in _replanning(run, run.rewrite, runs):
            yield event
        return
    plan = None
    if run.settings.population_plan:
        started = run.clock()
        count = run.request.count
        yield StageStarted(Stage.PLANNING, "1 slot" if count == 1 else f"{count} slots")
        # In a thread: the first plan of a process reads the world tables and builds their regexes (~55 ms).
        plan = run.plan = await asyncio.to_thread(draw_plan, run.request, run.org, seed=run.settings.seed)
    else:
        yield StageSkipped(Stage.PLANNING, "turned off (population_plan = false)")
    run.record = RunRecord(
        provider=run.provider.name,
        model=run.provider.model,
        request=RequestInfo(
            description=run.request.description,
            organization=run.org.name if run.org else None,
            organization_id=run.org.id if run.org else None,
            enrich=run.request.enrich,
            mix=None if run.request.mix.is_empty() else run.request.mix,
        ),
        count=run.request.count,
        plan=plan,
    )
    run.run_id = run.record.id
    run.runs = runs
    await _record(run)
    if plan is not None:
        yield StageFinished(Stage.PLANNING, run.clock() - started, note=f"seed {plan.seed}")
        yield PlanDrawn(plan, run.run_id)


async def _replanning(run: Run, rewrite: Rewrite, runs: RunStore | None) -> AsyncIterator[Event]:
    """For a rewrite: the replaced personas' own slots, and the record of the run they came from."""
    started = run.clock()
    yield StageStarted(Stage.PLANNING, "the slots of the personas to write again")
    plan = run.plan = await asyncio.to_thread(rewrite.plan, run.request, run.settings.seed)
    run.runs = runs
    run.record = await original_run(runs, rewrite)
    run.run_id = run.record.id if run.record is not None else rewrite.records[0].run_id or ""
    yield StageFinished(Stage.PLANNING, run.clock() - started, note=f"{len(plan.slots)} slot(s) kept")
    yield PlanDrawn(plan, run.run_id)


async def _replace(run: Run, index: int, new: PersonaRecord) -> AsyncIterator[Event]:
    """A rewritten persona is saved: its old file goes, and the run's record says so."""
    assert run.rewrite is not None
    old = run.rewrite.records[index]
    try:
        await run.store.delete(old.id)
    except StoreError as err:  # the new one is saved; the old one stays, and the user hears why
        yield ServerNotice(f"{old.persona.name} could not be removed: {err.message}", index, from_server=False)
        return
    run.replaced.add(index)
    if run.record is not None:
        record_replacement(run.record, old, new)
    yield PersonaReplaced(old, new, index)


def _final(run: Run, saved: list[PersonaRecord]) -> list[PersonaRecord]:
    """The personas the run has now: for a rewrite, the rest of the run and the new ones in place of the old."""
    if run.rewrite is None:
        return saved
    gone = {run.rewrite.records[i].id for i in run.replaced}
    rest = {r.id: r for r in (*run.rewrite.keep, *run.rewrite.partners, *run.rewrite.records) if r.id not in gone}
    return [*rest.values(), *saved]


async def _record(run: Run) -> None:
    """Write the run's record; a run that cannot be recorded still generates (each persona keeps its slot)."""
    if run.runs is None or run.record is None:
        return
    try:
        await run.runs.save(run.record)
    except StoreError as err:
        log.warning("%s", err.message)


async def _job(run: Run, index: int, lane: asyncio.Semaphore, queue: asyncio.Queue[Event | _Done]) -> None:
    """One persona in its lane; whatever happens, the batch hears that it is done."""
    outcome = JobOutcome()
    try:
        async with lane:
            if run.cancelled():
                outcome = JobOutcome(cancelled=True)
            elif run.halted:
                outcome = JobOutcome(started=False)
            else:
                unlike = run.rewrite.unlike(index) if run.rewrite is not None else ()
                async for item in PersonaJob(run, index, unlike).events():
                    if isinstance(item, JobOutcome):
                        outcome = item
                    else:
                        queue.put_nowait(item)
    except Exception as exc:  # a bug in one persona's path must be reported, not end the batch silently
        log.exception("persona %d failed unexpectedly", index)
        queue.put_nowait(
            Failed(
                FailureKind.INTERNAL,
                f"Something unexpected went wrong ({type(exc).__name__}).",
                "This is a bug in persona-tui; please report it with the steps that led here.",
                index,
            )
        )
    finally:
        queue.put_nowait(_Done(index, outcome))


async def _batch(run: Run, lanes: int) -> AsyncIterator[Event]:
    """Run the jobs, passing their events on as they come; then the summary."""
    count = run.request.count
    queue: asyncio.Queue[Event | _Done] = asyncio.Queue()
    lane = asyncio.Semaphore(lanes)
    tally = _Tally()
    workers = [asyncio.create_task(_job(run, index, lane, queue)) for index in range(count)]
    try:
        pending = count
        while pending:
            item = await queue.get()
            if not isinstance(item, _Done):
                yield item
                continue
            pending -= 1
            if not tally.add(item.outcome):
                run.progress.dropped(item.index)
            elif run.rewrite is not None and item.outcome.record is not None:
                async for event in _replace(run, item.index, item.outcome.record):
                    yield event
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    stopped = tally.stopped or run.cancelled()
    if stopped:
        yield Cancelled(run.elapsed(), tuple(tally.saved))
    try:
        await run.estimates.save()
    except OSError as exc:
        log.warning("could not save estimate history: %s", exc)
    report = None
    final = _final(run, tally.saved)
    if len(final) > 1:  # the diversity of one persona says nothing
        report = await asyncio.to_thread(diversity_report, final, threshold=run.settings.similarity_threshold)
        yield DiversityReported(report)
    if run.record is not None:
        if run.rewrite is None:
            run.record.persona_ids = [record.id for record in tally.saved]
        run.record.finished_at = datetime.now(UTC)
        await _record(run)
    summary = Summary(
        tuple(tally.saved),
        tally.failed,
        stopped,
        run.elapsed(),
        tally.tokens,
        tally.not_started,
        report=report,
        run_id=run.run_id,
    )
    yield Finished(summary)
