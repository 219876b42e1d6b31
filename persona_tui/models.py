"""The data the engine works with: what the user asks for, what the model writes,
and the record that is saved.

The JSON schema sent to the model is derived from :class:`Persona`, so the
contract with the model and the validation of its answer can never drift apart.
"""

from __future__ import annotations

import copy
import difflib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

DESCRIPTION_MAX = 4000
COUNT_MAX = 10_000
RECORD_KIND = "persona-tui/persona"
SCHEMA_VERSION = 1

TechSavviness = Literal["novice", "basic", "intermediate", "advanced", "expert"]
TECH_LEVELS: tuple[TechSavviness, ...] = ("novice", "basic", "intermediate", "advanced", "expert")
LifeStage = Literal["child", "student", "working", "parent", "retired"]
LIFE_STAGES: tuple[LifeStage, ...] = ("child", "student", "working", "parent", "retired")
"""In the order of the ages they usually come at."""
PRONOUNS = ("she/her", "he/him", "they/them")
KNOWN_PRONOUNS = (
    *PRONOUNS, "she/they", "he/they", "they/she", "they/he", "xe/xem", "ze/zir", "ze/hir", "ey/em", "fae/faer",
    "it/its", "any/all",
)  # fmt: skip
"""Pronouns a mix or a pin may name; others are most likely typos ("shee/her")."""
PINNABLE = ("age", "pronouns", "location", "occupation", "tech_savviness", "communication_style")
"""Persona fields a user may pin to one value for a whole batch (not the name: names never repeat in a batch)."""

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class Persona(BaseModel):
    """The part of a persona the model writes.

    Field descriptions are part of the prompt: they reach the model through the
    JSON schema, so they say what a good value looks like.
    """

    model_config = ConfigDict(extra="ignore")

    name: ShortText = Field(description="Full name, plausible for the persona's location and age.")
    age: int = Field(ge=0, le=120, description="Age in years.")
    pronouns: ShortText = Field(description="Pronouns, for example she/her, he/him or they/them.")
    location: ShortText = Field(description="City or region, and country.")
    occupation: ShortText = Field(description="Job title or main occupation.")
    background: LongText = Field(description="A short story of two to four sentences: life, work and context.")
    goals: list[ShortText] = Field(min_length=1, max_length=8, description="Two to four concrete goals.")
    frustrations: list[ShortText] = Field(min_length=1, max_length=8, description="Two to four concrete frustrations.")
    personality_traits: list[ShortText] = Field(min_length=1, max_length=8, description="Three to five traits.")
    tech_savviness: TechSavviness = Field(description="How comfortable the persona is with technology.")
    communication_style: ShortText = Field(description="How the persona talks and writes, in one sentence.")
    quote: ShortText = Field(description="Something the persona would say, in their own voice.")


PERSONA_FIELDS: tuple[str, ...] = tuple(Persona.model_fields)


class RequestInfo(BaseModel):
    """The request a persona came from, kept in its record."""

    description: str
    organization: str | None = None
    """The organization's name, as it was when the persona was made."""
    organization_id: str | None = None
    enrich: bool = False
    mix: Mix | None = Field(default=None, exclude_if=lambda value: value is None)
    """How the user shaped the batch, when they did (left out of the file when not: a field set on every
    loaded record costs memory across thousands)."""


class Source(BaseModel):
    """A web page whose excerpt grounded a persona (from the enrichment stage)."""

    title: str
    url: str
    excerpt: str = ""


ORG_KIND = "persona-tui/organization"
OrgText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class Organization(BaseModel):
    """Who personas are for: what a persona writer should know about the organization."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["persona-tui/organization"] = "persona-tui/organization"
    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    industry: OrgText = ""
    product: OrgText = ""
    audience: OrgText = ""
    region: OrgText = ""
    notes: OrgText = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    CONTEXT_FIELDS: ClassVar[tuple[str, ...]] = ("industry", "product", "audience", "region", "notes")

    def context(self) -> str:
        """The organization as the prompt tells it."""
        lines = [f"Organization: {self.name}"]
        lines += [f"{key.capitalize()}: {getattr(self, key)}" for key in self.CONTEXT_FIELDS if getattr(self, key)]
        return "\n".join(lines)


class Usage(BaseModel):
    """Token counts as the server reported them (absent when it reports none)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    """Every token the model wrote, its reasoning included."""
    reasoning_tokens: int = Field(default=0, ge=0)
    """The part of ``completion_tokens`` spent thinking, shown or hidden."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class PersonaRecord(BaseModel):
    """A saved persona: the model's answer plus where and how it was made."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["persona-tui/persona"] = "persona-tui/persona"
    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    provider: str
    model: str
    request: RequestInfo
    generation_seconds: float = Field(ge=0)
    tokens: int = Field(ge=0)
    persona: Persona
    sources: list[Source] = Field(default_factory=list)
    """The web pages that grounded the persona, when enrichment was on."""
    usage: Usage | None = None
    """What the server counted for this persona over every attempt, when it said."""
    slot: Slot | None = Field(default=None, exclude_if=lambda value: value is None)
    """The persona's slot in its batch's population plan."""
    run_id: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """The run (one ``generate``) the persona was made in."""
    versions: list[Version] | None = Field(default=None, exclude_if=lambda value: value is None)
    """The persona's earlier versions, oldest first, each with how it was changed into the next (an edit,
    a refinement, a regeneration); None for a persona never changed (older files have no such field)."""

    @property
    def version_count(self) -> int:
        """How many versions the persona has had, this one included."""
        return len(self.versions or ()) + 1

    def with_change(self, persona: Persona, how: ChangeKind, note: str = "", **update: Any) -> PersonaRecord:
        """This record with ``persona`` in place of its own, the earlier version kept in ``versions``."""
        earlier = Version(
            persona=self.persona,
            how=how,
            note=note,
            changed=changed_fields(self.persona, persona),
            provider=self.provider,
            model=self.model,
        )
        return self.model_copy(update={"persona": persona, "versions": [*(self.versions or ()), earlier], **update})

    def summary(self) -> dict[str, Any]:
        """A flat row for tables and CSV export."""
        p = self.persona
        return {
            "id": self.id,
            "name": p.name,
            "age": p.age,
            "pronouns": p.pronouns,
            "occupation": p.occupation,
            "location": p.location,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "provider": self.provider,
            "model": self.model,
        }


ChangeKind = Literal["edit", "refine", "regenerate"]
CHANGE_WORDS: dict[str, str] = {"edit": "edited", "refine": "refined", "regenerate": "regenerated"}


class Version(BaseModel):
    """An earlier version of a persona, and how it was changed into the next one."""

    model_config = ConfigDict(extra="ignore")

    persona: Persona
    how: ChangeKind
    """What made the next version: the user's edit, a refinement by instruction, or a regeneration."""
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    """When the next version replaced this one."""
    note: str = ""
    """The instruction of a refinement."""
    changed: list[str] = Field(default_factory=list)
    """The persona's fields the change touched."""
    provider: str = ""
    model: str = ""
    """Who wrote this version."""


def changed_fields(old: Persona, new: Persona) -> list[str]:
    """The fields whose values differ between two personas, in the persona's order."""
    return [name for name in PERSONA_FIELDS if getattr(old, name) != getattr(new, name)]


Weight = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Mix(BaseModel):
    """How the user shapes a batch's population. Anything left out is spread by default.

    Weights are relative (``{"she/her": 60, "he/him": 40}`` and ``{"she/her": 3, "he/him": 2}``
    are the same mix); a key left out of a weighted mix gets none of the batch.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ages: tuple[Annotated[int, Field(ge=0, le=120)], Annotated[int, Field(ge=0, le=120)]] | None = None
    pronouns: dict[ShortText, Weight] = Field(default_factory=dict)
    tech: dict[TechSavviness, Weight] = Field(default_factory=dict)
    stages: dict[LifeStage, Weight] = Field(default_factory=dict)
    places: tuple[ShortText, ...] = ()
    """Places to spread the batch over, instead of (or more precisely than) the description's."""
    occupations: tuple[ShortText, ...] = ()
    pins: dict[str, ShortText] = Field(default_factory=dict)
    """Persona fields every persona of the batch has, e.g. ``{"location": "Nairobi, Kenya"}``."""
    seed: int | None = Field(default=None, ge=0)

    @field_validator("ages")
    @classmethod
    def _ordered(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"the youngest age ({value[0]}) is above the oldest ({value[1]})")
        return value

    @field_validator("pronouns")
    @classmethod
    def _pronouns(cls, value: dict[str, float]) -> dict[str, float]:
        _known_pronouns(value)
        return value

    @field_validator("pins")
    @classmethod
    def _pinnable(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in PINNABLE:
                raise ValueError(f"{key!r} cannot be pinned; these can: {', '.join(PINNABLE)}")
        if "age" in value and not (value["age"].isdigit() and int(value["age"]) <= 120):
            raise ValueError(f"a pinned age must be a whole number from 0 to 120, got {value['age']!r}")
        if "pronouns" in value:
            _known_pronouns([value["pronouns"]])
        if "tech_savviness" in value and value["tech_savviness"] not in TECH_LEVELS:
            raise ValueError(f"tech_savviness must be one of {', '.join(TECH_LEVELS)}")
        return value

    def is_empty(self) -> bool:
        return self == Mix()


def _known_pronouns(values: Iterable[str]) -> None:
    for pronouns in values:
        if pronouns.strip().lower() not in KNOWN_PRONOUNS:
            near = difflib.get_close_matches(pronouns.lower(), KNOWN_PRONOUNS, n=1, cutoff=0.6)
            guess = f" (did you mean {near[0]}?)" if near else f"; use one of {', '.join(KNOWN_PRONOUNS)}"
            raise ValueError(f"{pronouns!r} are not pronouns I know{guess}")


class Slot(BaseModel):
    """One persona's place in a population plan: what its prompt asks for, and what it is checked against."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    index: int = Field(ge=0)
    age: int = Field(ge=0, le=120)
    ages: tuple[int, int]
    """The slot's stratum of the batch's age range: an age within it holds the plan."""
    pronouns: str
    location: str | None = None
    """None: the writer chooses (the description names no place)."""
    occupation: str | None = None
    """None: the writer chooses (the description names no job)."""
    tech_savviness: TechSavviness
    life_stage: LifeStage
    pins: dict[str, str] = Field(default_factory=dict)


class Plan(BaseModel):
    """A batch's population, drawn in code before the first call: one slot per persona."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    seed: int
    slots: tuple[Slot, ...]
    mix: Mix = Field(default_factory=Mix)
    sources: dict[str, str] = Field(default_factory=dict)
    """Where each dimension came from, in words: ``{"places": "the organization's region (Kenya)"}``."""
    warnings: tuple[str, ...] = ()
    """What in the plan contradicts itself ("3 slots younger than Bus Driver usually starts (18)")."""


RUN_KIND = "persona-tui/run"


class BatchInfo(BaseModel):
    """A run sent through a Batch API: the server's batch and files, so another process can pick it up."""

    model_config = ConfigDict(extra="ignore")

    id: str
    input_file_id: str
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    collected: bool = False
    """Its answers are saved: a resume makes what is left anew."""

    @property
    def pending(self) -> bool:
        """A batch whose answers are still to be collected (by this process or a resume)."""
        return not self.collected


class RunRecord(BaseModel):
    """One generation (a batch): what was asked, its population plan, and the personas it made."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["persona-tui/run"] = "persona-tui/run"
    schema_version: int = SCHEMA_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    provider: str
    model: str
    request: RequestInfo
    count: int = Field(ge=1)
    plan: Plan | None = None
    persona_ids: list[str] = Field(default_factory=list)
    """The personas the run saved (those replaced as near-duplicates are left out)."""
    replaced: list[str] = Field(default_factory=list)
    """Ids of near-duplicates the run regenerated and removed."""
    seed: int | None = None
    """The seed setting the run was started with (its plan keeps the seed it was drawn with)."""
    saved: dict[int, str] = Field(default_factory=dict)
    """The manifest: persona ``index`` -> the id of the persona saved for it."""
    failed: dict[int, str] = Field(default_factory=dict)
    """Persona ``index`` -> the kind of failure that ended it (tried again on resume)."""
    in_flight: list[int] = Field(default_factory=list)
    """Indexes being made when the manifest was last written; the rest are planned."""
    stopped: bool = False
    """The run ended before every persona was tried (cancelled); resume continues it."""
    pid: int | None = None
    pid_start: int | None = None
    """When that process started (Linux): a later process given the same pid is not this run."""
    """The process making it, while it runs."""
    batch: BatchInfo | None = None
    """The Batch API batch doing the run's work (``generate --batch-api``), while there is one."""

    def to_request(self) -> GenerationRequest:
        """The request that started the run (to continue it)."""
        info = self.request
        return GenerationRequest(
            description=info.description,
            count=self.count,
            organization=info.organization,
            enrich=info.enrich,
            mix=info.mix or Mix(),
        )

    @property
    def complete(self) -> bool:
        """Every persona of the run is saved (or it is a legacy record that finished without a manifest)."""
        if self.finished_at is not None and not self.saved and not self.failed and not self.stopped:
            return True
        return len(self.saved) >= self.count


class RequestError(ValueError):
    """A request the user must fix before anything is sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class GenerationRequest(BaseModel):
    """What the user asked for, validated before any network call."""

    model_config = ConfigDict(frozen=True)

    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX)
    count: int = Field(default=1, ge=1, le=COUNT_MAX)
    organization: str | None = None
    """An organization's name; its context goes into the prompt."""
    enrich: bool = False
    """Ground the personas in web search results (Exa) first."""
    mix: Mix = Field(default_factory=Mix)
    """How the user shaped the population plan (empty: spread everything by default)."""

    @field_validator("description", mode="before")
    @classmethod
    def _trim(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @classmethod
    def create(
        cls,
        description: str,
        count: int = 1,
        organization: str | None = None,
        enrich: bool = False,
        mix: Mix | None = None,
    ) -> GenerationRequest:
        """Validate user input, raising :class:`RequestError` with a message that says what is allowed."""
        try:
            return cls(
                description=description,
                count=count,
                organization=organization or None,
                enrich=enrich,
                mix=mix or Mix(),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "request"
            raise RequestError(field, _explain(field, description, count)) from None


def _explain(field: str, description: object, count: object) -> str:
    if field == "description":
        if not isinstance(description, str) or not description.strip():
            return "The description is empty: describe the people you want, for example 'nurses in rural Kenya'."
        length = len(description.strip())
        return f"The description is {length:,} characters long; at most {DESCRIPTION_MAX:,} are allowed."
    if field == "count":
        return f"The count must be a whole number from 1 to {COUNT_MAX:,} (got {count!r})."
    return f"The {field} is not valid."


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form strict structured outputs accept.

    Every object lists all its properties as required and forbids others;
    titles and defaults, which strict mode rejects or ignores, are removed.
    """
    schema = copy.deepcopy(model.model_json_schema())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("title", None)
            node.pop("default", None)
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return schema


def plain_reason(exc: ValidationError) -> tuple[str, str]:
    """The first problem pydantic found, as (field, reason) in plain words: "name", "must not be empty"."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    ctx = first.get("ctx") or {}
    kind = first["type"]
    if kind == "string_too_short":
        reason = (
            "must not be empty" if ctx.get("min_length") == 1 else f"needs at least {ctx.get('min_length')} characters"
        )
    elif kind == "string_too_long":
        reason = f"must be at most {ctx.get('max_length')} characters"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        reason = "must be a whole number"
    elif kind in ("string_type",):
        reason = "must be text"
    elif kind == "missing":
        reason = "is missing"
    elif kind in ("less_than_equal", "greater_than_equal"):
        reason = (
            f"must be at most {ctx.get('le')}" if kind == "less_than_equal" else f"must be at least {ctx.get('ge')}"
        )
    elif kind in ("too_short", "too_long"):
        reason = f"must have {ctx.get('min_length', 1)} to {ctx.get('max_length', 'any number of')} items"
    else:
        message = str(first["msg"])
        reason = message[:1].lower() + message[1:]
    return field, reason
