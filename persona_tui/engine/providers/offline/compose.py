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
from persona_tui.engine.world.reading import Wanted, fold, read_description
from persona_tui.engine.world.tables import Pool, Tables, load_tables
from persona_tui.engine.world.wording import localize
from persona_tui.models import LifeStage, Persona, Slot, TechSavviness

if TYPE_CHECKING:
    from faker import Faker

_LEVELS: tuple[TechSavviness, ...] = ("novice", "basic", "intermediate", "advanced", "expert")
_RURAL = "Rural area near "
_STEPS = (7, 11, 13, 17, 19, 23, 29, 31)  # strides through a pool: each coprime with most pool sizes
_SLOT_FIELDS = ("age", "pronouns", "location", "occupation", "tech_savviness")  # pins the slot already holds
_HOME_MAKER = re.compile(r"stay-at-home|homemaker|housewife|househusband", re.IGNORECASE)
_YOUNG_CHILDREN_UNTIL = 42  # parents younger than this have young children; older ones teenagers or grown-ups


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
    first, name = _pinned_name(slot, *unused_name(home.fake, home.locale, female, avoid, rng))
    life = _slot_life(slot, wanted, rng, tables) if slot else _life(wanted, rng, tables)
    occupation = localize(life.occupation, home.country)
    pool = _pool(tables, life.stage, occupation, life.age)
    words = _words(first, life.age, occupation, home.place, pronouns, _years(life, rng, tables))
    words["hobby"] = rng.choice(pool.hobbies)
    background = _background(pool, words, rng)
    tech = slot.tech_savviness if slot else _tech_level(life, rng)

    def say(text: str) -> str:
        return localize(text.format(**words), home.country)

    persona = Persona(
        name=name,
        age=life.age,
        pronouns=pronouns,
        location=home.location,
        occupation=occupation,
        background=say(background),
        goals=[say(g) for g in rng.sample(pool.goals, rng.randint(2, 4))],
        frustrations=[say(f) for f in rng.sample(pool.frustrations, rng.randint(2, 4))],
        personality_traits=[say(t) for t in rng.sample(tables.phrases.traits, rng.randint(3, 5))],
        tech_savviness=tech,
        communication_style=say(rng.choice(pool.styles)),
        quote=say(_quote(tables, life.stage, occupation, life.age, index, spread)),
    )
    return _pinned(persona, slot.pins) if slot else persona


def _pinned_name(slot: Slot | None, first: str, name: str) -> tuple[str, str]:
    """(given name, full name): the slot's pinned name when it has one (drawn all the same, to keep the draws)."""
    pinned = slot.pins.get("name", "").strip() if slot else ""
    return (pinned.split()[0], pinned) if pinned else (first, name)


def _pinned(persona: Persona, pins: dict[str, str]) -> Persona:
    """The persona with each pinned field it has set to the pin (the slot's own fields are already the slot's).

    A pinned text field is the pin; a list gets the pin first; the background gets it as a last sentence
    unless it already says it.
    """
    update: dict[str, object] = {}
    for field, value in pins.items():
        if field in _SLOT_FIELDS or field not in Persona.model_fields or not value.strip():
            continue
        current = getattr(persona, field)
        if fold(value) in fold(str(current)):
            continue
        if isinstance(current, list):
            update[field] = [value, *current[:-1]] if len(current) > 1 else [value]
        elif field == "background":
            update[field] = f"{current} {value.rstrip('.')}."
        else:
            update[field] = value
    return persona.model_copy(update=update)


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

    Ambitions (a deposit, a promotion) join the goals for the under-50s only. Stay-at-home parents
    and homemakers tell of running the home instead of a career.
    """
    phrases = tables.phrases
    parts = _stage_pools(tables, stage, occupation, age)
    family = family_of(occupation, tables)
    if stage in ("working", "parent") and family in phrases.families:
        parts.append(phrases.families[family])
    if not _young(stage, age):
        parts.append(phrases.adults)
    merged = Pool(*(tuple(item for part in parts for item in getattr(part, field)) for field in Pool._fields))
    if stage in ("working", "parent") and _HOME_MAKER.search(occupation):
        merged = merged._replace(work=phrases.stages["home"].work)
    return merged._replace(goals=merged.goals + merged.ambitions) if age < 50 else merged


def _young(stage: LifeStage, age: int) -> bool:
    """A child, or a student still at school (under 18): no adults' phrases."""
    return stage == "child" or (stage == "student" and age < 18)


def _stage_pools(tables: Tables, stage: LifeStage, occupation: str, age: int) -> list[Pool]:
    """The life stage's pools: school or university for students, the children's age for parents.

    "Went part-time" is for parents of young children who work for someone else: not for
    homemakers, nor for those who run a company (the business family).
    """
    stages = tables.phrases.stages
    if stage == "student":
        return [stages["school" if age < 18 else "student"]]
    if stage != "parent":
        return [stages[stage]]
    if age >= _YOUNG_CHILDREN_UNTIL:
        return [stages["parent"], stages["parent_older"]]
    parts = [stages["parent"], stages["parent_young"]]
    if not _HOME_MAKER.search(occupation) and family_of(occupation, tables) != "business":
        parts.append(stages["parent_part_time"])
    return parts


def _words(first: str, age: int, occupation: str, place: str, pronouns: str, years: int) -> dict[str, object]:
    occ = _inline(occupation)
    return {
        "first": first,
        "age": age,
        "age_years": _count(age, "year"),
        "a_age": f"{'an' if str(age).startswith('8') or age in (11, 18) else 'a'} {age}",
        "place": place,
        "occ": occ,
        "a_occ": _article(occ),
        "their": {"she/her": "her", "he/him": "his"}.get(pronouns, "their"),
        "years": _count(years, "year") if years else "",
    }


def _count(number: int, noun: str) -> str:
    """The number with its noun, plural unless it is one: "1 year", "12 years"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _background(pool: Pool, words: dict[str, object], rng: random.Random) -> str:
    """An intro, what the persona does, and up to two sentences about the rest of life.

    At most one of the life sentences tells the hobby: two would say the same thing twice
    ("After school, Sam builds things. At weekends, Sam builds things.").
    """
    work = [s for s in pool.work if "{years}" not in s or words["years"]]
    intro = rng.choice(load_tables().phrases.intros)
    life = rng.sample(pool.life, 2)
    plain = [s for s in pool.life if "{hobby}" not in s]
    if all("{hobby}" in s for s in life) and plain:
        life[1] = rng.choice(plain)
    sentences = [intro, rng.choice(work), *life]
    return " ".join(sentences[: rng.randint(2, 4)])


def _quote(tables: Tables, stage: LifeStage, occupation: str, age: int, index: int, spread: int) -> str:
    """A quote taken in turns: from the stage's, the family's or the adults' quotes, by index.

    Within each pool, consecutive turns stride through it (a stride coprime with its size), so a
    batch uses every quote of a pool before any repeats.
    """
    phrases = tables.phrases
    stage_quotes = tuple(q for part in _stage_pools(tables, stage, occupation, age) for q in part.quotes)
    family = phrases.families.get(family_of(occupation, tables))
    pools = [
        stage_quotes,
        family.quotes if family and stage in ("working", "parent") else stage_quotes,
        stage_quotes if _young(stage, age) else phrases.adults.quotes,
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


# Words that keep their capital mid-sentence: languages and nationalities ("a retired English teacher").
_PROPER = frozenset((
    "african", "american", "arabic", "asian", "australian", "bengali", "brazilian", "british", "canadian",
    "cantonese", "chinese", "czech", "danish", "dutch", "english", "european", "filipino", "finnish", "french",
    "gaelic", "german", "greek", "hausa", "hebrew", "hindi", "hungarian", "igbo", "indian", "indonesian", "irish",
    "italian", "japanese", "kenyan", "korean", "latin", "mandarin", "mexican", "nigerian", "norwegian", "persian",
    "polish", "portuguese", "punjabi", "romanian", "russian", "scottish", "spanish", "swahili", "swedish", "tamil",
    "thai", "turkish", "ukrainian", "urdu", "vietnamese", "welsh", "yoruba", "zulu",
))  # fmt: skip


def _inline(title: str) -> str:
    """A title as it reads mid-sentence: lower case except acronyms, languages and nationalities."""
    return " ".join("/".join(map(_inline_word, word.split("/"))) for word in title.split())


def _inline_word(word: str) -> str:
    if (word.isupper() and len(word) > 1) or word.casefold() in _PROPER:
        return word
    return word.lower()


def _article(phrase: str) -> str:
    """The phrase with "a" or "an" before it, as it sounds."""
    word = phrase.split()[0]
    if word.isupper() and len(word) > 1:  # read letter by letter: "an IT", "a UX"
        vowel = word[0] in "AEFHILMNORSX"
    else:
        word = word.lower()
        vowel = word[0] in "aeio" or (word[0] == "u" and not word.startswith(("uni", "us")))
    return f"{'an' if vowel else 'a'} {phrase}"
