"""Talking to personas: one question to one persona (an interview's turn) or to several (a focus group).

An answer goes through the same machinery as a persona: the attempt under its watchdog
(calling, thinking, streaming, heartbeats, the slow warning), the job's retries and the
batch-wide rate-limit gate, the batch's lanes (at most ``concurrency`` answers at once, one
lane's failure ending only that lane). What differs is the request (the persona as the system
message, the conversation so far, the question, plain text back) and the end: an
:class:`~persona_tui.engine.events.AnswerDone` with the rule pass's flags instead of a save,
and a :class:`~persona_tui.engine.events.TalkFinished`. Progress is learned per model from
earlier answers (kept apart from the personas' own estimates: an answer is much shorter).

:func:`interview_turn` appends each turn to the persona's transcript; :func:`group_question`
keeps a focus group's record. Cancelling keeps every answer already finished, and the text
of one stopped half-way, marked as stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from persona_tui.config import Settings
from persona_tui.engine.character import check_answer, persona_system_prompt
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.estimate import Estimate, EstimateBook, ProgressModel, offline_default
from persona_tui.engine.events import (
    AnswerDone,
    Event,
    Failed,
    Stage,
    StageFinished,
    StageStarted,
    TalkFinished,
    TokenDelta,
)
from persona_tui.engine.pipeline.batch import _Done, _lane
from persona_tui.engine.pipeline.job import JobOutcome, PersonaJob
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.providers.base import PromptSpec, Provider
from persona_tui.models import (
    FocusGroup,
    GenerationRequest,
    GroupAnswer,
    GroupQuestion,
    PersonaRecord,
    Turn,
)
from persona_tui.storage import GroupStore, PersonaStore, StoreError, TranscriptStore, folder_problem

ANSWER_ESTIMATE = Estimate(tokens=120.0)
"""Before any history: an answer of a few sentences."""
OFFLINE_ANSWER_TOKENS = 45.0
QUESTION_MAX = 4000
SAME_FAILURE = "Failed like the answer above."


def answer_key(model: str) -> str:
    """The estimate book's model key for answers (apart from the same model's personas)."""
    return f"{model}#answers"


@dataclass(frozen=True, slots=True)
class Speaker:
    """One persona asked a question, with what it was asked and answered before."""

    record: PersonaRecord
    history: Sequence[tuple[str, str]] = ()


def chat_messages(speaker: Speaker, question: str) -> list[dict[str, str]]:
    """The request: the persona as the system message, the conversation so far, the question."""
    messages = [{"role": "system", "content": persona_system_prompt(speaker.record)}]
    for asked, answered in speaker.history:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    messages.append({"role": "user", "content": question})
    return messages


class AnswerJob(PersonaJob):
    """One persona's answer: the persona job's attempts, retries and gate, with a conversation's request."""

    def __init__(self, run: Run, index: int, speaker: Speaker, question: str) -> None:
        super().__init__(run, index)
        self.speaker = speaker
        self.question = question

    async def events(self) -> AsyncIterator[Event | JobOutcome]:
        run, index, record = self.run, self.index, self.speaker.record
        run.progress.start(index)
        started = run.clock()
        yield StageStarted(Stage.PROMPT, record.persona.name, index)
        spec = PromptSpec(
            messages=chat_messages(self.speaker, self.question),
            schema={},
            description=record.request.description,
            index=index,
            persona=record.persona,
            question=self.question,
            turn=len(self.speaker.history),
        )
        yield StageFinished(Stage.PROMPT, run.clock() - started, index)
        async for event in self._attempts(spec):
            yield event
        if self.answer.cancelled or self.answer.error is not None:
            yield self.outcome(cancelled=self.answer.cancelled)
            return
        answer = self.answer
        text = answer.text.strip()
        tokens = answer.answer_tokens()
        rate = tokens / answer.stream_seconds if answer.stream_seconds > 0 else 0.0
        if run.provider.is_ai and answer.first_token is not None and rate > 0:
            key = answer_key(run.provider.model)
            run.estimates.learn(run.provider.name, key, tokens, answer.first_token, rate, answer.thinking_seconds)
        flags = check_answer(record.persona, text, self.question)
        run.progress.saved(index)
        seconds = run.clock() - self.start
        yield AnswerDone(record.id, text, seconds, self.tokens, rate, index, self.usage, flags, record.persona.name)
        yield run.progress_event(index)
        yield self.outcome(record)


@dataclass(slots=True)
class Heard:
    """What came of one question: per lane, the answer, the failure, or the text of a stopped answer."""

    answers: dict[int, AnswerDone] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    stopped: dict[int, str] = field(default_factory=dict)
    partial: dict[int, list[str]] = field(default_factory=dict)
    finished: TalkFinished | None = None

    def see(self, event: Event) -> None:
        if isinstance(event, TokenDelta):
            self.partial.setdefault(event.index, []).append(event.text)
        elif isinstance(event, StageStarted) and event.stage is Stage.CALLING:
            self.partial.pop(event.index, None)  # a retry starts the answer over
        elif isinstance(event, AnswerDone):
            self.answers[event.index] = event
        elif isinstance(event, Failed):
            self.errors[event.index] = f"{event.message} {event.hint}".strip()
        elif isinstance(event, TalkFinished):
            self.finished = event


def _estimate(provider: Provider, settings: Settings, estimates: EstimateBook) -> Estimate:
    if provider.is_ai:
        return estimates.get(provider.name, answer_key(provider.model), ANSWER_ESTIMATE)
    return offline_default(settings.offline_tokens_per_second, tokens=OFFLINE_ANSWER_TOKENS, base=ANSWER_ESTIMATE)


async def talk(
    speakers: Sequence[Speaker],
    question: str,
    *,
    provider: Provider,
    settings: Settings,
    estimates: EstimateBook | None = None,
    cancel: asyncio.Event | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
    heard: Heard | None = None,
) -> AsyncIterator[Event]:
    """Put ``question`` to every speaker, answers streamed in parallel lanes (lane ``i`` is speaker ``i``).

    The last event is :class:`TalkFinished`, unless the iterating task is cancelled. ``heard``, when given,
    collects the answers, failures and stopped text as they pass.
    """
    estimates = estimates or EstimateBook(None)
    heard = heard if heard is not None else Heard()
    start = clock()
    count = len(speakers)
    if not count:  # nobody to ask: nothing is sent
        yield TalkFinished(0, 0, False, 0.0, 0, 0)
        return
    who = speakers[0].record.persona.name if count == 1 else f"{count} personas"
    first = StageStarted(Stage.PREPARING, f"Asking {who} with {provider.label}")
    heard.see(first)
    yield first
    lanes = max(1, min(settings.concurrency, count))
    run = Run(
        request=GenerationRequest(description=f"a question to {who}"),
        provider=provider,
        store=PersonaStore(settings.personas_dir),
        settings=settings,
        estimates=estimates,
        progress=ProgressModel(count, _estimate(provider, settings, estimates), lanes),
        cancel=cancel,
        rng=rng or random.Random(),
        clock=clock,
        start=start,
        todo=list(range(count)),
    )
    yield StageFinished(Stage.PREPARING, clock() - start)
    yield run.progress_event(0)
    async for event in _lanes(run, speakers, question, lanes, heard):
        heard.see(event)
        yield event
    with contextlib.suppress(OSError):  # only a shortcut for the next answer's progress
        await estimates.save()
    failed = sum(1 for i in range(count) if i not in heard.answers and i not in heard.stopped)
    end = TalkFinished(len(heard.answers), failed, run.cancelled(), clock() - start, run_tokens(heard), count)
    heard.see(end)
    yield end


def run_tokens(heard: Heard) -> int:
    return sum(done.tokens for done in heard.answers.values())


async def _lanes(
    run: Run, speakers: Sequence[Speaker], question: str, lanes: int, heard: Heard
) -> AsyncIterator[Event]:
    """The batch's lanes, each answering with an :class:`AnswerJob`; a failed lane ends only itself."""
    queue: asyncio.Queue[Event | _Done] = asyncio.Queue()

    def make(run: Run, index: int) -> PersonaJob:
        return AnswerJob(run, index, speakers[index], question)

    indexes = iter(run.todo)
    workers = [asyncio.create_task(_lane(run, indexes, queue, make)) for _ in range(lanes)]
    try:
        pending = len(run.todo)
        while pending:
            item = await queue.get()
            if not isinstance(item, _Done):
                yield item
                continue
            pending -= 1
            if item.outcome.record is None:
                run.progress.dropped(item.index)
                if item.outcome.cancelled:
                    heard.stopped[item.index] = "".join(heard.partial.get(item.index, [])).strip()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


# ----- an interview's turn -----


async def interview_turn(
    record: PersonaRecord,
    history: Sequence[Turn],
    question: str,
    *,
    provider: Provider,
    settings: Settings,
    transcripts: TranscriptStore | None = None,
    estimates: EstimateBook | None = None,
    cancel: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> AsyncIterator[Event | Turn]:
    """Ask one persona ``question`` after ``history``; the answer (or what arrived before a stop) is appended
    to its transcript. Yields the events, then the :class:`Turn` kept (none when nothing came of it)."""
    if transcripts is not None:
        problem = await asyncio.to_thread(folder_problem, transcripts.root)
        if problem is not None:  # checked before the question is sent: a paid-for answer must have a place
            yield Failed(FailureKind.SAVE, problem.message, problem.hint)
            yield TalkFinished(0, 1, False, 0.0, 0)
            return
    pairs = [(t.question, t.answer) for t in history if t.answer and not t.stopped]
    heard = Heard()
    async for event in talk(
        [Speaker(record, pairs)],
        question,
        provider=provider,
        settings=settings,
        estimates=estimates,
        cancel=cancel,
        rng=rng,
        clock=clock,
        heard=heard,
    ):
        yield event
    turn = _turn(record, question, heard, provider)
    if turn is None:
        return
    if transcripts is not None:
        try:
            await transcripts.append(turn)
        except StoreError as err:
            yield Failed(FailureKind.SAVE, err.message, err.hint)
    yield turn


def _turn(record: PersonaRecord, question: str, heard: Heard, provider: Provider) -> Turn | None:
    done = heard.answers.get(0)
    base = Turn(persona_id=record.id, question=question, provider=provider.name, model=provider.model)
    if done is not None:
        return base.model_copy(
            update={
                "answer": done.text,
                "seconds": round(done.seconds, 3),
                "tokens": done.tokens,
                "usage": done.usage,
                "flags": list(done.flags),
            }
        )
    if 0 in heard.stopped:
        return base.model_copy(update={"answer": heard.stopped[0], "stopped": True})
    return None


# ----- a focus group's question -----


def new_group(records: Sequence[PersonaRecord]) -> FocusGroup:
    """A focus group of these personas, before its first question."""
    return FocusGroup(persona_ids=[r.id for r in records], names={r.id: r.persona.name for r in records})


async def group_question(
    group: FocusGroup,
    records: dict[str, PersonaRecord],
    question: str,
    to: Sequence[str] = (),
    *,
    provider: Provider,
    settings: Settings,
    groups: GroupStore | None = None,
    estimates: EstimateBook | None = None,
    cancel: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> AsyncIterator[Event]:
    """Ask the group's personas (or only those in ``to``) ``question``, each after what it said in the group
    before; lane ``i`` is the ``i``-th persona asked. The group's record is written as answers arrive and at
    the end, with every failure and stopped answer in it."""
    if groups is not None:
        unusable = await asyncio.to_thread(folder_problem, groups.root)
        if unusable is not None:  # checked before anything is sent
            yield Failed(FailureKind.SAVE, unusable.message, unusable.hint)
            yield TalkFinished(0, len(to or group.persona_ids), False, 0.0, 0, len(to or group.persona_ids))
            return
    ids = [i for i in (to or group.persona_ids) if i in records]
    asked = GroupQuestion(question=question, to=ids)
    group.questions.append(asked)
    group.provider, group.model = provider.name, provider.model
    speakers = [Speaker(records[i], group.history(i)) for i in ids]
    heard = Heard()
    async for event in talk(
        speakers,
        question,
        provider=provider,
        settings=settings,
        estimates=estimates,
        cancel=cancel,
        rng=rng,
        clock=clock,
        heard=heard,
    ):
        if isinstance(event, AnswerDone):
            asked.answers[event.persona_id] = GroupAnswer(
                answer=event.text, seconds=round(event.seconds, 3), tokens=event.tokens, flags=list(event.flags)
            )
            problem = await _save_group(groups, group)
            if problem is not None:
                yield problem
        elif isinstance(event, TalkFinished):
            _fill_in(asked, ids, heard)
            problem = await _save_group(groups, group)
            if problem is not None:
                yield problem
        yield event


def _fill_in(asked: GroupQuestion, ids: Sequence[str], heard: Heard) -> None:
    """The lanes with no answer: what was stopped, and why the others failed."""
    for index, persona_id in enumerate(ids):
        if persona_id in asked.answers:
            continue
        if index in heard.stopped:
            asked.answers[persona_id] = GroupAnswer(answer=heard.stopped[index], stopped=True)
        else:
            asked.answers[persona_id] = GroupAnswer(error=heard.errors.get(index, SAME_FAILURE))


async def _save_group(groups: GroupStore | None, group: FocusGroup) -> Failed | None:
    if groups is None:
        return None
    try:
        await groups.save(group)
    except StoreError as err:
        return Failed(FailureKind.SAVE, err.message, err.hint)
    return None
