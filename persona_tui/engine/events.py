"""The typed events a generation yields, in the order a user lives them.

Every front end (the app, the headless CLI, the tests) draws from these alone.
Each event names the persona it belongs to by ``index`` (0-based within the
batch), so a batch can be shown persona by persona.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_tui.engine.errors import FailureKind
from persona_tui.models import PersonaRecord, Plan, Usage

if TYPE_CHECKING:
    from persona_tui.engine.diversity import DiversityReport


class Stage(StrEnum):
    """The stages of one persona's generation, in order."""

    PREPARING = "preparing"
    ORGANIZATION = "organization"
    ENRICHING = "enriching"
    PLANNING = "planning"
    PROMPT = "prompt"
    CALLING = "calling"
    THINKING = "thinking"
    """Only for a model that reasons before it answers."""
    STREAMING = "streaming"
    VALIDATING = "validating"
    SAVING = "saving"
    DONE = "done"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Stage.PREPARING: "Preparing request",
    Stage.ORGANIZATION: "Loading organization context",
    Stage.ENRICHING: "Fetching real-world context",
    Stage.PLANNING: "Planning the population",
    Stage.PROMPT: "Building prompt",
    Stage.CALLING: "Calling model",
    Stage.THINKING: "Model thinking",
    Stage.STREAMING: "Streaming tokens",
    Stage.VALIDATING: "Validating persona",
    Stage.SAVING: "Saving",
    Stage.DONE: "Done",
}


@dataclass(frozen=True, slots=True)
class StageStarted:
    stage: Stage
    detail: str = ""
    index: int = 0


@dataclass(frozen=True, slots=True)
class StageFinished:
    stage: Stage
    seconds: float
    index: int = 0
    note: str = ""
    """What the stage found, when that is worth a word ("3 sources")."""


@dataclass(frozen=True, slots=True)
class StageSkipped:
    stage: Stage
    reason: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class RequestSent:
    """The request left for the model; ``expected_first_token`` is learned from history."""

    model: str
    endpoint: str
    attempt: int
    expected_first_token: float
    index: int = 0
    timeout: float = 0.0
    """Seconds from now until the wait for the first token gives up (0: not said)."""
    max_attempts: int = 0
    """How many attempts this persona may have in all, as far as is known now (0: not said)."""


@dataclass(frozen=True, slots=True)
class FirstToken:
    seconds: float
    """Seconds from the request being sent to the first token."""
    index: int = 0


@dataclass(frozen=True, slots=True)
class TokenDelta:
    text: str
    """Untrusted model text: never parse it as markup, strip control sequences before drawing."""
    tokens: int
    tokens_per_second: float
    index: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """The model's reasoning as it arrives; ``text`` is empty when the server hides it."""

    text: str
    """Untrusted model text, like :attr:`TokenDelta.text`."""
    tokens: int
    """Reasoning pieces so far in this attempt (or the server's count, when it hides the text)."""
    seconds: float
    """Seconds spent thinking so far."""
    index: int = 0


@dataclass(frozen=True, slots=True)
class UsageReported:
    """The server's own token count for one request."""

    usage: Usage
    index: int = 0


@dataclass(frozen=True, slots=True)
class ServerNotice:
    """Something said beside the answer: by the server (untrusted text), or by the provider about the server."""

    text: str
    index: int = 0
    from_server: bool = True


@dataclass(frozen=True, slots=True)
class PartialPersona:
    fields: dict[str, Any]
    """The persona's fields parsed so far (the last string may be cut short)."""
    index: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    fraction: float
    """Progress of the whole batch, 0..1; never goes backwards, 1.0 only once all are saved."""
    elapsed: float
    eta: float | None
    """Estimated seconds left for the batch, or None when unknown."""
    persona_fraction: float = 0.0
    index: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    elapsed: float
    idle: float
    """Seconds since the last token (or since the request was sent)."""
    index: int = 0


@dataclass(frozen=True, slots=True)
class SlowWarning:
    elapsed: float
    threshold: float
    index: int = 0


@dataclass(frozen=True, slots=True)
class Retrying:
    attempt: int
    """The attempt about to start (2 for the first retry)."""
    max_attempts: int
    delay: float
    reason: str
    index: int = 0
    adapted: bool = False
    """Not a fault: the request was changed to suit the server (a parameter left out, a step down the
    structured-output ladder) and goes again at once."""


@dataclass(frozen=True, slots=True)
class PersonaSaved:
    record: PersonaRecord
    path: Path
    seconds: float
    tokens: int
    tokens_per_second: float
    """Streaming rate from the first token to the last."""
    index: int = 0
    usage: Usage | None = None
    """The server's count over every attempt, when it gave one (also kept in the record)."""


@dataclass(frozen=True, slots=True)
class PlanDrawn:
    """The batch's population plan, drawn before the first call: one slot per persona."""

    plan: Plan
    run_id: str = ""


@dataclass(frozen=True, slots=True)
class SlotBroken:
    """A persona still left its slot after the one correction; it is kept, and the report counts it."""

    breaks: tuple[str, ...]
    index: int = 0


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """Persona ``index`` reads almost like ``other``, already made: it is written again, once, unless ``kept``."""

    other: str
    """The other persona's name (model text: untrusted)."""
    similarity: float
    index: int = 0
    kept: bool = False


@dataclass(frozen=True, slots=True)
class PersonaReplaced:
    """A near-duplicate was written again: ``new`` is saved, ``old`` removed."""

    old: PersonaRecord
    new: PersonaRecord
    index: int = 0


@dataclass(frozen=True, slots=True)
class DiversityReported:
    """How diverse the batch came out, at its end."""

    report: DiversityReport


@dataclass(frozen=True, slots=True)
class Failed:
    kind: FailureKind
    message: str
    hint: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class Cancelled:
    elapsed: float
    saved: tuple[PersonaRecord, ...] = ()
    discarded: bool = False
    """Not a cancel but a choice: a refinement the user saw and discarded."""


@dataclass(frozen=True, slots=True)
class Summary:
    saved: tuple[PersonaRecord, ...]
    failed: int
    """Personas not saved (not cancelled), the ones never started included."""
    cancelled: bool
    seconds: float
    tokens: int
    not_started: int = 0
    """Of ``failed``: personas never started, because a failure that would hit them all came first."""
    report: DiversityReport | None = None
    """The batch's diversity report (None when nothing was saved)."""
    run_id: str = ""
    already: int = 0
    """Of a resumed run: personas saved before this session (not in ``saved``)."""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled


@dataclass(frozen=True, slots=True)
class Finished:
    summary: Summary = field()


@dataclass(frozen=True, slots=True)
class AnswerDone:
    """A persona answered (in an interview, or lane ``index`` of a focus group)."""

    persona_id: str
    text: str
    """Untrusted model text, like :attr:`TokenDelta.text`."""
    seconds: float
    tokens: int
    tokens_per_second: float
    index: int = 0
    usage: Usage | None = None
    flags: tuple[str, ...] = ()
    """What the rule pass found in the answer that contradicts the persona's fields."""
    name: str = ""
    """The persona's name (model text: untrusted)."""


@dataclass(frozen=True, slots=True)
class TalkFinished:
    """The end of one question's answers: how many came, failed or were stopped."""

    answered: int
    failed: int
    cancelled: bool
    seconds: float
    tokens: int
    count: int = 1

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled


Event = (
    StageStarted
    | StageFinished
    | StageSkipped
    | RequestSent
    | FirstToken
    | TokenDelta
    | ReasoningDelta
    | UsageReported
    | ServerNotice
    | PartialPersona
    | Progress
    | Heartbeat
    | SlowWarning
    | Retrying
    | PersonaSaved
    | PlanDrawn
    | SlotBroken
    | NearDuplicate
    | PersonaReplaced
    | DiversityReported
    | Failed
    | Cancelled
    | Finished
    | AnswerDone
    | TalkFinished
)
