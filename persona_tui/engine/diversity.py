"""How diverse a batch came out: spreads, the plan held, near-duplicates, repeats.

Pure computation over saved records: no I/O, no Textual, no words for a person
(``persona_tui.narrate.report_lines`` writes those). See ``docs/DIVERSITY.md``
for the metric, the threshold and how they were chosen.

- Each categorical field (age in decades, pronouns, town, country, occupation,
  tech savviness, and the planned life stage when records carry slots) gets its
  number of distinct values and its *spread*: Shannon entropy divided by the log
  of the number of distinct values observed (Pielou's evenness), 0 with a single
  value, 1 when every value that occurs occurs equally often.
- Similarity is TF-IDF cosine over word unigrams and bigrams of background,
  goals, frustrations and quote, each persona's own name and place removed from
  its own text, so a copied story under another name scores near 1 and a shared
  surname scores nothing.
- All pairs are scored through an inverted index (only pairs sharing a term are
  touched). When the index's work would pass :data:`PAIR_BUDGET` (large batches
  of similar text), the most common terms are left out of the *search* for
  candidate pairs, never out of the *score*: candidates are then scored exactly,
  and a bound on what the left-out terms can add tells whether a pair that
  shares only common terms could have been missed; if so the report says it is
  approximate.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from persona_tui.engine.plan import slot_breaks
from persona_tui.engine.world.reading import fold
from persona_tui.models import Persona, PersonaRecord

DEFAULT_THRESHOLD = 0.8
"""Pairs at or above this cosine are flagged as near-duplicates (calibrated in docs/DIVERSITY.md)."""
DEFAULT_TOP = 5
_SLACK = 0.0005
"""Scores are shown rounded to 3 decimals; a pair is flagged by its shown score."""
PAIR_BUDGET = 1_500_000
"""Most pair updates the inverted index may do before common terms leave the candidate search."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class FieldSpread(_Frozen):
    """How one categorical field spreads over the batch."""

    field: str
    """``age`` (decades), ``pronouns``, ``town``, ``country``, ``occupation``, ``tech_savviness``, ``life_stage``."""
    counted: int
    """Records that have a value for the field."""
    distinct: int
    entropy: float
    """Shannon entropy over log(distinct): 0..1, 0 with one value (or none)."""
    top: str
    """The most common value ("" when none); of values tied for it, the first in alphabetical order, so the
    same personas give the same answer in whatever order they are read."""
    top_count: int
    tied: int = 0
    """Other values as common as ``top``."""


class BrokenSlot(_Frozen):
    id: str
    name: str
    breaks: tuple[str, ...]
    """:func:`~persona_tui.engine.plan.slot_breaks`' phrases, e.g. "age 29 is outside 40-44"."""


class PlanHeld(_Frozen):
    """How the records that carry a slot kept to their population plan."""

    planned: int
    held: int
    broken: tuple[BrokenSlot, ...]

    @property
    def broke(self) -> int:
        return len(self.broken)


class SimilarPair(_Frozen):
    a_id: str
    a_name: str
    b_id: str
    b_name: str
    similarity: float
    """TF-IDF cosine, 0..1, rounded to 3 decimals."""
    flagged: bool
    """At or above the report's threshold: a near-duplicate."""


class Repeat(_Frozen):
    """A name or quote that more than one persona has (compared without case or extra spaces)."""

    value: str
    """As the first persona that has it wrote it."""
    count: int
    ids: tuple[str, ...]


class DiversityReport(_Frozen):
    count: int
    fields: tuple[FieldSpread, ...]
    plan: PlanHeld | None
    """None when no record carries a slot."""
    pairs: tuple[SimilarPair, ...]
    """The nearest pairs, most similar first (every flagged pair, and at least the top few)."""
    repeated_names: tuple[Repeat, ...]
    repeated_quotes: tuple[Repeat, ...]
    threshold: float
    approximate: bool = False
    """Large batch: a pair that shares only common terms, not searched, might belong among the pairs."""

    @property
    def near_duplicates(self) -> tuple[SimilarPair, ...]:
        return tuple(pair for pair in self.pairs if pair.flagged)

    @property
    def nearest(self) -> SimilarPair | None:
        return self.pairs[0] if self.pairs else None

    @property
    def worst_name_repeat(self) -> Repeat | None:
        return self.repeated_names[0] if self.repeated_names else None

    @property
    def worst_quote_repeat(self) -> Repeat | None:
        return self.repeated_quotes[0] if self.repeated_quotes else None

    def spread(self, field: str) -> FieldSpread | None:
        """The spread of one field by its name, or None when the report has none for it."""
        return next((spread for spread in self.fields if spread.field == field), None)


def diversity_report(
    records: Sequence[PersonaRecord], *, threshold: float = DEFAULT_THRESHOLD, top: int = DEFAULT_TOP
) -> DiversityReport:
    """The diversity report of a batch: ``top`` nearest pairs (and every pair at or above ``threshold``)."""
    pairs, approximate = _similar_pairs(records, threshold, top)
    return DiversityReport(
        count=len(records),
        fields=_spreads(records),
        plan=_plan_held(records),
        pairs=pairs,
        repeated_names=_repeats(records, lambda r: r.persona.name),
        repeated_quotes=_repeats(records, lambda r: r.persona.quote),
        threshold=threshold,
        approximate=approximate,
    )


# ----- spreads -----


def _key(text: str) -> str:
    """A value compared without case, accents or extra spaces."""
    return " ".join(fold(text).split())


_NEAR = re.compile(r"^(?:rural areas?|countryside|outskirts|suburbs?)\s+(?:near|of|outside)\s+|^near\s+", re.IGNORECASE)


def town_of(location: str) -> str:
    """The town part of a location: before the first comma, without "Rural area near" and the like."""
    head = location.split(",")[0].strip()
    return _NEAR.sub("", head).strip() or head


def country_of(location: str) -> str:
    """The last comma part of a location (a location with no comma is taken as a whole)."""
    return location.rsplit(",", 1)[-1].strip()


def decade(age: int) -> str:
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def evenness(counts: Iterable[int]) -> float:
    """Shannon entropy over log(number of values): 0 for one value (or none), 1 for an even split."""
    values = [c for c in counts if c > 0]
    if len(values) < 2:
        return 0.0
    total = sum(values)
    entropy = -sum(c / total * math.log(c / total) for c in values)
    return round(min(1.0, entropy / math.log(len(values))), 3)


def _spread(field: str, values: Iterable[str]) -> FieldSpread:
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for value in values:
        key = _key(value)
        if not key:
            continue
        counts[key] += 1
        shown.setdefault(key, value.strip())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top, top_count = ranked[0] if ranked else ("", 0)
    return FieldSpread(
        field=field,
        counted=sum(counts.values()),
        distinct=len(counts),
        entropy=evenness(counts.values()),
        top=shown.get(top, ""),
        top_count=top_count,
        tied=sum(1 for _, n in ranked[1:] if n == top_count),
    )


def _spreads(records: Sequence[PersonaRecord]) -> tuple[FieldSpread, ...]:
    people = [r.persona for r in records]
    fields = [
        _spread("age", (decade(p.age) for p in people)),
        _spread("pronouns", (p.pronouns.replace(" ", "") for p in people)),
        _spread("town", (town_of(p.location) for p in people)),
        _spread("country", (country_of(p.location) for p in people)),
        _spread("occupation", (p.occupation for p in people)),
        _spread("tech_savviness", (p.tech_savviness for p in people)),
    ]
    if any(r.slot is not None for r in records):
        fields.append(_spread("life_stage", (r.slot.life_stage for r in records if r.slot is not None)))
    return tuple(fields)


# ----- the plan -----


def _plan_held(records: Sequence[PersonaRecord]) -> PlanHeld | None:
    planned = [(r, r.slot) for r in records if r.slot is not None]
    if not planned:
        return None
    broken = []
    for record, slot in planned:
        breaks = slot_breaks(slot, record.persona)
        if breaks:
            broken.append(BrokenSlot(id=record.id, name=record.persona.name, breaks=tuple(breaks)))
    return PlanHeld(planned=len(planned), held=len(planned) - len(broken), broken=tuple(broken))


# ----- repeats -----


def _repeat_key(text: str) -> str:
    """A name or quote compared without case, accents, extra spaces, quote marks or final punctuation."""
    return _key(text).strip(" \"'“”‘’«».,!?…")


def _repeats(records: Sequence[PersonaRecord], value: Callable[[PersonaRecord], str]) -> tuple[Repeat, ...]:
    groups: dict[str, list[PersonaRecord]] = defaultdict(list)
    for record in records:
        key = _repeat_key(value(record))
        if key:
            groups[key].append(record)
    repeats = [
        Repeat(value=value(group[0]).strip(), count=len(group), ids=tuple(r.id for r in group))
        for group in groups.values()
        if len(group) > 1
    ]
    return tuple(sorted(repeats, key=lambda r: -r.count))


# ----- similarity -----

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_STOP_WORDS = (
    "a an and are as at be been but by for from had has have he her hers him his i i'm in into is it it's its "
    "me my of on or our she so than that the their them they this to was we were what when which who will "
    "with you your"
)
_STOP = frozenset(_STOP_WORDS.split())
"""Words every story has; pronouns among them, so a copied story with "he" for "she" is still a copy."""


def _text(record: PersonaRecord | Persona) -> str:
    p = record.persona if isinstance(record, PersonaRecord) else record
    return " ".join([p.background, *p.goals, *p.frustrations, p.quote])


def terms(record: PersonaRecord | Persona) -> Counter[str]:
    """The record's terms: words and word pairs of its story, without stop words and its own name and place."""
    p = record.persona if isinstance(record, PersonaRecord) else record
    own = set(_WORD.findall(fold(p.name))) | set(_WORD.findall(fold(p.location)))
    words = [w for w in _WORD.findall(fold(_text(record))) if w not in _STOP and w not in own]
    bag = Counter(words)
    bag.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    return bag


def _vectors(records: Sequence[PersonaRecord]) -> list[dict[str, float]]:
    """Sublinear-tf, smoothed-idf TF-IDF vectors of unit length."""
    bags = [terms(r) for r in records]
    n = len(bags)
    df: Counter[str] = Counter()
    for bag in bags:
        df.update(bag.keys())
    idf = {term: math.log((1 + n) / (1 + count)) + 1 for term, count in df.items()}
    vectors = []
    for bag in bags:
        vector = {term: (1 + math.log(tf)) * idf[term] for term, tf in bag.items()}
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        vectors.append({term: w / norm for term, w in vector.items()})
    return vectors


def _postings(vectors: Sequence[dict[str, float]]) -> dict[str, list[tuple[int, float]]]:
    index: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for i, vector in enumerate(vectors):
        for term, weight in vector.items():
            index[term].append((i, weight))
    return index


def _split(index: dict[str, list[tuple[int, float]]]) -> tuple[list[list[tuple[int, float]]], set[str]]:
    """The postings searched for candidates (rarest first, within the budget), and the common terms left out."""
    by_df = sorted(index, key=lambda term: len(index[term]))
    searched: list[list[tuple[int, float]]] = []
    work = 0
    for k, term in enumerate(by_df):
        size = len(index[term])
        work += size * (size - 1) // 2
        if work > PAIR_BUDGET:
            return searched, set(by_df[k:])
        searched.append(index[term])
    return searched, set()


def _similar_pairs(
    records: Sequence[PersonaRecord], threshold: float, top: int
) -> tuple[tuple[SimilarPair, ...], bool]:
    n = len(records)
    if n < 2:
        return (), False
    vectors = _vectors(records)
    searched, common = _split(_postings(vectors))
    partial: dict[int, float] = defaultdict(float)
    for postings in searched:
        for x, (i, wi) in enumerate(postings):
            for j, wj in postings[x + 1 :]:
                partial[i * n + j] += wi * wj
    if not common:
        scored = heapq.nlargest(top, partial.items(), key=lambda kv: kv[1])
        flagged = [kv for kv in partial.items() if kv[1] >= threshold - _SLACK]
        best = dict(scored) | dict(flagged)
        return _pairs(records, best, n, threshold), False
    scores, missable = _exact_best(vectors, partial, common, threshold, top, n)
    return _pairs(records, scores, n, threshold), missable


def _exact_best(
    vectors: Sequence[dict[str, float]], partial: dict[int, float], common: set[str], threshold: float, top: int, n: int
) -> tuple[dict[int, float], bool]:
    """Candidate pairs scored exactly, best bound first, until no bound can reach the top or the threshold;
    and whether a pair that was no candidate could still have mattered.

    A candidate's cosine is its partial score (rare terms) plus the dot product of its common
    terms, which is at most the product of their norms (Cauchy-Schwarz). A pair that shares no
    rare term scores only that dot product: if even the two largest norms' product is below what
    a pair needs (to be flagged, or to enter the top), no such pair was missed.
    """
    tails = [{t: w for t, w in v.items() if t in common} for v in vectors]
    tail_norm = [math.sqrt(sum(w * w for w in tail.values())) for tail in tails]
    bounds = sorted(((s + tail_norm[k // n] * tail_norm[k % n], k) for k, s in partial.items()), reverse=True)
    best: list[tuple[float, int]] = []  # a min-heap of the top scores
    found: dict[int, float] = {}
    for bound, key in bounds:
        if bound < _floor(best, top, threshold):
            break
        a, b = tails[key // n], tails[key % n]
        score = partial[key] + sum(a[t] * b[t] for t in a.keys() & b.keys())
        if score >= threshold - _SLACK:
            found[key] = score
        if top:
            heapq.heappush(best, (score, key))
            if len(best) > top:
                heapq.heappop(best)
    largest = heapq.nlargest(2, tail_norm)
    missable = largest[0] * largest[1] >= _floor(best, top, threshold)
    return found | {key: score for score, key in best}, missable


def _floor(best: Sequence[tuple[float, int]], top: int, threshold: float) -> float:
    """The least score a pair still needs: to be flagged, or to enter the top (once the top is full)."""
    flag = threshold - _SLACK
    if top == 0:
        return flag
    return min(flag, best[0][0]) if len(best) >= top else -1.0


def _pairs(
    records: Sequence[PersonaRecord], scores: dict[int, float], n: int, threshold: float
) -> tuple[SimilarPair, ...]:
    out = []
    for key, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        a, b = records[key // n], records[key % n]
        similarity = round(min(1.0, max(0.0, score)), 3)
        out.append(
            SimilarPair(
                a_id=a.id,
                a_name=a.persona.name,
                b_id=b.id,
                b_name=b.persona.name,
                similarity=similarity,
                flagged=similarity >= threshold,
            )
        )
    return tuple(out)


SIMILAR_WINDOW = 200
"""How many of a run's latest personas a new one is compared with before it is saved."""


class SimilarityIndex:
    """The latest personas of a run, to ask how close a new one comes to any of them before it is saved.

    The same measure as the report (TF-IDF cosine, idf over the personas held and the newcomer), with each
    persona's terms counted once. A query costs one pass over the personas held, so only the last
    ``limit`` (200) are held: comparing each of a 10,000-persona run with every earlier one would be
    O(n^2) (50 million comparisons); a near-duplicate of an older persona is left to the end-of-run report.
    """

    def __init__(self, limit: int = SIMILAR_WINDOW) -> None:
        self._bags: deque[tuple[Persona, dict[str, float]]] = deque()
        """Each persona held with its terms' sublinear tf (1 + log tf), computed once."""
        self._df: Counter[str] = Counter()
        self.limit = limit

    def __len__(self) -> int:
        return len(self._bags)

    def add(self, persona: Persona) -> None:
        bag = terms(persona)
        self._bags.append((persona, {t: 1 + math.log(tf) for t, tf in bag.items()}))
        self._df.update(bag.keys())
        if len(self._bags) > self.limit:
            _, old = self._bags.popleft()
            self._df.subtract(old.keys())

    def nearest(self, persona: Persona) -> tuple[Persona, float] | None:
        """The persona held that ``persona`` reads most like, and how alike (0..1); None when none is held.

        One idf per term for the query; each persona held costs a pass over its own weights (for its
        norm) and a look-up of the newcomer's terms (for the dot product), no dict built per persona:
        with 200 held this is a few times faster than weighting every persona's vector again."""
        if not self._bags:
            return None
        bag = terms(persona)
        top = math.log(2 + len(self._bags)) + 1  # log(1 + n) with n counting the newcomer, plus idf's 1
        df = self._df

        def idf(term: str, extra: int) -> float:
            return top - math.log(1 + df[term] + extra)

        weights = {t: (1 + math.log(tf)) * idf(t, 1) for t, tf in bag.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        mine = {t: w / norm for t, w in weights.items()}
        held_idf = {t: idf(t, 1 if t in bag else 0) for t, count in df.items() if count > 0}
        best_persona, best = self._bags[0][0], -1.0
        for other, logs in self._bags:
            theirs = math.sqrt(sum((tf * held_idf[t]) ** 2 for t, tf in logs.items())) or 1.0
            dot = sum(w * logs[t] * held_idf[t] for t, w in mine.items() if t in logs)
            score = dot / theirs
            if score > best:
                best_persona, best = other, score
        return best_persona, min(1.0, max(0.0, best))
