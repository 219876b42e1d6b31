"""One request to the model, from "request sent" to the last part, under a watchdog.

The attempt turns the provider's typed parts into events: the first sign of
life ends the calling stage; reasoning opens a thinking stage; answer text is
streamed, parsed in part a few times a second and counted for progress. Silence
is measured against the first-token, idle and total limits, and spoken of with
heartbeats and a slow warning. The attempt never raises for a failure it
understands: its last item is an :class:`AttemptResult` saying how it ended.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.events import (
    Event,
    FirstToken,
    Heartbeat,
    PartialPersona,
    ReasoningDelta,
    RequestSent,
    ServerNotice,
    SlowWarning,
    Stage,
    StageFinished,
    StageStarted,
    TokenDelta,
    UsageReported,
)
from persona_tui.engine.parsing import parse_partial
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.pipeline.watch import Stopped, Tick, watch
from persona_tui.engine.providers.base import PromptSpec
from persona_tui.engine.providers.parts import (
    AnswerPart,
    HiddenReasoning,
    NoticePart,
    ReasoningPart,
    StreamPart,
    UsagePart,
)
from persona_tui.models import Usage

PARTIAL_INTERVAL = 0.1
"""Seconds between partial parses of the streaming answer."""
PROGRESS_INTERVAL = 0.05
"""Seconds between progress events while text arrives."""
MAX_ANSWER_CHARS = 40_000
"""A persona is a few thousand characters; an answer past this is a runaway, stopped and reported."""


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt ended."""

    text: str = ""
    tokens: int = 0
    """Answer pieces received."""
    first_token: float | None = None
    """Seconds from the request to the first sign of life."""
    stream_seconds: float = 0.0
    """Seconds from the first answer piece to the last."""
    usage: Usage | None = None
    cancelled: bool = False
    error: GenerationError | None = None
    thinking_seconds: float = 0.0
    """Seconds from the first reasoning to the first answer piece (0 for a model that did not think)."""

    def answer_tokens(self) -> int:
        """The answer's tokens: the server's count less its reasoning when it gave one, else the pieces seen."""
        if self.usage is not None and self.usage.completion_tokens > self.usage.reasoning_tokens:
            return self.usage.completion_tokens - self.usage.reasoning_tokens
        return self.tokens


def _from_server(part: StreamPart) -> bool:
    return not isinstance(part, NoticePart) or part.from_server


def fmt_duration(seconds: float) -> str:
    """Whole seconds for a sentence ("61 s", "2 min 05 s"): the engine's failures say how long was waited."""
    whole = round(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


@dataclass(slots=True)
class _Attempt:
    """The watchdog's view of one attempt as it goes."""

    run: Run
    index: int
    persona_start: float
    sent: float
    last_life: float
    next_heartbeat: float
    life: float | None = None
    """When the server first sent anything."""
    answer_start: float | None = None
    thinking_since: float | None = None
    spoke: bool = False
    """Text of any kind (answer or visible reasoning) has arrived: from then on the idle limit applies."""
    pieces: list[str] = field(default_factory=list)
    tokens: int = 0
    chars: int = 0
    reasoning_tokens: int = 0
    usage: Usage | None = None
    slow_warned: bool = False
    last_partial: float = 0.0
    last_progress: float = 0.0

    # ----- silence -----

    def idle_limit(self) -> float:
        return self._silence()[0]

    def _silence(self) -> tuple[float, str, str]:
        """The silence allowed now, what is being waited for, and the setting that allows it."""
        s = self.run.settings
        if self.spoke:
            return s.idle_timeout, "the next token", "idle_timeout"
        if self.thinking_since is not None:  # thinking in hidden: it may take minutes, and says nothing
            return s.thinking_timeout, "the answer (the model was thinking)", "thinking_timeout"
        return s.first_token_timeout, "the first token", "first_token_timeout"

    def wake_at(self) -> float:
        """The next moment something is due even if nothing arrives."""
        s = self.run.settings
        due = min(self.next_heartbeat, self.last_life + self.idle_limit(), self.sent + s.total_timeout)
        return due if self.slow_warned else min(due, self.persona_start + self.run.slow_after)

    def on_tick(self, now: float) -> list[Event]:
        """Nothing arrived by the wake-up time: time out, warn, or say we are still waiting."""
        self._check_limits(now)
        s = self.run.settings
        events: list[Event] = []
        slow = self.run.slow_after
        if not self.slow_warned and now - self.persona_start >= slow:
            self.slow_warned = True
            events.append(SlowWarning(now - self.persona_start, slow, self.index))
        if now >= self.next_heartbeat:
            self.next_heartbeat += s.heartbeat_seconds
            events.append(Heartbeat(self.run.elapsed(), now - self.last_life, self.index))
            if self.thinking_since is not None and self.answer_start is None:
                self.run.progress.thinking(self.index, now - self.thinking_since)
                events.append(self.run.progress_event(self.index))
            elif self.answer_start is None:
                self.run.progress.waiting(self.index, now - self.sent)
                events.append(self.run.progress_event(self.index))
        return events

    def _check_limits(self, now: float) -> None:
        s, where = self.run.settings, self.run.provider.endpoint
        if now - self.sent >= s.total_timeout:
            raise GenerationError(
                FailureKind.TIMEOUT,
                f"No complete answer from {where} after {s.total_timeout:.0f} s.",
                "The server may be overloaded; try again later or raise total_timeout.",
            )
        limit, what, setting = self._silence()
        if now - self.last_life >= limit:
            raise GenerationError(
                FailureKind.STALLED,
                f"{where} sent nothing for {limit:.0f} s while waiting for {what}.",
                f"The server may be overloaded or the model slow to start: try again, or raise {setting} "
                f"(now {limit:.0f} s).",
                retryable=True,
            )

    # ----- arrivals -----

    def on_parts(self, parts: list[StreamPart], now: float) -> list[Event]:
        """Everything that arrived at once becomes a few events, not one per token."""
        events: list[Event] = []
        # The provider's own words are no sign of the server's life (the first part is nearly always answer text).
        if not isinstance(parts[0], NoticePart) or any(_from_server(part) for part in parts):
            if self.life is None:
                self.life = now
                waited = now - self.sent
                events += [FirstToken(waited, self.index), StageFinished(Stage.CALLING, waited, self.index)]
            self.last_life = now
            self.next_heartbeat = now + self.run.settings.heartbeat_seconds
        answer: list[str] = []
        reasoning: list[str] = []
        hidden: int | None = None
        for part in parts:
            if isinstance(part, AnswerPart):  # by far the most common: first in the chain
                answer.append(part.text)
            elif isinstance(part, ReasoningPart):
                reasoning.append(part.text)
            elif isinstance(part, HiddenReasoning):
                hidden = max(hidden or 0, part.tokens)
            else:
                events.append(self._aside(part))
        if reasoning or hidden is not None:
            events += self._thinking(reasoning, hidden, now)
        if answer:
            events += self._answer(answer, now)
        return events

    def _aside(self, part: UsagePart | NoticePart) -> Event:
        if isinstance(part, UsagePart):
            self.usage = part.usage
            return UsageReported(part.usage, self.index)
        return ServerNotice(part.text, self.index, part.from_server)

    def _thinking(self, reasoning: list[str], hidden: int | None, now: float) -> list[Event]:
        events: list[Event] = []
        if self.thinking_since is None and self.answer_start is None:
            self.thinking_since = now
            detail = "" if reasoning else "hidden by the model"
            events.append(StageStarted(Stage.THINKING, detail, self.index))
        self.spoke = self.spoke or bool(reasoning)
        self.reasoning_tokens = max(self.reasoning_tokens + len(reasoning), hidden or 0)
        since = self.thinking_since if self.thinking_since is not None else now
        events.append(ReasoningDelta("".join(reasoning), self.reasoning_tokens, now - since, self.index))
        if self.answer_start is None and now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            self.run.progress.thinking(self.index, now - since)
            events.append(self.run.progress_event(self.index))
        return events

    def _answer(self, answer: list[str], now: float) -> list[Event]:
        events: list[Event] = []
        if self.answer_start is None:
            self.answer_start = now
            self.spoke = True
            if self.thinking_since is not None:
                events.append(StageFinished(Stage.THINKING, now - self.thinking_since, self.index))
            events.append(StageStarted(Stage.STREAMING, self.run.provider.label, self.index))
        text = "".join(answer)
        self.pieces.append(text)
        self.tokens += len(answer)
        self.chars += len(text)
        if self.chars > MAX_ANSWER_CHARS:
            raise GenerationError(
                FailureKind.TOO_LARGE,
                f"The model's answer passed {MAX_ANSWER_CHARS:,} characters without finishing a persona.",
                "Try again, or use a model that supports structured outputs.",
            )
        rate = self.tokens / (now - self.answer_start) if now > self.answer_start else 0.0
        events.append(TokenDelta(text, self.tokens, rate, self.index))
        if now - self.last_partial >= PARTIAL_INTERVAL:
            self.last_partial = now
            fields = parse_partial("".join(self.pieces))
            if fields:
                events.append(PartialPersona(fields, self.index))
        if now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            self.run.progress.streamed(self.index, self.tokens, rate)
            events.append(self.run.progress_event(self.index))
        return events

    # ----- the end -----

    def finish(self, now: float) -> tuple[list[Event], AttemptResult]:
        text = "".join(self.pieces)
        if self.answer_start is None:
            if self.thinking_since is not None:
                return [StageFinished(Stage.THINKING, now - self.thinking_since, self.index)], self.result(text)
            if self.life is None:
                return [StageFinished(Stage.CALLING, now - self.sent, self.index)], self.result(text)
            return [], self.result(text)
        events: list[Event] = []
        fields = parse_partial(text)
        if fields:
            events.append(PartialPersona(fields, self.index))
        events.append(StageFinished(Stage.STREAMING, now - self.answer_start, self.index))
        return events, self.result(text, stream_seconds=now - self.answer_start)

    def result(
        self,
        text: str = "",
        *,
        stream_seconds: float = 0.0,
        cancelled: bool = False,
        error: GenerationError | None = None,
    ) -> AttemptResult:
        first = None if self.life is None else self.life - self.sent
        thought = 0.0
        if self.thinking_since is not None and self.answer_start is not None:
            thought = self.answer_start - self.thinking_since
        return AttemptResult(text, self.tokens, first, stream_seconds, self.usage, cancelled, error, thought)


async def run_attempt(
    run: Run, spec: PromptSpec, index: int, number: int, planned: int, persona_start: float
) -> AsyncIterator[Event | AttemptResult]:
    """Send one request and follow its stream; the last item is the :class:`AttemptResult`.

    ``number`` is this attempt's and ``planned`` how many the persona may have in all.
    """
    provider, settings = run.provider, run.settings
    suffix = f" (attempt {number} of {planned})" if number > 1 else ""
    yield StageStarted(Stage.CALLING, f"{provider.label}{suffix}", index)
    sent = run.clock()
    attempt = _Attempt(run, index, persona_start, sent, sent, sent + settings.heartbeat_seconds)
    expected = run.progress.estimate.first_token
    yield RequestSent(provider.model, provider.endpoint, number, expected, index, settings.first_token_timeout, planned)
    try:
        arrivals = watch(provider.stream(spec), cancel=run.cancel, wake_at=attempt.wake_at, clock=run.clock)
        async with contextlib.aclosing(arrivals):
            async for arrival in arrivals:
                if isinstance(arrival, Stopped):
                    yield attempt.result(cancelled=True)
                    return
                now = run.clock()
                events = attempt.on_tick(now) if isinstance(arrival, Tick) else attempt.on_parts(arrival.parts, now)
                for event in events:
                    yield event
    except GenerationError as err:
        yield attempt.result(error=err)
        return
    events, result = attempt.finish(run.clock())
    for event in events:
        yield event
    yield result
