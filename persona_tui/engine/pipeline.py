"""``generate()``: one request in, every moment of the work out as typed events.

The pipeline owns everything that is not specific to a model: stages and their
timing, the clock-driven heartbeat and slow warning, the first-token, idle and
total timeouts, retries with backoff, partial parses, progress and ETA, the
save, and cancellation. Providers only stream text.

Two ways to stop it: set the ``cancel`` event (the pipeline closes the stream,
yields :class:`Cancelled` and :class:`Finished`), or cancel the task iterating
it (the stream is closed and no file is left half-written, but no more events
come). Either way the personas already saved stay saved.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from persona_tui.config import Settings
from persona_tui.engine.enrich import EnrichmentSkipped, build_query, search_sources
from persona_tui.engine.errors import GenerationError
from persona_tui.engine.estimate import Estimate, EstimateBook, ProgressModel, offline_default
from persona_tui.engine.events import (
    Cancelled,
    Event,
    Failed,
    Finished,
    FirstToken,
    Heartbeat,
    PartialPersona,
    PersonaSaved,
    Progress,
    RequestSent,
    Retrying,
    SlowWarning,
    Stage,
    StageFinished,
    StageSkipped,
    StageStarted,
    Summary,
    TokenDelta,
)
from persona_tui.engine.models import (
    GenerationRequest,
    Organization,
    Persona,
    PersonaRecord,
    RequestInfo,
    Source,
    strict_json_schema,
)
from persona_tui.engine.parsing import parse_partial, parse_persona
from persona_tui.engine.prompt import build_messages
from persona_tui.engine.providers.base import PromptSpec, Provider
from persona_tui.storage import OrganizationStore, PersonaStore, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

PARTIAL_INTERVAL = 0.1
"""Seconds between partial parses of the streaming answer."""
READ_SLICE = 0.004
"""Longest time (seconds) the stream reader keeps the event loop while data keeps arriving."""
PROGRESS_INTERVAL = 0.05
RETRY_AFTER_MAX = 120.0
BATCH_FATAL = frozenset({"auth", "forbidden", "not_found", "quota", "bad_request"})
"""Failures every persona would meet: the ones not started yet are not started."""
NAME_ROUNDS = 3
"""How often a persona whose name is already taken is asked for again."""
STALL_RETRIES = 1
"""A server that went silent is tried once more, not max_attempts times: a dead one must end in about a minute."""
MAX_ANSWER_CHARS = 40_000
"""A persona is a few thousand characters; an answer past this is a runaway, stopped and reported."""
GATE_STAGGER = 0.25
"""Seconds between streams leaving a closed rate-limit gate."""

SCHEMA = strict_json_schema(Persona)


@dataclass(slots=True)
class _Attempt:
    text: str = ""
    tokens: int = 0
    first_token: float | None = None
    stream_seconds: float = 0.0
    cancelled: bool = False
    failed: bool = False
    chars: int = 0

    def reset(self) -> None:
        self.text, self.tokens, self.first_token, self.stream_seconds, self.chars = "", 0, None, 0.0, 0
        self.cancelled = self.failed = False


@dataclass(slots=True)
class _Outcome:
    record: PersonaRecord | None = None
    cancelled: bool = False
    skipped: bool = False
    tokens: int = 0
    """Tokens received for this persona, over every attempt."""


@dataclass(slots=True)
class _Done:
    """A persona's worker has finished (saved, failed, cancelled or skipped)."""

    index: int
    outcome: _Outcome


@dataclass(slots=True)
class _Run:
    request: GenerationRequest
    provider: Provider
    store: PersonaStore
    settings: Settings
    estimates: EstimateBook
    cancel: asyncio.Event | None
    rng: random.Random
    clock: Callable[[], float] = time.monotonic
    """Measures every duration; a test may pass a fake one (timeouts still wait in real time)."""
    existing: list[PersonaRecord] | None = None
    """Personas already saved; None means read them from the store."""
    organizations: OrganizationStore | None = None
    org: Organization | None = None
    sources: list[Source] = field(default_factory=list)
    start: float = 0.0
    people: list[str] = field(default_factory=list)
    """One line per persona of this request already made, told to the model so it varies them."""
    taken: set[str] = field(default_factory=set)
    """Names (case-folded) no new persona may have."""
    halted: bool = False
    """A fault that will hit every persona (a rejected key, a full disk): start no more."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """Failures already told, so parallel streams hitting the same fault say it once."""
    gate_until: float = 0.0
    gate_slots: int = 0
    progress: ProgressModel | None = None

    def elapsed(self) -> float:
        return self.clock() - self.start

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _progress_event(self, index: int) -> Progress:
        assert self.progress is not None
        p = self.progress
        return Progress(p.fraction, self.elapsed(), p.eta(), p.persona_fraction(index), index)

    async def events(self) -> AsyncIterator[Event]:
        self.start = self.clock()
        count = self.request.count
        lanes = min(self.settings.concurrency, count)

        t = self.clock()
        yield StageStarted(Stage.PREPARING, f"{count} persona(s) with {self.provider.label}")
        if self.provider.is_ai:
            estimate = self.estimates.get(self.provider.name, self.provider.model, Estimate())
        else:  # the offline generator's pace is a setting, not something to learn
            estimate = offline_default(self.settings.offline_tokens_per_second)
        self.progress = ProgressModel(count, estimate, lanes)
        await self._learn_existing()
        yield StageFinished(Stage.PREPARING, self.clock() - t)
        async for event in self._context():
            yield event
        if self.cancelled():
            yield Cancelled(self.elapsed(), ())
            yield Finished(Summary((), 0, True, self.elapsed(), 0))
            return
        yield self._progress_event(0)

        queue: asyncio.Queue[Event | _Done] = asyncio.Queue()
        lane = asyncio.Semaphore(lanes)

        async def work(index: int) -> None:
            outcome = _Outcome()
            try:
                async with lane:
                    if self.cancelled():
                        outcome.cancelled = True
                    elif self.halted:
                        outcome.skipped = True
                    else:
                        async for event in self._one(index, outcome):
                            queue.put_nowait(event)
            except Exception as exc:  # a bug in one persona's path must be reported, not end the batch silently
                log.exception("persona %d failed unexpectedly", index)
                queue.put_nowait(
                    Failed(
                        "internal",
                        f"Something unexpected went wrong ({type(exc).__name__}).",
                        "This is a bug in persona-tui; please report it with the steps that led here.",
                        index,
                    )
                )
            finally:
                queue.put_nowait(_Done(index, outcome))

        saved: list[PersonaRecord] = []
        failed = tokens = 0
        stopped = False
        workers = [asyncio.create_task(work(index)) for index in range(count)]
        try:
            pending = count
            while pending:
                item = await queue.get()
                if not isinstance(item, _Done):
                    yield item
                    continue
                pending -= 1
                outcome = item.outcome
                tokens += outcome.tokens
                if outcome.record is not None:
                    saved.append(outcome.record)
                    continue
                self.progress.dropped(item.index)
                if outcome.cancelled:
                    stopped = True
                else:
                    failed += 1
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

        stopped = stopped or self.cancelled()
        if stopped:
            yield Cancelled(self.elapsed(), tuple(saved))
        try:
            await self.estimates.save()
        except OSError as exc:
            log.warning("could not save estimate history: %s", exc)
        yield Finished(Summary(tuple(saved), failed, stopped, self.elapsed(), tokens))

    async def _context(self) -> AsyncIterator[Event]:
        """The organization's context and the web's, each a stage that may be skipped but never fails the run."""
        name = self.request.organization
        if not name:
            yield StageSkipped(Stage.ORGANIZATION, "no organization chosen")
        elif self.organizations is None:
            yield StageSkipped(Stage.ORGANIZATION, "no organization folder")
        else:
            t = self.clock()
            yield StageStarted(Stage.ORGANIZATION, name)
            try:
                self.org = await self._unless_cancelled(self.organizations.get(name))
            except StoreError as err:
                yield StageSkipped(Stage.ORGANIZATION, err.message)
            else:
                if self.org is not None:
                    yield StageFinished(Stage.ORGANIZATION, self.clock() - t, note=self.org.name)
        if self.cancelled():
            return
        if not self.request.enrich:
            yield StageSkipped(Stage.ENRICHING, "not requested")
            return
        query = build_query(self.request, self.org)
        t = self.clock()
        yield StageStarted(Stage.ENRICHING, f"Searching the web for: {query}")
        settings = self.settings
        try:
            found = await self._unless_cancelled(
                search_sources(
                    query,
                    api_key=settings.exa_api_key,
                    base_url=settings.exa_base_url,
                    timeout=settings.enrich_timeout,
                    results=settings.enrich_results,
                )
            )
        except EnrichmentSkipped as skip:
            yield StageSkipped(Stage.ENRICHING, skip.reason)
        else:
            if found is not None:
                self.sources = found
                yield StageFinished(Stage.ENRICHING, self.clock() - t, note=f"{len(found)} source(s)")

    async def _unless_cancelled(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Await ``work`` unless the user cancels first (then it is cancelled and None returned)."""
        task = asyncio.ensure_future(work)
        if self.cancel is None:
            return await task
        stop = asyncio.ensure_future(self.cancel.wait())
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

    async def _learn_existing(self) -> None:
        """Names of personas already made for this request are off limits, and the model hears of them."""
        records = self.existing
        if records is None:
            try:
                records = (await self.store.load_all()).records
            except StoreError as exc:
                log.warning("could not read existing personas: %s", exc.message)
                records = []
        wanted = self.request.description.casefold()
        for record in records:
            if record.request.description.casefold() == wanted:
                self._take(record.persona)

    def _take(self, persona: Persona) -> None:
        self.taken.add(persona.name.casefold())
        self.people.append(f"{persona.name} ({persona.age}, {persona.occupation}, {persona.location})")

    async def _one(self, index: int, outcome: _Outcome) -> AsyncIterator[Event]:
        """One persona, from prompt to file; regenerated when its name is already taken."""
        assert self.progress is not None
        persona_start = self.clock()
        self.progress.start(index)
        persona: Persona | None = None
        attempt = _Attempt()
        correction: list[dict[str, str]] = []
        """After an answer that did not fit: that answer and what was wrong, sent back once."""
        repaired = False
        round_ = 0
        while round_ < NAME_ROUNDS:
            round_ += 1
            t = self.clock()
            yield StageStarted(Stage.PROMPT, index=index)
            spec = PromptSpec(
                messages=build_messages(self.request, index, self.people, self.org, self.sources) + correction,
                schema=SCHEMA,
                description=self.request.description,
                index=index,
                avoid_names=tuple(sorted(self.taken)),
            )
            yield StageFinished(Stage.PROMPT, self.clock() - t, index)

            attempt = _Attempt()
            async for event in self._attempts(spec, index, attempt, outcome, persona_start):
                yield event
            if outcome.cancelled or attempt.failed:
                return

            t = self.clock()
            yield StageStarted(Stage.VALIDATING, f"{attempt.tokens} tokens", index)
            self.progress.validating(index)
            yield self._progress_event(index)
            try:
                persona = parse_persona(attempt.text)
            except GenerationError as err:
                if repaired or not attempt.text.strip():
                    yield Failed(err.kind, err.message, err.hint, index)
                    return
                repaired = True  # one second chance, with the validation error given back to the model
                round_ -= 1
                correction = [
                    {"role": "assistant", "content": attempt.text[:MAX_ANSWER_CHARS]},
                    {"role": "user", "content": f"{err.message} Reply again with only the corrected JSON object."},
                ]
                yield Retrying(2, 2, 0.0, f"{err.message} Asking the model to correct it.", index)
                continue
            correction = []
            yield StageFinished(Stage.VALIDATING, self.clock() - t, index)
            if persona.name.casefold() not in self.taken:
                break
            if round_ == NAME_ROUNDS:
                yield Failed(
                    "duplicate",
                    f"The model kept repeating a name already used ({persona.name}).",
                    "Describe the people more specifically, or ask for fewer at a time.",
                    index,
                )
                return
            reason = f"{persona.name} is already taken; asking for someone else."
            yield Retrying(round_ + 1, NAME_ROUNDS, 0.0, reason, index)
            persona = None
        assert persona is not None
        self._take(persona)  # claimed before the save, so a parallel stream cannot take it too
        if self.cancelled():
            outcome.cancelled = True
            return

        t = self.clock()
        yield StageStarted(Stage.SAVING, str(self.store.root), index)
        self.progress.saving(index)
        seconds = self.clock() - persona_start
        record = PersonaRecord(
            provider=self.provider.name,
            model=self.provider.model,
            request=RequestInfo(
                description=self.request.description,
                organization=self.org.name if self.org else None,
                organization_id=self.org.id if self.org else None,
                enrich=self.request.enrich,
            ),
            generation_seconds=round(seconds, 3),
            tokens=outcome.tokens,
            persona=persona,
            sources=list(self.sources),
        )
        try:
            path = await self.store.save(record)
        except StoreError as err:
            yield Failed("save", err.message, err.hint, index)
            self.halted = True
            return
        yield StageFinished(Stage.SAVING, self.clock() - t, index)

        self.progress.saved(index)
        rate = attempt.tokens / attempt.stream_seconds if attempt.stream_seconds > 0 else 0.0
        if self.provider.is_ai and attempt.first_token is not None and rate > 0:
            self.estimates.learn(self.provider.name, self.provider.model, attempt.tokens, attempt.first_token, rate)
        outcome.record = record
        yield PersonaSaved(record, path, seconds, outcome.tokens, rate, index)
        yield self._progress_event(index)

    async def _attempts(
        self, spec: PromptSpec, index: int, attempt: _Attempt, outcome: _Outcome, persona_start: float
    ) -> AsyncIterator[Event]:
        """Stream the answer, retrying faults worth retrying; fills ``attempt``."""
        max_attempts = self.settings.max_attempts
        stalls = 0
        for number in range(1, max_attempts + 1):
            attempt.reset()
            if await self._through_gate():
                outcome.cancelled = True
                return
            try:
                async for event in self._stream(spec, index, number, attempt, persona_start):
                    yield event
            except GenerationError as err:
                outcome.tokens += attempt.tokens
                stalls += err.kind == "stalled"
                worth_it = err.retryable and (err.kind != "stalled" or stalls <= STALL_RETRIES)
                if worth_it and number < max_attempts and not self.halted:
                    delay = self._backoff(number, err.retry_after)
                    if err.kind == "rate_limited":
                        self._close_gate(delay)
                        delay = self._claim_gate()
                    yield Retrying(number + 1, max_attempts, delay, err.message, index)
                    if await self._pause(delay):
                        outcome.cancelled = True
                        return
                    continue
                attempt.failed = True
                if (err.kind, err.message) not in self.reported:  # one rejected key is said once, not per stream
                    self.reported.add((err.kind, err.message))
                    yield Failed(err.kind, err.message, err.hint, index)
                if err.kind in BATCH_FATAL:
                    self.halted = True
                return
            outcome.tokens += attempt.tokens
            if attempt.cancelled:
                outcome.cancelled = True
            return

    def _close_gate(self, delay: float) -> None:
        """A rate limit slows the whole batch: no stream sends until the server's wait is over."""
        now = self.clock()
        if self.gate_until <= now:
            self.gate_slots = 0  # a new closing: the queue starts again
        self.gate_until = max(self.gate_until, now + delay)

    def _claim_gate(self) -> float:
        """Seconds this stream must wait for the gate: its own slot, so streams leave one by one."""
        wait = self.gate_until - self.clock()
        if wait <= 0:
            return 0.0
        self.gate_slots += 1
        return wait + (self.gate_slots - 1) * GATE_STAGGER

    async def _through_gate(self) -> bool:
        """Wait while the rate-limit gate is closed; True if the user cancelled meanwhile."""
        wait = self._claim_gate()
        if wait <= 0:
            return self.cancelled()
        return await self._pause(wait)

    async def _stream(
        self, spec: PromptSpec, index: int, number: int, attempt: _Attempt, persona_start: float
    ) -> AsyncIterator[Event]:
        """One request to the provider; fills ``attempt`` or raises :class:`GenerationError`."""
        assert self.progress is not None
        settings = self.settings
        estimate = self.progress.estimate
        max_attempts = settings.max_attempts
        suffix = f" (attempt {number} of {max_attempts})" if number > 1 else ""
        yield StageStarted(Stage.CALLING, f"{self.provider.label}{suffix}", index)
        sent = last_token = self.clock()
        yield RequestSent(self.provider.model, self.provider.endpoint, number, estimate.first_token, index)

        inbox: asyncio.Queue[object] = asyncio.Queue()
        reader = asyncio.create_task(_read_into(self.provider.stream(spec), inbox))
        watcher = asyncio.create_task(_signal_cancel(self.cancel, inbox)) if self.cancel is not None else None
        parts: list[str] = []
        first: float | None = None
        next_heartbeat = sent + settings.heartbeat_seconds
        slow_warned = False
        last_partial = last_progress = 0.0
        finished = False
        try:
            while not finished:
                arrived: list[object] = []
                if inbox.empty():
                    now = self.clock()
                    idle_limit = settings.first_token_timeout if first is None else settings.idle_timeout
                    deadline = min(next_heartbeat, last_token + idle_limit, sent + settings.total_timeout)
                    if not slow_warned:
                        deadline = min(deadline, persona_start + settings.slow_seconds)
                    try:
                        async with asyncio.timeout(max(deadline - now, 0.0)):
                            arrived.append(await inbox.get())  # cancel-safe: a timed-out get takes nothing
                    except TimeoutError:
                        now = self.clock()
                        if now - sent >= settings.total_timeout:
                            raise GenerationError(
                                "timeout",
                                f"No complete answer from {self.provider.endpoint} "
                                f"after {settings.total_timeout:.0f} s.",
                                "The server may be overloaded; try again later or raise total_timeout.",
                            ) from None
                        if now - last_token >= idle_limit:
                            what = "the first token" if first is None else "the next token"
                            raise GenerationError(
                                "stalled",
                                f"{self.provider.endpoint} sent nothing for {idle_limit:.0f} s "
                                f"while waiting for {what}.",
                                "The server may be overloaded; try again, or raise the timeouts.",
                                retryable=True,
                            ) from None
                        if not slow_warned and now - persona_start >= settings.slow_seconds:
                            slow_warned = True
                            yield SlowWarning(now - persona_start, settings.slow_seconds, index)
                        if now >= next_heartbeat:
                            next_heartbeat += settings.heartbeat_seconds
                            yield Heartbeat(self.elapsed(), now - last_token, index)
                            if first is None:
                                self.progress.waiting(index, now - sent)
                                yield self._progress_event(index)
                        continue

                # Everything that has arrived is taken at once: a fast stream costs one event per
                # batch, not one per token.
                batch: list[str] = []
                error: BaseException | None = None
                while not inbox.empty():
                    arrived.append(inbox.get_nowait())
                for item in arrived:
                    if item is _CANCELLED:
                        attempt.cancelled = True
                        return
                    if item is _END:
                        finished = True
                        break
                    if isinstance(item, BaseException):
                        error = item  # raised once the text that came before it is shown
                        break
                    batch.append(item)  # type: ignore[arg-type]
                if not batch:
                    if error is not None:
                        raise error
                    continue
                now = self.clock()
                if first is None:
                    first = now
                    attempt.first_token = now - sent
                    yield FirstToken(now - sent, index)
                    yield StageFinished(Stage.CALLING, now - sent, index)
                    yield StageStarted(Stage.STREAMING, self.provider.label, index)
                text = "".join(batch)
                parts.append(text)
                attempt.tokens += len(batch)
                attempt.chars += len(text)
                if attempt.chars > MAX_ANSWER_CHARS:
                    raise GenerationError(
                        "too_large",
                        f"The model's answer passed {MAX_ANSWER_CHARS:,} characters without finishing a persona.",
                        "Try again, or use a model that supports structured outputs.",
                    )
                last_token = now
                next_heartbeat = now + settings.heartbeat_seconds
                rate = attempt.tokens / (now - first) if now > first else 0.0
                yield TokenDelta(text, attempt.tokens, rate, index)
                if now - last_partial >= PARTIAL_INTERVAL:
                    last_partial = now
                    fields = parse_partial("".join(parts))
                    if fields:
                        yield PartialPersona(fields, index)
                if now - last_progress >= PROGRESS_INTERVAL:
                    last_progress = now
                    self.progress.streamed(index, attempt.tokens, rate)
                    yield self._progress_event(index)
                if error is not None:
                    raise error
        finally:
            for task in (reader, watcher):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.wait({t for t in (reader, watcher) if t is not None})

        now = self.clock()
        attempt.text = "".join(parts)
        if first is None:
            yield StageFinished(Stage.CALLING, now - sent, index)
        else:
            attempt.stream_seconds = now - first
            fields = parse_partial(attempt.text)
            if fields:
                yield PartialPersona(fields, index)
            yield StageFinished(Stage.STREAMING, now - first, index)

    def _backoff(self, failed_attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_MAX)
        base = min(self.settings.retry_max_delay, self.settings.retry_base_delay * 2 ** (failed_attempt - 1))
        return base * (0.5 + self.rng.random() / 2)

    async def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds; True if the user cancelled meanwhile."""
        if self.cancel is None:
            await asyncio.sleep(delay)
            return False
        try:
            await asyncio.wait_for(self.cancel.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True


_END = object()
_CANCELLED = object()


async def _read_into(stream: AsyncIterator[str], inbox: asyncio.Queue[object]) -> None:
    """Move the provider's text into ``inbox``, then an end mark or the error; close the stream on the way out.

    When the network has buffered a burst, the client parses chunk after chunk
    without ever waiting, so nothing else on the event loop runs: a screen that
    fell behind once would fall further behind with every larger burst. The
    reader steps aside every :data:`READ_SLICE` seconds.
    """
    try:
        slice_end = time.perf_counter() + READ_SLICE
        async for text in stream:
            inbox.put_nowait(text)
            if time.perf_counter() >= slice_end:
                await asyncio.sleep(0)
                slice_end = time.perf_counter() + READ_SLICE
        inbox.put_nowait(_END)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # handed to the pipeline, which explains or re-raises it
        inbox.put_nowait(exc)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def _signal_cancel(cancel: asyncio.Event, inbox: asyncio.Queue[object]) -> None:
    await cancel.wait()
    inbox.put_nowait(_CANCELLED)


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
) -> AsyncIterator[Event]:
    """Generate ``request.count`` personas, yielding every step as an event.

    The last event is always :class:`Finished`, unless the iterating task
    itself is cancelled.
    """
    run = _Run(
        request=request,
        provider=provider,
        store=store,
        settings=settings or Settings(),
        estimates=estimates or EstimateBook(None),
        cancel=cancel,
        rng=rng or random.Random(),
        clock=clock,
        existing=existing,
        organizations=organizations,
    )
    async for event in run.events():
        yield event
