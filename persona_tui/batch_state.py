"""What a run looks like so far, folded from its events: one state for every front end.

:class:`BatchState` is a reducer: :meth:`BatchState.apply` takes one engine
event and the time it arrived, and updates plain fields (the stage, the stage
checklist, the fraction done, the predicted total, the retry countdown, the
outcome) and one :class:`Lane` per persona in flight. The app's panel draws it
on its clock, the headless renderer keeps its bars from it, and tests drive it
with hand-made events and no terminal at all. It holds no words (those are in
:mod:`persona_tui.narrate`) and imports neither Textual nor rich.

``apply`` sits on the hot path (thousands of token events a second), so each
event costs one dictionary lookup and a few assignments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from persona_tui.engine import events as ev
from persona_tui.engine.events import Stage

PER_PERSONA = frozenset({Stage.PROMPT, Stage.CALLING, Stage.THINKING, Stage.STREAMING, Stage.VALIDATING, Stage.SAVING})
"""Stages each persona of a batch goes through; the others (preparing, organization,
enriching) happen once for the whole run. Per-persona lines carry the persona's number,
and a batch's per-persona bars show these stages instead of a line each."""

CHECKLIST = tuple(s for s in Stage if s not in (Stage.DONE, Stage.THINKING))
"""The stages every run lists; thinking joins them only when the model thinks (see
:meth:`BatchState.checklist`)."""

AGGREGATE_ABOVE = 12
"""Above this many personas in flight a batch is drawn as a whole (see :class:`Aggregate`), not a row each."""
SLOWEST = 3
"""How many of the slowest personas in flight the aggregate view still shows one by one."""
QUIET_AFTER = 1.0
"""Seconds without a sign of life after which a persona counts as slow for its silence, not its fraction."""

Outcome = ev.PersonaSaved | ev.Failed | ev.Cancelled | ev.Finished
"""The event that says how things ended, as the panel shows it."""


@dataclass(slots=True)
class StageState:
    status: str = "pending"
    """pending, active, done, skipped or failed."""
    seconds: float = 0.0
    note: str = ""
    tokens: int = 0
    """For the thinking stage: the reasoning tokens (the server's count once it gives one)."""


@dataclass(slots=True)
class Lane:
    """One persona in flight: the panel's row and the headless renderer's bar."""

    stage: Stage = Stage.PROMPT
    tokens: int = 0
    rate: float = 0.0
    reasoning_tokens: int = 0
    reasoning_seconds: float = 0.0
    """Seconds of thinking the last reasoning event reported (for its rate)."""
    thinking_since: float | None = None
    thinking_detail: str = ""
    """The thinking stage's detail: empty when the reasoning is shown, else why it is not."""
    fraction: float = 0.0
    waiting_since: float | None = None
    """When the request left, until the first answer token."""
    timeout: float = 0.0
    """Seconds the request may wait for its first token (0: not said)."""
    model: str = ""
    """The model the request went to, until the next stage starts."""
    idle: float | None = None
    """Seconds of silence the last heartbeat reported, until something arrives."""
    heard: float | None = None
    """When this persona last showed a sign of life (a stage, the request, a token, its thinking)."""


PER_PERSONA_ORDER = tuple(s for s in Stage if s in PER_PERSONA)
"""A persona's stages in the order it goes through them."""


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A big batch's personas in flight, taken together (:meth:`BatchState.aggregate`)."""

    stages: tuple[tuple[Stage, int], ...]
    """How many personas are in each stage, in the order of the stages, leaving out the empty ones."""
    rate: float
    """Tokens a second across every persona that streams."""
    slowest: tuple[tuple[int, Lane], ...]
    """The personas that lag most, with their index, the slowest first."""


def slowest_lanes(lanes: dict[int, Lane], now: float, count: int = SLOWEST) -> tuple[tuple[int, Lane], ...]:
    """The ``count`` personas that lag most: the longest silent first (silent for more than
    :data:`QUIET_AFTER`), then the least far along; ties go to the earlier persona, so the rows
    stay put while nothing changes."""

    def lag(item: tuple[int, Lane]) -> tuple[float, float, int]:
        index, lane = item
        silent = now - lane.heard if lane.heard is not None else 0.0
        return (-silent if silent > QUIET_AFTER else 0.0, lane.fraction, index)

    return tuple(sorted(lanes.items(), key=lag)[:count])


@dataclass(slots=True)
class BatchState:
    """A run's state, from ``begin`` to ``Finished``; see the module's docstring."""

    count: int = 1
    index: int = 0
    """The persona the single-persona view follows (the latest to start a stage)."""
    stage: Stage | None = None
    detail: str = ""
    stages: dict[Stage, StageState] = field(default_factory=lambda: {s: StageState() for s in CHECKLIST})
    started: float = 0.0
    fraction: float = 0.0
    predicted_total: float | None = None
    expected_first_token: float | None = None
    first_token_timeout: float = 0.0
    """Seconds the current request may wait for its first token (0: not said)."""
    waiting_since: float | None = None
    """Since the request left or the last token came; None while nothing is awaited."""
    tokens: int = 0
    rate: float = 0.0
    reasoning_tokens: int = 0
    reasoning_seconds: float = 0.0
    thinking_since: float | None = None
    thinking_detail: str = ""
    slow_after: float | None = None
    retry_until: float | None = None
    retry: ev.Retrying | None = None
    step: ev.Retrying | None = None
    """The last step that suited the request to the server, until its first token (or the next persona)."""
    outcome: Outcome | None = None
    saved: int = 0
    failed: int = 0
    lanes: dict[int, Lane] = field(default_factory=dict)
    frozen_elapsed: float | None = None
    running: bool = False
    wide: bool = False
    """More than :data:`AGGREGATE_ABOVE` personas have been in flight at once: the batch is drawn as a
    whole until it ends (not a row each whenever a few personas fewer are in flight)."""

    @classmethod
    def begin(cls, count: int, now: float, already: int = 0) -> BatchState:
        """A run that starts now, shown as preparing before its first event arrives; ``already`` of its
        ``count`` personas were saved before (a resumed run)."""
        state = cls(count=count, started=now, stage=Stage.PREPARING, detail="Validating the request", running=True)
        state.saved = already
        return state

    @property
    def is_batch(self) -> bool:
        return self.count > 1

    def elapsed(self, now: float) -> float:
        if self.frozen_elapsed is not None:
            return self.frozen_elapsed
        return now - self.started if self.started else 0.0

    @property
    def aggregated(self) -> bool:
        """Whether the batch is drawn as a whole: more than :data:`AGGREGATE_ABOVE` personas have been in
        flight at once in this run."""
        return self.wide

    def aggregate(self, now: float, slowest: int = SLOWEST) -> Aggregate:
        """The personas in flight taken together: how many are in each stage, their tokens a second
        summed, and the ``slowest`` that lag most (see :func:`slowest_lanes`)."""
        stages = dict.fromkeys(PER_PERSONA_ORDER, 0)
        rate = 0.0
        for lane in self.lanes.values():
            stages[lane.stage] = stages.get(lane.stage, 0) + 1
            if lane.stage is Stage.STREAMING:
                rate += lane.rate
        counts = tuple((stage, n) for stage, n in stages.items() if n)
        return Aggregate(counts, rate, slowest_lanes(self.lanes, now, slowest))

    def checklist(self) -> list[Stage]:
        """The stages to list, in order: thinking only if it happened for the current persona."""
        if Stage.THINKING not in self.stages:
            return list(CHECKLIST)
        calling = CHECKLIST.index(Stage.CALLING) + 1
        return [*CHECKLIST[:calling], Stage.THINKING, *CHECKLIST[calling:]]

    def apply(self, event: ev.Event, now: float) -> None:
        """Fold one event in; ``now`` is when it arrived, on the clock the front end draws with."""
        fold = _FOLDS.get(type(event))
        if fold is not None:
            fold(self, event, now)

    def _lane(self, index: int) -> Lane:
        lane = self.lanes.get(index)
        if lane is None:
            lane = self.lanes[index] = Lane()
            if len(self.lanes) > AGGREGATE_ABOVE:
                self.wide = True
        return lane

    # ----- one method per event type -----

    def _stage_started(self, event: ev.StageStarted, now: float) -> None:
        stage = event.stage
        if event.index != self.index or stage is Stage.PROMPT:
            self.index = event.index
            if stage is Stage.PROMPT:  # a new persona: its stages start over
                self.step = None
                for later in CHECKLIST[CHECKLIST.index(Stage.PROMPT) :]:
                    self.stages[later] = StageState()
                self.stages.pop(Stage.THINKING, None)
        self.stage, self.detail = stage, event.detail
        self.stages[stage] = StageState("active")
        if stage not in (Stage.CALLING, Stage.STREAMING):
            self.waiting_since = None
        if stage is Stage.CALLING:
            self.tokens, self.rate, self.reasoning_tokens, self.reasoning_seconds = 0, 0.0, 0, 0.0
        elif stage is Stage.THINKING:
            self.thinking_since, self.thinking_detail = now, event.detail
        if stage in PER_PERSONA and event.index >= 0:  # below 0: the whole run's (a Batch API batch), no lane
            lane = self._lane(event.index)
            lane.stage, lane.model, lane.idle, lane.heard = stage, "", None, now
            if stage is Stage.CALLING:
                lane.tokens, lane.rate, lane.reasoning_tokens, lane.reasoning_seconds = 0, 0.0, 0, 0.0
            elif stage is Stage.THINKING:
                lane.thinking_since, lane.thinking_detail = now, event.detail

    def _stage_finished(self, event: ev.StageFinished, now: float) -> None:
        self.stages[event.stage] = StageState("done", event.seconds)
        if event.stage is Stage.STREAMING:
            self.waiting_since = None
        elif event.stage is Stage.THINKING:
            self.thinking_since = None
            self.stages[Stage.THINKING].tokens = self.reasoning_tokens

    def _stage_skipped(self, event: ev.StageSkipped, now: float) -> None:
        self.stages[event.stage] = StageState("skipped", note=event.reason)

    def _request_sent(self, event: ev.RequestSent, now: float) -> None:
        self.waiting_since = now
        self.expected_first_token, self.first_token_timeout = event.expected_first_token, event.timeout
        self.retry_until = None
        self.detail = f"{event.model} at {event.endpoint}"
        lane = self._lane(event.index)
        lane.waiting_since, lane.model, lane.idle, lane.timeout = now, event.model, None, event.timeout
        lane.heard = now

    def _first_token(self, event: ev.FirstToken, now: float) -> None:
        self.waiting_since = self.step = None

    def _token(self, event: ev.TokenDelta, now: float) -> None:
        self.tokens, self.rate, self.waiting_since = event.tokens, event.tokens_per_second, now
        lane = self.lanes.get(event.index) or self._lane(event.index)
        lane.tokens, lane.rate, lane.waiting_since, lane.idle = event.tokens, event.tokens_per_second, None, None
        lane.heard = now

    def _reasoning(self, event: ev.ReasoningDelta, now: float) -> None:
        # Not a wait: the model is working, so the "still waiting" hints stay quiet while it thinks.
        self.reasoning_tokens, self.reasoning_seconds = event.tokens, event.seconds
        lane = self.lanes.get(event.index) or self._lane(event.index)
        lane.reasoning_tokens, lane.reasoning_seconds, lane.idle = event.tokens, event.seconds, None
        lane.heard = now

    def _usage(self, event: ev.UsageReported, now: float) -> None:
        """The server's count of the reasoning, which arrives after the thinking stage has ended."""
        thought = event.usage.reasoning_tokens
        if thought and event.index == self.index and Stage.THINKING in self.stages:
            self.stages[Stage.THINKING].tokens = thought

    def _progress(self, event: ev.Progress, now: float) -> None:
        self.fraction = max(self.fraction, event.fraction)
        if event.eta is not None:
            self.predicted_total = event.elapsed + event.eta
        lane = self.lanes.get(event.index)
        if lane is not None:
            lane.fraction = max(lane.fraction, event.persona_fraction)

    def _heartbeat(self, event: ev.Heartbeat, now: float) -> None:
        lane = self.lanes.get(event.index)
        if lane is not None:
            lane.idle = event.idle

    def _slow(self, event: ev.SlowWarning, now: float) -> None:
        self.slow_after = event.threshold

    def _retrying(self, event: ev.Retrying, now: float) -> None:
        if event.adapted:  # not a fault: the request was suited to the server and goes again at once
            self.step = event
            return
        self.retry_until, self.retry, self.step = now + event.delay, event, None
        self.stages[Stage.CALLING] = StageState("failed", note="retrying")

    def _saved(self, event: ev.PersonaSaved, now: float) -> None:
        self.saved += 1
        self.outcome = event
        self.lanes.pop(event.index, None)

    def _failed(self, event: ev.Failed, now: float) -> None:
        self.failed += 1
        if self.stage is not None and self.stage in self.stages:
            self.stages[self.stage] = StageState("failed")
        self.outcome = event
        self.lanes.pop(event.index, None)

    def _cancelled(self, event: ev.Cancelled, now: float) -> None:
        if self.stage is not None and self.stages.get(self.stage, StageState()).status == "active":
            self.stages[self.stage] = StageState("failed", note="discarded" if event.discarded else "cancelled")
        self.outcome = event

    def _answered(self, event: ev.AnswerDone, now: float) -> None:
        self.saved += 1
        self.lanes.pop(event.index, None)

    def _talk_finished(self, event: ev.TalkFinished, now: float) -> None:
        self.frozen_elapsed = event.seconds
        self.lanes.clear()
        if event.ok:
            self.stage, self.fraction = Stage.DONE, 1.0
        self.running = False

    def _finished(self, event: ev.Finished, now: float) -> None:
        summary = event.summary
        self.frozen_elapsed = summary.seconds
        self.lanes.clear()  # whatever is still in flight ended with the run, or never started
        if self.is_batch and not summary.cancelled:
            self.outcome = event
        if summary.ok:
            self.stage, self.fraction = Stage.DONE, 1.0
        self.running = False


_FOLDS: dict[type, Callable[[BatchState, Any, float], None]] = {
    ev.StageStarted: BatchState._stage_started,
    ev.StageFinished: BatchState._stage_finished,
    ev.StageSkipped: BatchState._stage_skipped,
    ev.RequestSent: BatchState._request_sent,
    ev.FirstToken: BatchState._first_token,
    ev.TokenDelta: BatchState._token,
    ev.ReasoningDelta: BatchState._reasoning,
    ev.UsageReported: BatchState._usage,
    ev.Progress: BatchState._progress,
    ev.Heartbeat: BatchState._heartbeat,
    ev.SlowWarning: BatchState._slow,
    ev.Retrying: BatchState._retrying,
    ev.PersonaSaved: BatchState._saved,
    ev.Failed: BatchState._failed,
    ev.Cancelled: BatchState._cancelled,
    ev.Finished: BatchState._finished,
    ev.AnswerDone: BatchState._answered,
    ev.TalkFinished: BatchState._talk_finished,
}
"""Events with no entry (partial personas, notices) change nothing here."""
