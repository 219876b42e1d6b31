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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from persona_tui.config import Settings
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
from persona_tui.engine.models import GenerationRequest, Persona, PersonaRecord, RequestInfo, strict_json_schema
from persona_tui.engine.parsing import parse_partial, parse_persona
from persona_tui.engine.prompt import build_messages
from persona_tui.engine.providers.base import PromptSpec, Provider
from persona_tui.storage import PersonaStore, StoreError

log = logging.getLogger(__name__)

PARTIAL_INTERVAL = 0.1
"""Seconds between partial parses of the streaming answer."""
PROGRESS_INTERVAL = 0.05
RETRY_AFTER_MAX = 120.0
PERSONA_SPECIFIC = frozenset({"refusal", "invalid_output", "length", "content_filter"})
"""Failures that concern one persona only: the rest of the batch goes on."""

SCHEMA = strict_json_schema(Persona)


@dataclass(slots=True)
class _Attempt:
    text: str = ""
    tokens: int = 0
    first_token: float | None = None
    stream_seconds: float = 0.0
    cancelled: bool = False


@dataclass(slots=True)
class _Outcome:
    record: PersonaRecord | None = None
    cancelled: bool = False
    fatal: bool = False
    tokens: int = 0


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
    start: float = 0.0
    names: list[str] = field(default_factory=list)
    progress: ProgressModel | None = None

    def elapsed(self) -> float:
        return self.clock() - self.start

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _progress_event(
        self, index: int, *, waited: float = 0.0, tokens: int = 0, rate: float | None = None
    ) -> Progress:
        assert self.progress is not None
        eta = (
            self.progress.eta(waited=waited, tokens=tokens, rate=rate)
            if self.progress.done < self.progress.count
            else 0.0
        )
        return Progress(self.progress.fraction, self.elapsed(), eta, self.progress.persona_fraction, index)

    async def events(self) -> AsyncIterator[Event]:
        self.start = self.clock()
        saved: list[PersonaRecord] = []
        failed = 0
        tokens = 0
        stopped = False

        t = self.clock()
        yield StageStarted(Stage.PREPARING, f"{self.request.count} persona(s) with {self.provider.label}")
        default = offline_default(self.settings.offline_tokens_per_second) if not self.provider.is_ai else Estimate()
        self.progress = ProgressModel(
            self.request.count, self.estimates.get(self.provider.name, self.provider.model, default)
        )
        yield StageFinished(Stage.PREPARING, self.clock() - t)
        if self.request.organization:
            yield StageStarted(Stage.ORGANIZATION, self.request.organization)
            yield StageFinished(Stage.ORGANIZATION, 0.0)
        else:
            yield StageSkipped(Stage.ORGANIZATION, "no organization chosen")
        yield StageSkipped(Stage.ENRICHING, "not requested")
        yield self._progress_event(0)

        for index in range(self.request.count):
            if self.cancelled():
                stopped = True
                break
            outcome = _Outcome()
            async for event in self._one(index, outcome):
                yield event
            tokens += outcome.tokens
            if outcome.record is not None:
                saved.append(outcome.record)
            elif outcome.cancelled:
                stopped = True
                break
            else:
                failed += 1
                if outcome.fatal:
                    failed += self.request.count - index - 1
                    break

        if stopped:
            yield Cancelled(self.elapsed(), tuple(saved))
        try:
            await self.estimates.save()
        except OSError as exc:
            log.warning("could not save estimate history: %s", exc)
        yield Finished(Summary(tuple(saved), failed, stopped, self.elapsed(), tokens))

    async def _one(self, index: int, outcome: _Outcome) -> AsyncIterator[Event]:
        assert self.progress is not None
        persona_start = self.clock()
        self.progress.start_persona()

        t = self.clock()
        yield StageStarted(Stage.PROMPT, index=index)
        spec = PromptSpec(
            messages=build_messages(self.request, index, self.names),
            schema=SCHEMA,
            description=self.request.description,
            index=index,
            avoid_names=tuple(self.names),
        )
        yield StageFinished(Stage.PROMPT, self.clock() - t, index)

        attempt = _Attempt()
        max_attempts = self.settings.max_attempts
        for number in range(1, max_attempts + 1):
            attempt = _Attempt()
            try:
                async for event in self._stream(spec, index, number, attempt, persona_start):
                    yield event
            except GenerationError as err:
                outcome.tokens += attempt.tokens
                if err.retryable and number < max_attempts:
                    delay = self._backoff(number, err.retry_after)
                    yield Retrying(number + 1, max_attempts, delay, err.message, index)
                    if await self._pause(delay):
                        outcome.cancelled = True
                        return
                    continue
                yield Failed(err.kind, err.message, err.hint, index)
                outcome.fatal = err.kind not in PERSONA_SPECIFIC
                return
            break
        outcome.tokens += attempt.tokens
        if attempt.cancelled:
            outcome.cancelled = True
            return

        t = self.clock()
        yield StageStarted(Stage.VALIDATING, f"{attempt.tokens} tokens", index)
        self.progress.validating()
        yield self._progress_event(index, tokens=attempt.tokens)
        try:
            persona = parse_persona(attempt.text)
        except GenerationError as err:
            yield Failed(err.kind, err.message, err.hint, index)
            return
        yield StageFinished(Stage.VALIDATING, self.clock() - t, index)
        if self.cancelled():
            outcome.cancelled = True
            return

        t = self.clock()
        yield StageStarted(Stage.SAVING, str(self.store.root), index)
        self.progress.saving()
        seconds = self.clock() - persona_start
        record = PersonaRecord(
            provider=self.provider.name,
            model=self.provider.model,
            request=RequestInfo(description=self.request.description, organization=self.request.organization),
            generation_seconds=round(seconds, 3),
            tokens=attempt.tokens,
            persona=persona,
        )
        try:
            path = await self.store.save(record)
        except StoreError as err:
            yield Failed("save", err.message, err.hint, index)
            outcome.fatal = True
            return
        yield StageFinished(Stage.SAVING, self.clock() - t, index)

        self.names.append(persona.name)
        self.progress.saved()
        rate = attempt.tokens / attempt.stream_seconds if attempt.stream_seconds > 0 else 0.0
        if attempt.first_token is not None and rate > 0:
            self.estimates.learn(self.provider.name, self.provider.model, attempt.tokens, attempt.first_token, rate)
        outcome.record = record
        yield PersonaSaved(record, path, seconds, attempt.tokens, rate, index)
        yield self._progress_event(index)

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

        stream = self.provider.stream(spec)
        pending: asyncio.Future[str] | None = None
        cancel_wait = asyncio.ensure_future(self.cancel.wait()) if self.cancel is not None else None
        parts: list[str] = []
        first: float | None = None
        next_heartbeat = sent + settings.heartbeat_seconds
        slow_warned = False
        last_partial = last_progress = 0.0
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(stream))
                now = self.clock()
                idle_limit = settings.first_token_timeout if first is None else settings.idle_timeout
                deadline = min(next_heartbeat, last_token + idle_limit, sent + settings.total_timeout)
                if not slow_warned:
                    deadline = min(deadline, persona_start + settings.slow_seconds)
                waiting: set[asyncio.Future[Any]] = {pending} if cancel_wait is None else {pending, cancel_wait}
                done, _ = await asyncio.wait(
                    waiting, timeout=max(deadline - now, 0.0), return_when=asyncio.FIRST_COMPLETED
                )
                if self.cancelled():
                    attempt.cancelled = True
                    return
                now = self.clock()
                if pending not in done:
                    if now - sent >= settings.total_timeout:
                        raise GenerationError(
                            "timeout",
                            f"No complete answer from {self.provider.endpoint} after {settings.total_timeout:.0f} s.",
                            "The server may be overloaded; try again later or raise total_timeout.",
                        )
                    if now - last_token >= idle_limit:
                        what = "the first token" if first is None else "the next token"
                        raise GenerationError(
                            "stalled",
                            f"{self.provider.endpoint} sent nothing for {idle_limit:.0f} s while waiting for {what}.",
                            "The server may be overloaded; try again, or raise the timeouts.",
                            retryable=True,
                        )
                    if not slow_warned and now - persona_start >= settings.slow_seconds:
                        slow_warned = True
                        yield SlowWarning(now - persona_start, settings.slow_seconds, index)
                    if now >= next_heartbeat:
                        next_heartbeat += settings.heartbeat_seconds
                        yield Heartbeat(self.elapsed(), now - last_token, index)
                        if first is None:
                            self.progress.waiting(now - sent)
                            yield self._progress_event(index, waited=now - sent)
                    continue
                try:
                    text = pending.result()
                except StopAsyncIteration:
                    pending = None
                    break
                pending = None
                if first is None:
                    first = now
                    attempt.first_token = now - sent
                    yield FirstToken(now - sent, index)
                    yield StageFinished(Stage.CALLING, now - sent, index)
                    yield StageStarted(Stage.STREAMING, self.provider.label, index)
                parts.append(text)
                attempt.tokens += 1
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
                    self.progress.streamed(attempt.tokens)
                    yield self._progress_event(index, tokens=attempt.tokens, rate=rate)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.wait({pending})
            if cancel_wait is not None:
                cancel_wait.cancel()
            await stream.aclose()  # type: ignore[attr-defined]

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
    )
    async for event in run.events():
        yield event
