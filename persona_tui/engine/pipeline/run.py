"""What every persona of one generation shares: its inputs, the clock, progress, and the batch's verdicts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from persona_tui.config import Settings
from persona_tui.engine.diversity import SimilarityIndex
from persona_tui.engine.estimate import EstimateBook, ProgressModel
from persona_tui.engine.events import Progress
from persona_tui.engine.pipeline.names import TakenNames
from persona_tui.engine.pipeline.retry import RateGate
from persona_tui.engine.pipeline.rewrite import Rewrite
from persona_tui.engine.providers.base import Provider
from persona_tui.models import GenerationRequest, Organization, PersonaRecord, Plan, RunRecord, Source
from persona_tui.storage import OrganizationStore, PersonaStore, RunStore


@dataclass(slots=True)
class Run:
    """One call of ``generate()``. The personas' jobs read it; only the batch-wide verdicts change."""

    request: GenerationRequest
    provider: Provider
    store: PersonaStore
    settings: Settings
    estimates: EstimateBook
    progress: ProgressModel
    cancel: asyncio.Event | None = None
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    """Measures every duration; a test may pass a fake one (timeouts still wait in real time)."""
    existing: list[PersonaRecord] | None = None
    """Personas already saved; None means read them from the store."""
    organizations: OrganizationStore | None = None
    start: float = 0.0
    org: Organization | None = None
    sources: list[Source] = field(default_factory=list)
    names: TakenNames = field(default_factory=TakenNames)
    similar: SimilarityIndex = field(default_factory=SimilarityIndex)
    """The run's personas so far (claimed with their names), for the near-duplicate check before a save."""
    plan: Plan | None = None
    """The population plan: persona ``i`` has slot ``i``."""
    run_id: str = ""
    record: RunRecord | None = None
    """The run as it is recorded in the runs folder (with ``runs``)."""
    runs: RunStore | None = None
    rewrite: Rewrite | None = None
    earlier: list[PersonaRecord] = field(default_factory=list)
    """On resume: the run's personas saved before this session, for the near-duplicate check and the report."""
    """Near-duplicates being written again (persona ``i`` replaces ``rewrite.records[i]``)."""
    replaced: set[int] = field(default_factory=set)
    """Of a rewrite: the indexes whose new persona was saved."""
    gate: RateGate = field(init=False)
    halted: bool = False
    """A fault that will hit every persona (a rejected key, a full disk): start no more."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """Failures already told, so parallel streams hitting the same fault say it once."""
    todo: list[int] = field(default_factory=list)
    """The persona indexes to make (all of them, or on resume those with no persona saved)."""
    done: dict[int, str] = field(default_factory=dict)
    """On resume: persona index -> the id already saved for it."""
    in_flight: set[int] = field(default_factory=set)
    failures: dict[int, str] = field(default_factory=dict)
    """Persona index -> the kind of the failure that ended it."""
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    """The manifest has news to write."""
    batch_output: str | None = None
    """An output file of a Batch API made elsewhere, whose answers are saved instead of asking anyone."""

    def __post_init__(self) -> None:
        self.gate = RateGate(self.clock)

    @property
    def slow_after(self) -> float:
        """When a persona counts as slow: half again what this model usually takes, or the setting without history."""
        estimate = self.progress.estimate
        if estimate.runs == 0:
            return self.settings.slow_seconds
        return max(1.5 * estimate.seconds, 1.0)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def progress_event(self, index: int) -> Progress:
        p = self.progress
        return Progress(p.fraction, self.elapsed(), p.eta(), p.persona_fraction(index), index)

    def first_report(self, kind: str, message: str) -> bool:
        """True the first time this failure is met in the run: one rejected key is said once, not per stream."""
        key = (kind, message)
        if key in self.reported:
            return False
        self.reported.add(key)
        return True
