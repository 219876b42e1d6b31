"""One persona's job: prompt, attempts, validation (with one correction), a name of its own, the save.

The job's events go to the batch; its last item is a :class:`JobOutcome`
saying whether a record was saved, or why not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.events import (
    Event,
    Failed,
    NearDuplicate,
    PersonaSaved,
    Retrying,
    SlotBroken,
    Stage,
    StageFinished,
    StageStarted,
)
from persona_tui.engine.parsing import parse_persona
from persona_tui.engine.pipeline.attempt import MAX_ANSWER_CHARS, AttemptResult, fmt_duration, run_attempt
from persona_tui.engine.pipeline.retry import STALL_RETRIES, backoff, pause
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.plan import slot_breaks
from persona_tui.engine.prompt import build_messages
from persona_tui.engine.providers.base import PromptSpec
from persona_tui.models import Persona, PersonaRecord, RequestInfo, Slot, Usage, strict_json_schema
from persona_tui.storage import StoreError

NAME_ROUNDS = 3
"""How often a persona whose name is already taken is asked for again."""
MAX_STEPS = 8
"""Steps that suit a request to a server (parameters left out, rungs down the ladder): more means a loop."""
SCHEMA = strict_json_schema(Persona)


def _made_by(record: PersonaRecord) -> dict[str, Any]:
    """What a regenerated record takes from the new generation (the rest, its id included, stays the old one's)."""
    keys = ("provider", "model", "generation_seconds", "tokens", "sources", "usage")
    return {key: getattr(record, key) for key in keys}


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How one persona's job ended."""

    record: PersonaRecord | None = None
    cancelled: bool = False
    tokens: int = 0
    """Tokens received for this persona, over every attempt."""
    started: bool = True
    """False for a persona never begun: the batch had already met a failure that would hit it too."""


class PersonaJob:
    """Makes persona ``index`` of the run."""

    def __init__(self, run: Run, index: int, unlike: tuple[str, ...] = ()) -> None:
        self.run = run
        self.index = index
        self.slot: Slot | None = run.plan.slots[index] if run.plan is not None else None
        self.unlike = unlike
        """Personas of the batch this one must differ from (when it is written again as a near-duplicate)."""
        self.variant = 1 if unlike else 0
        """Times this persona was asked for again as someone else (a rewrite starts at once)."""
        self.start = run.clock()
        self.tokens = 0
        self.usage: Usage | None = None
        self.answer = AttemptResult()
        """The last attempt's result: its rate is what the estimates learn."""
        self.planned = run.settings.max_attempts
        """Attempts this persona may have in all, as far as is known now (fewer once a server goes silent)."""

    def outcome(self, record: PersonaRecord | None = None, *, cancelled: bool = False) -> JobOutcome:
        return JobOutcome(record, cancelled, self.tokens)

    async def events(self) -> AsyncIterator[Event | JobOutcome]:
        self.run.progress.start(self.index)
        persona: Persona | None = None
        while persona is None:
            async for item in self._persona():
                if isinstance(item, JobOutcome):
                    yield item
                    return
                if isinstance(item, Persona):
                    persona = item
                else:
                    yield item
            assert persona is not None
            near = self._near_duplicate(persona)
            if near is not None:
                yield near
                if not near.kept:
                    persona = None
        self.run.names.take(persona)  # claimed before the save, so a parallel stream cannot take it too
        self.run.similar.add(persona)
        if self.run.cancelled():
            yield self.outcome(cancelled=True)
            return
        async for event in self._save(persona):
            yield event

    # ----- writing and checking -----

    def _near_duplicate(self, persona: Persona) -> NearDuplicate | None:
        """The word on a persona that reads almost like one the run already has: written again once, then kept."""
        run = self.run
        found = run.similar.nearest(persona)
        if found is None or found[1] < run.settings.similarity_threshold:
            return None
        other, similarity = found
        kept = self.variant > 0 or not run.settings.regenerate_duplicates
        if not kept:
            self.variant += 1
            self.unlike = (f"{other.name} ({other.age}, {other.occupation}): {other.background}",)
        return NearDuplicate(other.name, round(similarity, 2), self.index, kept=kept)

    def _spec(self, correction: list[dict[str, str]]) -> PromptSpec:
        run = self.run
        messages = build_messages(
            run.request, self.index, run.names.people, run.org, run.sources, slot=self.slot, unlike=self.unlike
        )
        return PromptSpec(
            messages=messages + correction,
            schema=SCHEMA,
            description=run.request.description,
            index=self.index,
            avoid_names=run.names.sorted(),
            slot=self.slot,
            variant=self.variant,
        )

    async def _persona(self) -> AsyncIterator[Event | Persona | JobOutcome]:
        """A valid persona with a name of its own, or the outcome that ends the job."""
        correction: list[dict[str, str]] = []
        """After an answer that did not fit: that answer and what was wrong, sent back once."""
        repaired = False
        round_ = 0
        while round_ < NAME_ROUNDS:
            round_ += 1
            started = self.run.clock()
            yield StageStarted(Stage.PROMPT, index=self.index)
            spec = self._spec(correction)
            yield StageFinished(Stage.PROMPT, self.run.clock() - started, self.index)
            async for item in self._attempts(spec):
                yield item
            if self.answer.cancelled or self.answer.error is not None:
                yield self.outcome(cancelled=self.answer.cancelled)
                return
            started = self.run.clock()
            yield StageStarted(Stage.VALIDATING, f"{self.answer.tokens} tokens", self.index)
            self.run.progress.validating(self.index)
            yield self.run.progress_event(self.index)
            try:
                persona = parse_persona(self.answer.text)
            except GenerationError as err:
                if repaired or not self.answer.text.strip():
                    yield Failed(err.kind, err.message, err.hint, self.index)
                    yield self.outcome()
                    return
                repaired, round_ = True, round_ - 1  # one second chance, with the error given back to the model
                correction = self._correction(err.message)
                yield Retrying(2, 2, 0.0, f"{err.message} Asking the model to correct it.", self.index)
                continue
            breaks = slot_breaks(self.slot, persona) if self.slot is not None else []
            if breaks and not repaired:  # the one correction round: the slot is given back to the model
                repaired, round_ = True, round_ - 1
                correction = self._correction(message=f"The persona breaks its slot: {'; '.join(breaks)}.")
                reason = f"It broke its slot ({'; '.join(breaks)}). Asking the model to correct it."
                yield Retrying(2, 2, 0.0, reason, self.index)
                continue
            correction = []
            yield StageFinished(Stage.VALIDATING, self.run.clock() - started, self.index)
            if breaks:
                yield SlotBroken(tuple(breaks), self.index)
            async for outcome in self._unique(persona, round_):
                yield outcome
            if persona.name not in self.run.names or round_ == NAME_ROUNDS:
                return

    def _correction(self, message: str) -> list[dict[str, str]]:
        return [
            {"role": "assistant", "content": self.answer.text[:MAX_ANSWER_CHARS]},
            {"role": "user", "content": f"{message} Reply again with only the corrected JSON object."},
        ]

    async def _unique(self, persona: Persona, round_: int) -> AsyncIterator[Event | Persona | JobOutcome]:
        """The persona if its name is free; else a retry, or the end after the last round."""
        if persona.name not in self.run.names:
            yield persona
        elif round_ == NAME_ROUNDS:
            yield Failed(
                FailureKind.DUPLICATE,
                f"The model kept repeating a name already used ({persona.name}).",
                "Describe the people more specifically, or ask for fewer at a time.",
                self.index,
            )
            yield self.outcome()
        else:
            reason = f"{persona.name} is already taken; asking for someone else."
            yield Retrying(round_ + 1, NAME_ROUNDS, 0.0, reason, self.index)

    # ----- attempts -----

    async def _attempts(self, spec: PromptSpec) -> AsyncIterator[Event]:
        """Stream the answer, retrying faults worth retrying; the result is left in ``self.answer``.

        A step that suits the request to the server (a refused parameter left out, one rung down the
        structured-output ladder) is no fault: it goes again at once and uses no attempt.
        """
        run, most = self.run, self.run.settings.max_attempts
        number, stalls, steps = 1, 0, 0
        while True:
            if await self._through_gate():
                self.answer = AttemptResult(cancelled=True)
                return
            async for item in run_attempt(run, spec, self.index, number, self.planned, self.start):
                if isinstance(item, AttemptResult):
                    self._count(item)
                else:
                    yield item
            err = self.answer.error
            if err is None:
                return
            if err.adapted and steps < MAX_STEPS:
                steps += 1
                yield Retrying(number, self.planned, 0.0, err.message, self.index, adapted=True)
                continue
            stalls += err.kind is FailureKind.STALLED
            if self._worth_retrying(err, number, stalls):
                if err.kind is FailureKind.STALLED:  # a silent server gets one more try, and the count says so
                    self.planned = min(most, number + 1 + STALL_RETRIES - stalls)
                else:  # another fault after a stall may still be retried: the count never says "3 of 2"
                    self.planned = max(self.planned, number + 1)
                delay = self._delay(err, number)
                yield Retrying(number + 1, self.planned, delay, err.message, self.index)
                if await pause(delay, run.cancel):
                    self.answer = AttemptResult(cancelled=True)
                    return
                number += 1
                continue
            if run.first_report(err.kind, err.message):
                yield self._failed(err, number)
            run.halted = run.halted or err.kind.stops_batch
            return

    def _failed(self, err: GenerationError, attempts: int) -> Failed:
        """The final word on a persona that could not be had; a timeout says how long the user really waited."""
        message = err.message
        if err.kind in (FailureKind.STALLED, FailureKind.TIMEOUT):
            tried = f" over {attempts} attempts" if attempts > 1 else ""
            message = f"{message} Waited {fmt_duration(self.run.clock() - self.start)} in all{tried}."
        return Failed(err.kind, message, err.hint, self.index)

    def _count(self, result: AttemptResult) -> None:
        """One attempt's result: the answer so far, and what it cost (the server's count when it gave one)."""
        self.answer = result
        usage = result.usage
        self.tokens += usage.completion_tokens if usage is not None and usage.completion_tokens else result.tokens
        if result.usage is not None:
            self.usage = result.usage if self.usage is None else self.usage + result.usage

    def _worth_retrying(self, err: GenerationError, number: int, stalls: int) -> bool:
        worth_it = err.retryable and (err.kind is not FailureKind.STALLED or stalls <= STALL_RETRIES)
        return worth_it and number < self.run.settings.max_attempts and not self.run.halted

    def _delay(self, err: GenerationError, number: int) -> float:
        s = self.run.settings
        delay = backoff(number, err.retry_after, base=s.retry_base_delay, cap=s.retry_max_delay, rng=self.run.rng)
        if err.kind is FailureKind.RATE_LIMITED:
            self.run.gate.close(delay)
            delay = self.run.gate.claim()
        return delay

    async def _through_gate(self) -> bool:
        """Wait while the rate-limit gate is closed; True if the user cancelled meanwhile."""
        wait = self.run.gate.claim()
        if wait <= 0:
            return self.run.cancelled()
        return await pause(wait, self.run.cancel)

    # ----- saving -----

    async def _save(self, persona: Persona) -> AsyncIterator[Event | JobOutcome]:
        run, index = self.run, self.index
        started = run.clock()
        yield StageStarted(Stage.SAVING, str(run.store.root), index)
        run.progress.saving(index)
        seconds = run.clock() - self.start
        record = PersonaRecord(
            provider=run.provider.name,
            model=run.provider.model,
            request=RequestInfo(
                description=run.request.description,
                organization=run.org.name if run.org else None,
                organization_id=run.org.id if run.org else None,
                enrich=run.request.enrich,
                mix=None if run.request.mix.is_empty() else run.request.mix,
            ),
            generation_seconds=round(seconds, 3),
            tokens=self.tokens,
            persona=persona,
            sources=list(run.sources),
            usage=self.usage,
            slot=self.slot,
            run_id=run.run_id or None,
        )
        rewrite = run.rewrite
        try:
            if rewrite is not None and rewrite.in_place:  # a regeneration: the new persona in the old one's place
                old = rewrite.records[index]
                record = old.with_change(persona, "regenerate", **_made_by(record))
                path = await run.store.replace(record)
            else:
                path = await run.store.save(record)
        except StoreError as err:
            yield Failed(FailureKind.SAVE, err.message, err.hint, index)
            run.halted = True
            yield self.outcome()
            return
        yield StageFinished(Stage.SAVING, run.clock() - started, index)
        run.progress.saved(index)
        answer = self.answer
        tokens = answer.answer_tokens()
        rate = tokens / answer.stream_seconds if answer.stream_seconds > 0 else 0.0
        if run.provider.is_ai and answer.first_token is not None and rate > 0:
            run.estimates.learn(
                run.provider.name, run.provider.model, tokens, answer.first_token, rate, answer.thinking_seconds
            )
        yield PersonaSaved(record, path, seconds, record.tokens, rate, index, usage=self.usage)
        yield run.progress_event(index)
        yield self.outcome(record)
