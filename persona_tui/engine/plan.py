"""The population plan: each persona's slot drawn in code, seeded, before the first call.

A model asked for ten personas one at a time writes ten variations of one person. So the
attributes that make a population (age, pronouns, place, occupation, tech savviness, life
stage) are drawn here, spread over their ranges (stratified, not random clumps), and each
persona's prompt carries its slot as constraints; the model writes the person. After
validation :func:`slot_breaks` says where a persona left its slot, and the job asks once
for a correction.

The user shapes the plan with a :class:`~persona_tui.models.Mix`, written compactly (see
:func:`parse_mix`) or as a ``[population]`` TOML table (see :func:`mix_from_table`).
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from persona_tui.engine.world.occupations import start_age
from persona_tui.engine.world.reading import Place, fold, pronouns_named, read_description
from persona_tui.engine.world.tables import Job, load_tables
from persona_tui.models import (
    LIFE_STAGES,
    TECH_LEVELS,
    GenerationRequest,
    LifeStage,
    Mix,
    Organization,
    Persona,
    Plan,
    RequestError,
    Slot,
    TechSavviness,
    plain_reason,
)

K = TypeVar("K", bound=str)

DEFAULT_AGES = (18, 75)
WORKING_UNTIL = 67
DEFAULT_PRONOUNS = {"she/her": 48.0, "he/him": 48.0, "they/them": 4.0}
_TECH_BASE = (1.0, 2.0, 3.0, 2.0, 1.0)  # novice .. expert, around the middle
_STUDENT_AGES = (18, 26)
_RETIRED_AGES = (62, 85)


# ----- drawing -----


def draw_plan(request: GenerationRequest, org: Organization | None = None, seed: int | None = None) -> Plan:
    """The plan for ``request.count`` personas; the same request and seed always give the same plan."""
    mix = request.mix
    seed = mix.seed if mix.seed is not None else seed if seed is not None else random.SystemRandom().getrandbits(32)
    rng = random.Random(seed)
    n = request.count
    sources: dict[str, str] = {}
    wanted = read_description(request.description)
    jobs = wanted.jobs or (read_description(org.audience).jobs if org is not None and org.audience else ())
    if jobs and not wanted.jobs:
        sources["occupations"] = "the organization's audience"
    retired = any(job.titles == ("Retired",) for job in jobs)
    others = [job for job in jobs if job.titles != ("Retired",)]
    student = bool(others) and all("Student" in title or "Pupil" in title for title in others[0].titles)

    ages = mix.ages or wanted.age_range or (_RETIRED_AGES if retired else _STUDENT_AGES if student else None)
    sources["ages"] = "your mix" if mix.ages else "the description" if wanted.age_range else "the default range"
    lo, hi = ages or _default_ages(others)
    strata = _strata(lo, hi, n)
    ages_drawn = [rng.randint(a, b) for a, b in strata]
    order = list(range(n))
    rng.shuffle(order)  # strata in a random order: persona 1 is not always the youngest

    named = pronouns_named(request.description)
    pronouns = _allocate(mix.pronouns or ({named: 1.0} if named else DEFAULT_PRONOUNS), n, rng)
    sources["pronouns"] = "your mix" if mix.pronouns else "the description" if named else "the default mix"
    nudge = others[0].tech if others else 0
    tech = _allocate(mix.tech or _tech_weights(nudge), n, rng)
    sources["tech"] = "your mix" if mix.tech else "spread around the middle" + (" (the job's lean)" if nudge else "")

    places = _places(mix, wanted.places, org, sources)
    locations = _spread_places(places, n, rng, wanted.rural)
    occupations = _occupations(mix, others, retired, n, rng, sources)

    slots = []
    for i in range(n):
        stratum = strata[order[i]]
        age = ages_drawn[order[i]]
        slots.append(
            Slot(
                index=i,
                age=int(mix.pins["age"]) if "age" in mix.pins else age,
                ages=stratum,
                pronouns=mix.pins.get("pronouns", pronouns[i]),
                location=mix.pins.get("location", locations[i]),
                occupation=mix.pins.get("occupation", occupations[i]),
                tech_savviness=_tech(mix.pins.get("tech_savviness")) or tech[i],
                life_stage="child",  # filled in below, from the age
                pins=dict(mix.pins),
            )
        )
    stages = _stages(slots, mix, retired, student, bool(others), rng)
    slots = [slot.model_copy(update={"life_stage": stage}) for slot, stage in zip(slots, stages, strict=True)]
    sources["stages"] = "your mix" if mix.stages else "from age and occupation"
    warnings = _warnings(mix, wanted.age_range, others, slots)
    return Plan(seed=seed, slots=tuple(slots), mix=mix, sources=sources, warnings=warnings)


def _warnings(
    mix: Mix, described: tuple[int, int] | None, jobs: Sequence[Job], slots: Sequence[Slot]
) -> tuple[str, ...]:
    """What in the plan contradicts itself, said before anything is sent (the personas would read oddly)."""
    said = []
    if mix.ages and described and tuple(mix.ages) != described:
        said.append(
            f"the mix's ages {mix.ages[0]}-{mix.ages[1]} replace the description's {described[0]}-{described[1]}"
        )
    if jobs and slots:
        start = min(start_age(title) for title in jobs[0].titles)
        young = [slot for slot in slots if slot.age < start]
        if young:
            said.append(f"{_count(len(young), 'slot')} younger than {jobs[0].titles[0]} usually starts ({start})")
    odd = [slot for slot in slots if not _stage_fits(slot.life_stage, slot.age)]
    if odd:
        example = odd[0]
        said.append(
            f"{_count(len(odd), 'slot')} with a life stage its age rarely has ({example.life_stage} at {example.age})"
        )
    return tuple(said)


def _count(n: int, word: str) -> str:
    return f"1 {word}" if n == 1 else f"{n} {word}s"


def _stage_fits(stage: LifeStage, age: int) -> bool:
    low, high = {"child": (0, 12), "student": (10, 40), "working": (16, 80), "parent": (16, 90), "retired": (50, 120)}[
        stage
    ]
    return low <= age <= high


def _default_ages(jobs: Sequence[Job]) -> tuple[int, int]:
    """The whole adult range; for a job, from the usual age to start it (no 18-year-old doctor) to about
    the age people stop working."""
    lo, hi = DEFAULT_AGES
    if jobs:
        lo, hi = max(lo, min(start_age(title) for title in jobs[0].titles)), WORKING_UNTIL
    return lo, hi


def _tech(value: str | None) -> TechSavviness | None:
    return next((level for level in TECH_LEVELS if level == value), None)


def _strata(lo: int, hi: int, n: int) -> list[tuple[int, int]]:
    """``n`` consecutive age bands covering lo..hi as evenly as whole years allow (bands overlap when n > span)."""
    span = hi - lo + 1
    bands = []
    for i in range(n):
        a = lo + (i * span) // n
        b = lo + ((i + 1) * span) // n - 1
        bands.append((a, max(a, b)))
    return bands


def _allocate(weights: Mapping[K, float], n: int, rng: random.Random) -> list[K]:
    """``n`` values in proportion to ``weights`` (largest remainder, ties broken at random), shuffled."""
    total = sum(weights.values())
    exact = {key: n * weight / total for key, weight in weights.items()}
    counts = {key: int(share) for key, share in exact.items()}
    left = n - sum(counts.values())
    by_remainder = sorted(exact, key=lambda key: (exact[key] - counts[key], rng.random()), reverse=True)
    for key in by_remainder[:left]:
        counts[key] += 1
    values = [key for key, count in counts.items() for _ in range(count)]
    rng.shuffle(values)
    return values


def _tech_weights(nudge: int) -> dict[TechSavviness, float]:
    """Every level, weighted around the middle and shifted by the job's lean (a developer leans expert)."""
    shift = max(-2, min(2, nudge))
    weights: dict[TechSavviness, float] = {}
    for i, level in enumerate(TECH_LEVELS):
        j = min(4, max(0, i - shift))
        weights[level] = _TECH_BASE[j] if 0 <= i - shift <= 4 else 0.5
    return weights


def _places(mix: Mix, named: Sequence[Place], org: Organization | None, sources: dict[str, str]) -> list[Place]:
    """The places to spread over: the mix's, else the description's, else the organization's region."""
    if mix.places:
        found: list[Place] = []
        countries = {place.country for place in named}
        country = countries.pop() if len(countries) == 1 else ""  # an unknown town is in the described country
        for text in mix.places:
            places = read_description(text).places
            found.extend(places or [Place((text,), country)])
        sources["places"] = "your mix"
        return found
    if named:
        sources["places"] = "the description"
        return list(named)
    if org is not None and org.region and (places := read_description(org.region).places):
        sources["places"] = f"the organization's region ({org.region})"
        return list(places)
    sources["places"] = "the writer's choice (no place named)"
    return []


def _spread_places(places: Sequence[Place], n: int, rng: random.Random, rural: bool) -> list[str | None]:
    """One location per slot: places take turns, and within one its cities are used before any repeats."""
    if not places:
        return [None] * n
    countries = load_tables().countries
    decks: list[list[str]] = [[] for _ in places]
    out: list[str | None] = []
    for i in range(n):
        k = i % len(places)
        place = places[k]
        if not decks[k]:
            cities = list(place.cities or (countries[place.country].cities if place.country in countries else ()))
            rng.shuffle(cities)
            decks[k] = cities or [""]
        city = decks[k].pop()
        where = ", ".join(part for part in (city, place.country) if part) or place.country
        out.append(f"Rural area near {where}" if rural and city else where)
    return out


def _occupations(
    mix: Mix, jobs: Sequence[Any], retired: bool, n: int, rng: random.Random, sources: dict[str, str]
) -> list[str | None]:
    """One occupation per slot: the mix's or the job's titles taking turns in a shuffled order."""
    if mix.occupations:
        titles: list[str] = list(mix.occupations)
        sources["occupations"] = "your mix"
    elif jobs:
        titles = list(jobs[0].titles)
        sources.setdefault("occupations", "the description")
    elif retired:
        titles = list(load_tables().former_jobs)
        sources["occupations"] = "former jobs (the description asks for retired people)"
    else:
        sources["occupations"] = "the writer's choice (no job named)"
        return [None] * n
    if retired and not mix.occupations:
        titles = [title if title.startswith("Retired") else f"Retired {title}" for title in titles]
    out: list[str | None] = []
    deck: list[str] = []
    for _ in range(n):
        if not deck:
            deck = titles[:]
            rng.shuffle(deck)
        out.append(deck.pop())
    return out


def _stages(
    slots: Sequence[Slot], mix: Mix, retired: bool, student: bool, has_job: bool, rng: random.Random
) -> list[LifeStage]:
    """Each slot's life stage: the mix's weights given to slots by age, else what fits the age and the job."""
    if mix.stages:
        wanted = _allocate(mix.stages, len(slots), rng)
        ordered = sorted(wanted, key=LIFE_STAGES.index)  # oldest stages to the oldest slots
        by_age = sorted(range(len(slots)), key=lambda i: (slots[i].age, i))
        out: list[LifeStage] = ["working"] * len(slots)
        for i, stage in zip(by_age, ordered, strict=True):
            out[i] = _stage(stage)
        return out
    return [_stage_for(slot.age, retired, student, has_job, rng) for slot in slots]


def _stage(value: str) -> LifeStage:
    return next(stage for stage in LIFE_STAGES if stage == value)


def _stage_for(age: int, retired: bool, student: bool, has_job: bool, rng: random.Random) -> LifeStage:
    """A life stage that fits the age, the job asked for (or none), and some chance."""
    if age < 13:
        return "child"
    if age < 18 or student:
        return "student"
    if retired:
        return "retired"
    roll = rng.random()
    if age < 25:
        return "working" if has_job or roll < 0.5 else "student"
    if age < 35:
        return "parent" if roll < 0.35 else "working"
    if age < 55:
        return "parent" if roll < 0.55 else "working"
    if age < 65:
        return "retired" if not has_job and roll < 0.15 else "parent" if roll < 0.35 else "working"
    return "working" if has_job or roll < 0.15 else "retired"


# ----- prompts and checks -----

_STAGE_WORDS = {
    "child": "a child at primary school",
    "student": "a student",
    "working": "working",
    "parent": "a parent with children at home",
    "retired": "retired",
}


def slot_lines(slot: Slot, count: int) -> list[str]:
    """What the prompt says about the persona's slot: constraints the model must keep."""
    lines = [f"This persona has slot {slot.index + 1} of {count} in a planned population. Keep to it exactly:"]
    lines.append(f"- age: {slot.age}")
    lines.append(f"- pronouns: {slot.pronouns}")
    if slot.location:
        lines.append(f"- location: {slot.location}")
    if slot.occupation:
        lines.append(f"- occupation: {slot.occupation}")
    lines.append(f"- tech_savviness: {slot.tech_savviness}")
    stage = _STAGE_WORDS[slot.life_stage]
    if slot.life_stage == "parent" and slot.occupation:
        stage = "a working parent with children at home"
    lines.append(f"- life stage: {stage}; let goals, frustrations and background follow from it")
    for field, value in slot.pins.items():
        if field not in ("age", "pronouns", "location", "occupation", "tech_savviness"):
            lines.append(f"- {field}: {value}")
    return lines


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"\w+", fold(text)) if len(w) > 2}


def _place_held(planned: str, achieved: str) -> bool:
    """The planned town (or, for a country alone, the country) appears in the achieved location."""
    head = planned.removeprefix("Rural area near ").split(",")[0].strip()
    return fold(head) in fold(achieved)


def _occupation_held(planned: str, achieved: str) -> bool:
    """The planned title's head word (its last: "nurse" in "Ward Nurse") is in the achieved one."""
    words = re.findall(r"\w+", fold(planned))
    if not words:
        return True
    head = words[-1].rstrip("s")
    return head in _words(achieved) or fold(planned) in fold(achieved)


def slot_breaks(slot: Slot, persona: Persona) -> list[str]:
    """Where the persona left its slot, one phrase each ("age 29 is outside 40-44"); empty when it holds."""
    breaks = []
    lo, hi = slot.ages
    if "age" in slot.pins and persona.age != slot.age:
        breaks.append(f"age is {persona.age}, not {slot.age}")
    elif not lo <= persona.age <= hi and persona.age != slot.age:
        breaks.append(f"age {persona.age} is outside {lo}-{hi}")
    if fold(persona.pronouns).replace(" ", "") != fold(slot.pronouns).replace(" ", ""):
        breaks.append(f"pronouns are {persona.pronouns}, not {slot.pronouns}")
    if slot.location and not _place_held(slot.location, persona.location):
        breaks.append(f"lives in {persona.location}, not {slot.location}")
    if slot.occupation and not _occupation_held(slot.occupation, persona.occupation):
        breaks.append(f"works as {persona.occupation}, not {slot.occupation}")
    if persona.tech_savviness != slot.tech_savviness:
        breaks.append(f"tech savviness is {persona.tech_savviness}, not {slot.tech_savviness}")
    for field, value in slot.pins.items():
        if field in ("age", "pronouns", "location", "occupation", "tech_savviness"):
            continue
        if fold(value) not in fold(str(getattr(persona, field, ""))):
            breaks.append(f"{field} is not {value}")
    return breaks


# ----- the user's mix -----

_CLAUSE = re.compile(r"\s*;\s*|\n")
_WEIGHTED = re.compile(r"([\w/+-]+)\s*[:=]\s*(\d+(?:\.\d+)?)\s*%?")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%\s*(\S+)$|^(\S+)\s+(\d+(?:\.\d+)?)\s*%$")
_AGES = re.compile(r"^(?:ages?)\s+(\d{1,3})\s*(?:-|–|to)\s*(\d{1,3})$")
_KEYS = {
    "ages": "ages",
    "age": "ages",
    "pronouns": "pronouns",
    "tech": "tech",
    "stage": "stages",
    "stages": "stages",
    "places": "places",
    "place": "places",
    "jobs": "occupations",
    "job": "occupations",
    "occupations": "occupations",
    "pin": "pins",
    "seed": "seed",
}
MIX_KEYS = "clauses start with ages, pronouns, tech, stage, places, jobs, pin or seed, or are like 'she/her 60%'"
MIX_HELP = (
    "clauses separated by ';', for example: ages 25-60; she/her 60%; tech novice:2 expert:1; "
    "places Nairobi, Mombasa; jobs Ward Nurse, Midwife; stage parent:1 working:2; pin location=Nairobi; seed 7"
)


def parse_mix(text: str, base: Mix | None = None) -> Mix:
    """A mix from its compact form (see :data:`MIX_HELP`), added to ``base``; :class:`RequestError` if unclear."""
    data: dict[str, Any] = (base or Mix()).model_dump()
    shares: set[str] = set()
    for clause in filter(None, (c.strip() for c in _CLAUSE.split(text))):
        if _clause(clause, data):
            shares.add(_KEYS.get(clause.split()[0].lower().rstrip(":"), "pronouns"))
    for key in shares:
        if sum(data[key].values()) > 100:
            given = " + ".join(f"{k} {_num(v)}%" for k, v in data[key].items())
            raise RequestError("mix", f"The {key} shares add up to more than 100% ({given}).")
        data[key] = _with_rest(key, data[key])
    return _validated(data)


def _with_rest(key: str, shares: dict[str, float]) -> dict[str, float]:
    """Percentages that leave some of the batch unnamed: the values not named share the rest, as by default."""
    rest = 100.0 - sum(shares.values())
    defaults: dict[str, float]
    if key == "pronouns":
        defaults = DEFAULT_PRONOUNS
    elif key == "tech":
        defaults = dict(zip(TECH_LEVELS, _TECH_BASE, strict=True))
    else:
        defaults = dict.fromkeys(("student", "working", "parent", "retired"), 1.0)
    unnamed = {k: w for k, w in defaults.items() if k not in shares}
    if rest <= 0 or not unnamed:
        return shares
    total = sum(unnamed.values())
    return shares | {k: round(rest * w / total, 2) for k, w in unnamed.items()}


def _clause(clause: str, data: dict[str, Any]) -> bool:
    """Read one clause into ``data``; True if it gave shares in per cent (the rest then goes to the others)."""
    if m := _AGES.match(clause.lower()):
        data["ages"] = (int(m[1]), int(m[2]))
        return False
    if m := _PERCENT.match(clause):
        value, pronoun = (m[1], m[2]) if m[1] else (m[4], m[3])
        data["pronouns"][pronoun.lower()] = float(value)
        return True
    word, _, rest = clause.partition(" ")
    key = _KEYS.get(word.lower().rstrip(":"))
    rest = rest.strip()
    if key is None:
        raise RequestError("mix", f"The mix clause {clause!r} is not one I know; {MIX_KEYS}.")
    if not rest:
        raise RequestError("mix", f"The mix clause {clause!r} says nothing after {word!r}; {MIX_KEYS}.")
    if key == "ages":
        raise RequestError("mix", f"Ages are written as a range, like 'ages 25-60' (got {clause!r}).")
    if key in ("pronouns", "tech", "stages"):
        return _weights(key, word, rest, clause, data)
    if key in ("places", "occupations"):
        data[key] = tuple(data[key]) + tuple(p.strip() for p in rest.split(",") if p.strip())
    elif key == "pins":
        field, eq, value = rest.partition("=")
        if not eq or not value.strip():
            raise RequestError("mix", f"Write a pin as field=value, like 'pin location=Nairobi' (got {clause!r}).")
        data["pins"][field.strip().lower()] = value.strip()
    elif not rest.isdigit():
        raise RequestError("mix", f"The seed must be a whole number (got {rest!r}).")
    else:
        data["seed"] = int(rest)
    return False


def _weights(key: str, word: str, rest: str, clause: str, data: dict[str, Any]) -> bool:
    """A weighted clause ("tech novice:2 expert:1", "pronouns she/her:60% he/him:40%"); True for per cent."""
    pairs = _WEIGHTED.findall(rest)
    if not pairs or _WEIGHTED.sub("", rest).strip(" ,"):
        example = {"tech": "tech novice:2 expert:1", "stages": "stage parent:1 working:2"}.get(
            key, "pronouns she/her:3"
        )
        raise RequestError("mix", f"Write weights as name:number, like '{example}' (got {clause!r}).")
    data[key].update({name.lower(): float(weight) for name, weight in pairs})
    return "%" in rest


def mix_from_table(table: Mapping[str, Any], base: Mix | None = None) -> Mix:
    """A mix from a ``[population]`` TOML table (keys as in :data:`MIX_HELP`, ``ages = [25, 60]``)."""
    data: dict[str, Any] = (base or Mix()).model_dump()
    for name, value in table.items():
        key = _KEYS.get(name.lower())
        if key is None:
            known = "ages, pronouns, tech, stages, places, occupations, pin, seed"
            raise RequestError("mix", f"[population] has an unknown key {name!r}; known keys: {known}.")
        if key == "pins" and isinstance(value, Mapping):
            data[key].update({str(k): str(v) for k, v in value.items()})
        elif key in ("pronouns", "tech", "stages") and isinstance(value, Mapping):
            weights: dict[str, Any] = {str(k).lower(): _weight(v) for k, v in value.items()}
            percent = any(isinstance(v, str) and v.strip().endswith("%") for v in value.values())
            data[key].update(_with_rest(key, weights) if percent else weights)
        elif key in ("places", "occupations") and isinstance(value, list):
            data[key] = tuple(data[key]) + tuple(str(v) for v in value)
        else:
            data[key] = value
    return _validated(data)


def _weight(value: object) -> object:
    """A TOML weight: a number, or a share written "60%"."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*%\s*", value):
        return float(value.strip().rstrip("%"))
    return value


_LEVEL_WORDS = {"tech": TECH_LEVELS, "stages": LIFE_STAGES}


def _validated(data: dict[str, Any]) -> Mix:
    """The mix, or :class:`RequestError` with one plain sentence on the first thing wrong."""
    unknown = [p for p in data.get("pronouns", {}) if "/" not in p]
    if unknown:
        raise RequestError("mix", f"{unknown[0]!r} is not pronouns; write them like she/her, he/him or they/them.")
    for key, known in _LEVEL_WORDS.items():
        for name in data.get(key, {}):
            if name not in known:
                near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                guess = f" (did you mean {near[0]}?)" if near else ""
                word = "tech level" if key == "tech" else "life stage"
                raise RequestError("mix", f"{name!r} is not a {word}{guess}; use {', '.join(known)}.")
    ages = data.get("ages")
    if ages is not None and not (
        isinstance(ages, list | tuple) and len(ages) == 2 and all(isinstance(a, int) and 0 <= a <= 120 for a in ages)
    ):
        raise RequestError("mix", f"Ages are two whole numbers from 0 to 120, like ages = [25, 60] (got {ages!r}).")
    try:
        return Mix.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "value_error":  # our own validators' sentences
            error = (first.get("ctx") or {}).get("error", first["msg"])
            raise RequestError("mix", f"In the mix, {error}.") from None
        field, reason = plain_reason(exc)
        raise RequestError("mix", f"The mix's {field} {reason}.") from None


def describe_mix(mix: Mix) -> str:
    """The mix in its compact form, so what was parsed can be shown back (and parsed again)."""
    parts = []
    if mix.ages:
        parts.append(f"ages {mix.ages[0]}-{mix.ages[1]}")
    for key, word in (("pronouns", "pronouns"), ("tech", "tech"), ("stages", "stage")):
        weights: Mapping[str, float] = getattr(mix, key)
        if weights:
            parts.append(word + " " + " ".join(f"{k}:{_num(v)}" for k, v in weights.items()))
    if mix.places:
        parts.append("places " + ", ".join(mix.places))
    if mix.occupations:
        parts.append("jobs " + ", ".join(mix.occupations))
    parts += [f"pin {k}={v}" for k, v in mix.pins.items()]
    if mix.seed is not None:
        parts.append(f"seed {mix.seed}")
    return "; ".join(parts)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
