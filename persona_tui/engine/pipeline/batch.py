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
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
from persona_tui.engine.pipeline.batch_api import Answered, run_batch_api
from persona_tui.engine.pipeline.context import Context, context_stages
from persona_tui.engine.pipeline.job import JobOutcome, PersonaJob
from persona_tui.engine.pipeline.names import names_for
from persona_tui.engine.pipeline.rewrite import Rewrite, original_run, record_replacement
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.plan import draw_plan
from persona_tui.engine.providers.base import Provider
from persona_tui.models import GenerationRequest, PersonaRecord, RequestInfo, RunRecord
from persona_tui.storage import IndexEntry, OrganizationStore, PersonaStore, RunStore, StoreError, process_start

log = logging.getLogger(__name__)

MANIFEST_EVERY = 0.5
"""Seconds between writes of a run's manifest (plus one at the start and one at the end)."""


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
    resume: RunRecord | None = None,
    batch_api: bool = False,
    batch_output: str | None = None,
) -> AsyncIterator[Event]:
    """Generate ``request.count`` personas, yielding every step as an event.

    With ``rewrite`` (and its :meth:`~Rewrite.request`), the personas it names are written
    again in their own slots instead, each replacing its old file once saved.

    With ``resume`` (a run's record, and ``request`` its :meth:`~RunRecord.to_request`), the run goes
    on where it stopped: same id and plan, only the slots with no persona in the store are made.

    With ``batch_api``, or on resume of a run whose manifest names a batch, the personas are made
    through the server's Batch API (:mod:`.batch_api`); with ``batch_output`` (and ``resume``), the
    answers are read from that output file instead.

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
    names = await names_for(request.description, existing, store)
    done = already_saved(resume, names.entries) if resume is not None else {}
    todo = [index for index in range(request.count) if index not in done]
    if not todo:  # a run killed after its last save, before its manifest said so: now it does
        if resume is not None:
            await _close(resume, done, runs)
        yield StageFinished(Stage.PREPARING, clock() - start, note="nothing left to make")
        yield Finished(Summary((), 0, False, clock() - start, 0, run_id=resume.id if resume else ""))
        return
    lanes = min(settings.concurrency, len(todo))
    run = Run(
        request=request,
        provider=provider,
        store=store,
        settings=settings,
        estimates=estimates,
        progress=ProgressModel(len(todo), estimate, lanes),
        cancel=cancel,
        rng=rng or random.Random(),
        clock=clock,
        existing=existing,
        organizations=organizations,
        start=start,
        names=names,
        rewrite=rewrite,
        todo=todo,
    )
    run.done = done
    run.batch_output = batch_output
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
    async for event in _planning(run, runs, resume):
        yield event
    async for event in _work(run, lanes, batch_api=batch_api or _batch_pending(resume)):
        yield event


def _batch_pending(resume: RunRecord | None) -> bool:
    return resume is not None and resume.batch is not None and resume.batch.pending


async def _work(run: Run, lanes: int, *, batch_api: bool) -> AsyncIterator[Event]:
    """The personas: streamed ``lanes`` at a time, or through a Batch API."""
    if batch_api or run.batch_output is not None:
        async for event in _via_batch_api(run):
            yield event
        return
    yield run.progress_event(run.todo[0])
    async for event in _batch(run, lanes):
        yield event


async def _via_batch_api(run: Run) -> AsyncIterator[Event]:
    """The personas through a Batch API: its events passed on, each persona's end noted; then the summary."""
    tally = _Tally()
    async for item in run_batch_api(run):
        if isinstance(item, Answered):
            _note(run, item.index, item.outcome)
            tally.add(item.outcome)
        else:
            yield _seen(run, item)
    async for event in _wrap_up(run, tally):
        yield event


async def _close(record: RunRecord, done: dict[int, str], runs: RunStore | None) -> None:
    """Record a resumed run whose every persona turned out to be saved already as finished."""
    if runs is None or (record.complete and record.finished_at is not None):
        return
    record.saved = dict(sorted(done.items()))
    record.persona_ids = list(record.saved.values())
    record.failed, record.in_flight, record.stopped, record.pid = {}, [], False, None
    record.finished_at = datetime.now(UTC)
    try:
        await runs.save(record)
    except StoreError as err:
        log.warning("%s", err.message)


def already_saved(resume: RunRecord, entries: list[IndexEntry]) -> dict[int, str]:
    """Of a run being resumed: persona index -> id, for each persona of the run still in the store.

    The store is the truth (the manifest is written at most twice a second, so a killed run may have
    saved a few more than it says); a persona without a slot (no plan) fills the first index free.
    """
    present = {entry.id: entry for entry in entries if entry.run_id == resume.id}
    done: dict[int, str] = {}
    loose: list[str] = []
    for entry in present.values():
        if 0 <= entry.slot < resume.count and entry.slot not in done:
            done[entry.slot] = entry.id
        else:
            loose.append(entry.id)
    for index, persona_id in resume.saved.items():  # the manifest places the ones without a slot
        if persona_id in loose and index not in done:
            done[index] = persona_id
            loose.remove(persona_id)
    free = (index for index in range(resume.count) if index not in done)
    for persona_id, index in zip(loose, free, strict=False):
        done[index] = persona_id
    return done


async def _planning(run: Run, runs: RunStore | None, resume: RunRecord | None) -> AsyncIterator[Event]:
    """Draw the population plan (seeded: the setting's seed, else a fresh one kept with the run) and record the run."""
    if run.rewrite is not None:
        async for event in _replanning(run, run.rewrite, runs):
            yield event
        return
    if resume is not None:
        async for event in _resuming(run, runs, resume):
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
        seed=run.settings.seed,
        pid=os.getpid(),
        pid_start=process_start(os.getpid()),
    )
    run.run_id = run.record.id
    run.runs = runs
    await _record(run)
    if plan is not None:
        yield StageFinished(Stage.PLANNING, run.clock() - started, note=f"seed {plan.seed}")
        yield PlanDrawn(plan, run.run_id)


async def _resuming(run: Run, runs: RunStore | None, resume: RunRecord) -> AsyncIterator[Event]:
    """Of a resumed run: its own plan and record, marked as running again."""
    yield StageStarted(Stage.PLANNING, f"resuming run {resume.id[:8]}")
    run.plan = resume.plan
    run.record = resume
    run.run_id = resume.id
    run.runs = runs
    resume.saved = dict(sorted(run.done.items()))
    resume.failed, resume.in_flight, resume.stopped = {}, [], False
    resume.finished_at, resume.pid, resume.pid_start = None, os.getpid(), process_start(os.getpid())
    await _record(run)
    # What this session writes must read unlike what the run already has, and the report covers the run.
    run.earlier = await run.store.load_ids(run.done.values())
    for record in sorted(run.earlier, key=lambda r: r.created_at)[-run.similar.limit :]:
        run.similar.add(record.persona)
    note = f"{len(run.done)} of {resume.count} already saved, {len(run.todo)} to make"
    yield StageFinished(Stage.PLANNING, run.clock() - run.start, note=note)
    if resume.plan is not None:
        yield PlanDrawn(resume.plan, resume.id)


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
    if run.rewrite.in_place:  # a regeneration: the new persona took the old one's id and file when it was saved
        run.replaced.add(index)
        return
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
        return [*run.earlier, *saved]
    gone = {run.rewrite.records[i].id for i in run.replaced}
    rest = {r.id: r for r in (*run.rewrite.keep, *run.rewrite.partners, *run.rewrite.records) if r.id not in gone}
    return [*rest.values(), *saved]


async def _record(run: Run) -> None:
    """Write the run's record; a run that cannot be recorded still generates (each persona keeps its slot)."""
    if run.runs is None or run.record is None:
        return
    snapshot = run.record.model_copy(
        update={
            "saved": dict(run.record.saved),
            "failed": dict(run.record.failed),
            "in_flight": sorted(run.in_flight),
            "persona_ids": list(run.record.persona_ids),
            "replaced": list(run.record.replaced),
        }
    )
    try:
        await run.runs.save(snapshot)
    except StoreError as err:
        log.warning("%s", err.message)


async def _manifest_writer(run: Run) -> None:
    """Write the run's manifest after a persona is saved or given up, at most every ``MANIFEST_EVERY`` seconds."""
    while True:
        await run.dirty.wait()
        run.dirty.clear()
        await _record(run)
        await asyncio.sleep(MANIFEST_EVERY)


def _seen(run: Run, event: Event) -> Event:
    """An event passing through: a persona's failure is kept for its line in the manifest."""
    if isinstance(event, Failed) and event.index is not None:
        run.failures[event.index] = event.kind.value
    return event


def _note(run: Run, index: int, outcome: JobOutcome) -> None:
    """One persona's end, in the run's manifest (which is written soon after)."""
    run.in_flight.discard(index)
    record = run.record
    if record is None or run.rewrite is not None:
        return
    if outcome.record is not None:
        record.saved[index] = outcome.record.id
    elif not outcome.cancelled:
        record.failed[index] = run.failures.get(index, "not started" if not outcome.started else "failed")
    run.dirty.set()


async def _lane(run: Run, indexes: Iterator[int], queue: asyncio.Queue[Event | _Done]) -> None:
    """One of the batch's ``lanes`` workers: takes the next persona left until there is none."""
    for index in indexes:
        run.in_flight.add(index)
        await _job(run, index, queue)


async def _job(run: Run, index: int, queue: asyncio.Queue[Event | _Done]) -> None:
    """One persona; whatever happens, the batch hears that it is done."""
    outcome = JobOutcome()
    try:
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
    queue: asyncio.Queue[Event | _Done] = asyncio.Queue()
    tally = _Tally()
    indexes = iter(run.todo)
    workers = [asyncio.create_task(_lane(run, indexes, queue)) for _ in range(lanes)]
    writer = asyncio.create_task(_manifest_writer(run))
    try:
        pending = len(run.todo)
        while pending:
            item = await queue.get()
            if not isinstance(item, _Done):
                yield _seen(run, item)
                continue
            pending -= 1
            _note(run, item.index, item.outcome)
            if not tally.add(item.outcome):
                run.progress.dropped(item.index)
            elif run.rewrite is not None and item.outcome.record is not None:
                async for event in _replace(run, item.index, item.outcome.record):
                    yield event
    finally:
        for task in (*workers, writer):
            task.cancel()
        await asyncio.gather(*workers, writer, return_exceptions=True)
    async for event in _wrap_up(run, tally):
        yield event


async def _wrap_up(run: Run, tally: _Tally) -> AsyncIterator[Event]:
    """After the last persona: what was cancelled, the estimates, the diversity report, the manifest, the summary."""
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
            run.record.persona_ids = [run.record.saved[i] for i in sorted(run.record.saved)]
            run.record.stopped = stopped
            run.record.pid = None
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
        already=len(run.done),
    )
    yield Finished(summary)
