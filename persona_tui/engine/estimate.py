"""How long a persona will take, learned from earlier runs, and honest progress.

For each provider and model the book keeps exponential moving averages of the
tokens per persona, the time to first token and the streaming rate. They drive
the progress bar and the ETA; before any history, defaults close to what
gpt-4o-mini does are used (the offline generator knows its own pace).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from persona_tui.storage import NotesFile

log = logging.getLogger(__name__)

SMOOTHING = 0.3
"""Weight of the newest run in the moving averages."""


@dataclass(frozen=True, slots=True)
class Estimate:
    tokens: float = 420.0
    first_token: float = 1.2
    tokens_per_second: float = 45.0
    runs: int = 0
    thinking: float = 0.0
    """Seconds the model thinks before it answers (0 for a model that does not)."""

    @property
    def seconds(self) -> float:
        """Expected seconds from request sent to the last token."""
        return self.first_token + self.thinking + self.stream_seconds

    @property
    def stream_seconds(self) -> float:
        return self.tokens / max(self.tokens_per_second, 1e-6)

    def learn(self, tokens: int, first_token: float, tokens_per_second: float, thinking: float = 0.0) -> Estimate:
        if self.runs == 0:
            return Estimate(float(tokens), first_token, tokens_per_second, 1, thinking)
        a = SMOOTHING
        return Estimate(
            tokens=(1 - a) * self.tokens + a * tokens,
            first_token=(1 - a) * self.first_token + a * first_token,
            tokens_per_second=(1 - a) * self.tokens_per_second + a * tokens_per_second,
            runs=self.runs + 1,
            thinking=(1 - a) * self.thinking + a * thinking,
        )


class EstimateBook:
    """Estimates per ``provider/model``, read from and saved to an :class:`NotesFile` when given one."""

    def __init__(self, file: NotesFile | None, entries: dict[str, Estimate] | None = None) -> None:
        self.file = file
        self.entries = dict(entries or {})

    @classmethod
    def load(cls, data_dir: Path | None) -> EstimateBook:
        """Read the history kept in ``data_dir``; entries that make no sense are left out (estimates are a guide)."""
        if data_dir is None:
            return cls(None)
        file = NotesFile.in_folder(data_dir)
        entries: dict[str, Estimate] = {}
        for key, values in file.read().items():
            try:
                est = Estimate(
                    tokens=float(values["tokens"]),
                    first_token=float(values["first_token"]),
                    tokens_per_second=float(values["tokens_per_second"]),
                    runs=int(values["runs"]),
                    thinking=float(values.get("thinking", 0.0)),
                )
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("ignoring estimate %s in %s: %s", key, file.path, exc)
                continue
            if est.tokens > 0 and est.tokens_per_second > 0 and est.first_token >= 0:
                entries[key] = est
        return cls(file, entries)

    def get(self, provider: str, model: str, default: Estimate | None = None) -> Estimate:
        return self.entries.get(f"{provider}/{model}", default or Estimate())

    def learn(
        self,
        provider: str,
        model: str,
        tokens: int,
        first_token: float,
        tokens_per_second: float,
        thinking: float = 0.0,
    ) -> None:
        if tokens <= 0 or tokens_per_second <= 0:
            return
        key = f"{provider}/{model}"
        self.entries[key] = self.entries.get(key, Estimate()).learn(tokens, first_token, tokens_per_second, thinking)

    async def save(self) -> None:
        if self.file is not None:
            await self.file.write({k: asdict(v) for k, v in sorted(self.entries.items())})


# Shares of one persona's progress bar given to each phase.
CALL_SHARE = 0.10
STREAM_SHARE = 0.85
STREAM_CAP = 0.98
VALIDATING_AT = CALL_SHARE + STREAM_SHARE
SAVING_AT = 0.98


@dataclass(slots=True)
class _Persona:
    fraction: float = 0.0
    expected_tokens: float = 0.0
    tokens: int = 0
    waited: float = 0.0
    thought: float = 0.0
    rate: float | None = None


@dataclass(slots=True)
class ProgressModel:
    """Turns measured events into per-persona and batch fractions and an ETA.

    Fractions only ever grow, and the batch stays below 1.0 until every
    persona is saved; when more tokens arrive than expected, the expected
    count grows instead of the bar passing its end. Up to ``lanes`` personas
    are in flight at once; the ETA divides the work left among them.
    """

    count: int
    estimate: Estimate
    lanes: int = 1
    done: int = 0
    finished: int = 0
    """Personas saved or given up on."""
    active: dict[int, _Persona] = field(default_factory=dict)
    saved_indices: set[int] = field(default_factory=set)
    reported: float = 0.0

    def start(self, index: int) -> None:
        self.active[index] = _Persona(expected_tokens=self.estimate.tokens)

    def _get(self, index: int) -> _Persona:
        return self.active.setdefault(index, _Persona(expected_tokens=self.estimate.tokens))

    def waiting(self, index: int, waited: float) -> None:
        p = self._get(index)
        p.waited = waited
        self._set(p, CALL_SHARE * min(waited / max(self.estimate.first_token, 0.1), 0.95))

    @property
    def _think_share(self) -> float:
        """The part of the working share that thinking takes, in proportion to its expected time."""
        est = self.estimate
        if est.thinking <= 0:
            return 0.0
        return STREAM_SHARE * est.thinking / (est.thinking + est.stream_seconds)

    def thinking(self, index: int, thought: float) -> None:
        """The model has been thinking for ``thought`` seconds; the bar moves by the thinking it usually does."""
        p = self._get(index)
        p.thought = thought
        usual = max(self.estimate.thinking, self.estimate.first_token, 1.0)
        self._set(p, CALL_SHARE + self._think_share * min(thought / usual, 0.95))

    def streamed(self, index: int, tokens: int, rate: float | None) -> None:
        p = self._get(index)
        p.tokens, p.rate = tokens, rate
        if tokens > p.expected_tokens * STREAM_CAP:
            p.expected_tokens = tokens / STREAM_CAP
        think = self._think_share
        self._set(p, CALL_SHARE + think + (STREAM_SHARE - think) * min(tokens / p.expected_tokens, STREAM_CAP))

    def validating(self, index: int) -> None:
        self._set(self._get(index), VALIDATING_AT)

    def saving(self, index: int) -> None:
        self._set(self._get(index), SAVING_AT)

    def saved(self, index: int) -> None:
        self.active.pop(index, None)
        self.saved_indices.add(index)
        self.done += 1
        self.finished += 1

    def dropped(self, index: int) -> None:
        """The persona failed or was skipped: it no longer counts as work left."""
        self.active.pop(index, None)
        self.finished += 1

    def persona_fraction(self, index: int) -> float:
        """One persona's own progress: 1.0 once saved, 0.0 before it starts (or after it was given up)."""
        p = self.active.get(index)
        if p is not None:
            return p.fraction
        return 1.0 if index in self.saved_indices else 0.0

    @staticmethod
    def _set(p: _Persona, fraction: float) -> None:
        p.fraction = max(p.fraction, fraction)

    @property
    def fraction(self) -> float:
        value = (self.done + sum(p.fraction for p in self.active.values())) / self.count
        if self.done < self.count:
            value = min(value, 0.999)
        self.reported = max(self.reported, value)
        return self.reported

    def _left(self, p: _Persona) -> float:
        est = self.estimate
        speed = p.rate if p.rate and p.tokens >= 20 else est.tokens_per_second
        if p.tokens == 0:
            to_answer = max(est.first_token - p.waited, 0.0) + max(est.thinking - p.thought, 0.0)
            return to_answer + p.expected_tokens / max(speed, 1e-6)
        return max(p.expected_tokens - p.tokens, 0.0) / max(speed, 1e-6)

    def eta(self) -> float:
        """Seconds left for the batch: the work left, shared among the lanes still busy."""
        if self.finished >= self.count:
            return 0.0
        waiting = self.count - self.finished - len(self.active)
        left = [self._left(p) for p in self.active.values()]
        work = sum(left) + waiting * self.estimate.seconds
        busy = min(self.lanes, self.count - self.finished)
        return max(work / max(busy, 1), max(left, default=0.0))


def offline_default(tokens_per_second: float, *, tokens: float = 330.0, base: Estimate | None = None) -> Estimate:
    """The offline generator's pace is known up front: no network, about ``tokens`` pieces (330 a persona)."""
    rate = tokens_per_second if tokens_per_second > 0 else 5000.0
    return replace(base or Estimate(), tokens=tokens, first_token=0.0, tokens_per_second=rate)
