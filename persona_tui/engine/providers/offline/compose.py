"""Composing one persona from what a description asks for, its slot in the plan, and randomness.

All the persona's randomness comes from the one ``rng`` passed in, drawn in a fixed order
(home, pronouns, name, life, then the writing), so a seeded provider gives the same persona for
the same description, index and slot in every process. Keep that order when changing this
module: reordering draws changes every persona. What must differ *between* personas of a batch
(the city within a region, the quote) is chosen by ``index`` and a per-batch ``spread`` number
instead of by chance, so a batch of fifty does not repeat itself.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Set
from typing import TYPE_CHECKING, NamedTuple

from persona_tui.engine.providers.offline.names import seeded, unused_name
from persona_tui.engine.world.occupations import family_of, start_age
from persona_tui.engine.world.reading import Wanted, read_description
from persona_tui.engine.world.tables import Pool, Tables, load_tables
from persona_tui.engine.world.wording import localize
from persona_tui.models import LifeStage, Persona, Slot, TechSavviness

if TYPE_CHECKING:
    from faker import Faker

_LEVELS: tuple[TechSavviness, ...] = ("novice", "basic", "intermediate", "advanced", "expert")
_RURAL = "Rural area near "
_STEPS = (7, 11, 13, 17, 19, 23, 29, 31)  # strides through a pool: each coprime with most pool sizes


class _Home(NamedTuple):
    locale: str
    fake: Faker  # seeded for this persona, in its locale
    location: str  # as the persona's location field
    place: str  # as it reads in a sentence
    country: str  # "" when the slot's place is not one we know


class _Life(NamedTuple):
    age: int
    occupation: str
    stage: LifeStage
    tech: int  # the job's nudge to tech_savviness


def compose(
    wanted: Wanted,
    rng: random.Random,
    avoid: Set[str],
    index: int = 0,
    slot: Slot | None = None,
    spread: int = 0,
) -> Persona:
    """One persona; ``slot`` fixes its age, pronouns, place, job, tech and life stage when given.

    ``index`` and ``spread`` take turns among places and quotes; ``avoid`` holds casefolded names not to use.
    """
    tables = load_tables()
    home = _slot_home(slot.location, rng, tables) if slot and slot.location else _home(wanted, rng, index, spread)
    pronouns, female = _pronouns(rng, slot)
    first, name = unused_name(home.fake, home.locale, female, avoid, rng)
    life = _slot_life(slot, wanted, rng, tables) if slot else _life(wanted, rng, tables)
    occupation = localize(life.occupation, home.country)
    pool = _pool(tables, life.stage, occupation, life.age)
    words = _words(first, life.age, occupation, home.place, pronouns, _years(life, rng, tables))
    words["hobby"] = rng.choice(pool.hobbies)
    background = _background(pool, words, rng)
    tech = slot.tech_savviness if slot else _tech_level(life, rng)

    def say(text: str) -> str:
        return localize(text.format(**words), home.country)

    return Persona(
        name=name,
        age=life.age,
        pronouns=pronouns,
        location=home.location,
        occupation=occupation,
        background=say(background),
        goals=[say(g) for g in rng.sample(pool.goals, rng.randint(2, 4))],
        frustrations=[say(f) for f in rng.sample(pool.frustrations, rng.randint(2, 4))],
        personality_traits=rng.sample(tables.phrases.traits, rng.randint(3, 5)),
        tech_savviness=tech,
        communication_style=say(rng.choice(pool.styles)),
        quote=say(_quote(tables, life.stage, occupation, index, spread)),
    )


# ----- where -----


def _home(wanted: Wanted, rng: random.Random, index: int, spread: int) -> _Home:
    """Where the persona lives when no slot says: places take turns, and so do a place's cities."""
    tables = load_tables()
    if wanted.places:
        cities, country = wanted.places[index % len(wanted.places)]
        turn = index // len(wanted.places)
    else:
        cities, country, turn = (), rng.choice(tables.defaults), rng.randrange(1000)
    locale = rng.choice(tables.countries[country].locales)
    fake = seeded(locale, rng)
    choices = cities or tables.countries[country].cities
    city = choices[(spread + turn) % len(choices)]
    if wanted.rural:
        return _Home(locale, fake, f"{_RURAL}{city}, {country}", f"the countryside near {city}", country)
    return _Home(locale, fake, f"{city}, {country}", city, country)


def _slot_home(location: str, rng: random.Random, tables: Tables) -> _Home:
    """The slot's location as written, with names from its country ("Kisumu, Kenya": Kenyan names)."""
    country = _country_of(location, tables)
    locales = tables.countries[country].locales if country else ("en_US",)
    locale = rng.choice(locales)
    fake = seeded(locale, rng)
    rural = location.startswith(_RURAL)
    town = location.removeprefix(_RURAL).split(",")[0].strip() or location
    return _Home(locale, fake, location, f"the countryside near {town}" if rural else town, country)


def _country_of(location: str, tables: Tables) -> str:
    """The known country a location string is in ("" when none): its last part, else what it names."""
    last = location.rsplit(",", 1)[-1].strip()
    if last in tables.countries:
        return last
    places = read_description(location).places
    return places[0].country if places else ""


# ----- who -----


def _pronouns(rng: random.Random, slot: Slot | None) -> tuple[str, bool]:
    """(pronouns, whether the name is a woman's): the slot's, or drawn; they/them get either name."""
    they, coin = rng.random(), rng.random()
    pronouns = slot.pronouns if slot else "they/them" if they < 0.06 else "she/her" if coin < 0.5 else "he/him"
    female = pronouns == "she/her" or (pronouns not in ("she/her", "he/him") and coin < 0.5)
    return pronouns, female


def _life(wanted: Wanted, rng: random.Random, tables: Tables) -> _Life:
    """Age, occupation and life stage from the description alone (no slot)."""
    others = [job for job in wanted.jobs if job.titles != ("Retired",)]
    retired = len(others) < len(wanted.jobs)
    job = rng.choice(others[0].titles) if others else ""
    student = "Student" in job or "Pupil" in job
    span = wanted.age_range or ((62, 85) if retired else (18, 26) if student else None)
    age = rng.randint(*span) if span else round(rng.triangular(21, 67, 36))
    nudge = others[0].tech if others else -1 if retired else 0
    roll = rng.random()
    if retired or (not others and age >= 67):
        former = job or rng.choice(tables.former_jobs)
        return _Life(age, f"Retired {former}", "retired", nudge)
    if job:
        if not wanted.age_range:  # old enough to have trained for it: no 25-year-old consultant surgeon
            age = max(age, start_age(job, tables) + 1)
        parent = any("parent" in form for form in others[0].forms)
        stage: LifeStage = "child" if age < 13 else "student" if student or age < 18 else _adult_stage(age, roll)
        return _Life(age, job, "parent" if parent and stage in ("working", "parent") else stage, nudge)
    stage = _young_stage(age) or _adult_stage(age, roll)
    return _Life(age, _occupation_for(stage, age, rng, tables), stage, nudge)


def _young_stage(age: int) -> LifeStage | None:
    return "child" if age < 13 else "student" if age < 20 else None


def _adult_stage(age: int, roll: float) -> LifeStage:
    return "parent" if 27 <= age <= 55 and roll < 0.4 else "working"


def _slot_life(slot: Slot, wanted: Wanted, rng: random.Random, tables: Tables) -> _Life:
    """The slot's age and life stage, and its occupation (or one that fits the stage when it has none)."""
    others = [job for job in wanted.jobs if job.titles != ("Retired",)]
    nudge = others[0].tech if others else 0
    occupation = slot.occupation or _occupation_for(slot.life_stage, slot.age, rng, tables)
    return _Life(slot.age, occupation, slot.life_stage, nudge)


def _occupation_for(stage: LifeStage, age: int, rng: random.Random, tables: Tables) -> str:
    """An occupation for a life stage when none was asked for."""
    if stage == "child" or age < 12:
        return "Primary School Pupil"
    if stage == "student":
        return "Secondary School Student" if age < 18 else rng.choice(("University Student", "Graduate Student"))
    if stage == "retired":
        return f"Retired {rng.choice(tables.former_jobs)}"
    if stage == "parent" and rng.random() < 0.3:
        return "Stay-at-Home Parent"
    return _faker_job(seeded("en_US", rng))


def _tech_level(life: _Life, rng: random.Random) -> TechSavviness:
    age = life.age
    tech = 2 + life.tech + (1 if age < 30 else -1 if age >= 60 else 0) - (age >= 75) + rng.choice((-1, 0, 0, 1))
    return _LEVELS[min(4, max(0, tech))]


def _years(life: _Life, rng: random.Random, tables: Tables) -> int:
    """Years in the job: at most the age less the job's usual start age; 0 when too young to say."""
    most = life.age - start_age(life.occupation, tables)
    if life.stage not in ("working", "parent") or most < 2:
        rng.random()  # the same number of draws either way
        return 0
    return rng.randint(max(1, most // 4), most)


# ----- what they say -----


def _pool(tables: Tables, stage: LifeStage, occupation: str, age: int) -> Pool:
    """The stage's phrases, the occupation family's (for working people and parents) and the adults'.

    Ambitions (a deposit, a promotion) join the goals for the under-50s only.
    """
    phrases = tables.phrases
    parts = [phrases.stages[stage]]
    family = family_of(occupation, tables)
    if stage in ("working", "parent") and family in phrases.families:
        parts.append(phrases.families[family])
    if stage != "child":
        parts.append(phrases.adults)
    merged = Pool(*(tuple(item for part in parts for item in getattr(part, field)) for field in Pool._fields))
    return merged._replace(goals=merged.goals + merged.ambitions) if age < 50 else merged


def _words(first: str, age: int, occupation: str, place: str, pronouns: str, years: int) -> dict[str, object]:
    occ = _inline(occupation)
    return {
        "first": first,
        "age": age,
        "a_age": f"{'an' if str(age).startswith('8') or age in (11, 18) else 'a'} {age}",
        "place": place,
        "occ": occ,
        "a_occ": _article(occ),
        "their": {"she/her": "her", "he/him": "his"}.get(pronouns, "their"),
        "years": years,
    }


def _background(pool: Pool, words: dict[str, object], rng: random.Random) -> str:
    """An intro, what the persona does, and up to two sentences about the rest of life."""
    work = [s for s in pool.work if "{years}" not in s or words["years"]]
    intro = rng.choice(load_tables().phrases.intros)
    sentences = [intro, rng.choice(work), *rng.sample(pool.life, 2)]
    return " ".join(sentences[: rng.randint(2, 4)])


def _quote(tables: Tables, stage: LifeStage, occupation: str, index: int, spread: int) -> str:
    """A quote taken in turns: from the stage's, the family's or the adults' quotes, by index.

    Within each pool, consecutive turns stride through it (a stride coprime with its size), so a
    batch uses every quote of a pool before any repeats.
    """
    phrases = tables.phrases
    stage_quotes = phrases.stages[stage].quotes
    family = phrases.families.get(family_of(occupation, tables))
    pools = [
        stage_quotes,
        family.quotes if family and stage in ("working", "parent") else stage_quotes,
        phrases.adults.quotes if stage != "child" else stage_quotes,
    ]
    pool = pools[index % 3]
    step = next(s for s in _STEPS if math.gcd(s, len(pool)) == 1)
    return pool[(spread + (index // 3) * step) % len(pool)]


_SMALL_WORDS = {"and", "of", "for", "the", "in", "to", "or"}


def _faker_job(fake: Faker) -> str:
    """A Faker job, reordered from 'Therapist, art' to 'Art Therapist' ("Speech and Language Therapist")."""
    head, _, tail = re.sub(r"\s*\(.*?\)", "", fake.job()).partition(", ")
    words = f"{tail} {head}".replace("/", " / ").split()
    title = " ".join(w if w in _SMALL_WORDS and i else w[:1].upper() + w[1:] for i, w in enumerate(words))
    return title.replace(" / ", "/")


def _inline(title: str) -> str:
    """A title as it reads mid-sentence: lower case except acronyms."""
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in title.split())


def _article(phrase: str) -> str:
    """The phrase with "a" or "an" before it, as it sounds."""
    word = phrase.split()[0]
    if word.isupper() and len(word) > 1:  # read letter by letter: "an IT", "a UX"
        vowel = word[0] in "AEFHILMNORSX"
    else:
        vowel = word[0] in "aeio" or (word[0] == "u" and not word.startswith(("uni", "us")))
    return f"{'an' if vowel else 'a'} {phrase}"
