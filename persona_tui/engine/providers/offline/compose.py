"""Composing one persona from what a description asks for and a source of randomness.

All the persona's randomness comes from the one ``rng`` passed in, drawn in a fixed order,
so a seeded provider gives the same persona for the same description and index in every
process. Keep that order when changing this module: reordering draws changes every persona.
"""

from __future__ import annotations

import random
import re
from collections.abc import Set
from typing import TYPE_CHECKING, NamedTuple

from persona_tui.engine.providers.offline.names import seeded, unused_name
from persona_tui.engine.world.reading import Wanted
from persona_tui.engine.world.tables import Tables, load_tables
from persona_tui.models import Persona, TechSavviness

if TYPE_CHECKING:
    from faker import Faker

_LEVELS: tuple[TechSavviness, ...] = ("novice", "basic", "intermediate", "advanced", "expert")


class _Home(NamedTuple):
    locale: str
    fake: Faker  # seeded for this persona, in its locale
    location: str  # as the persona's location field
    place: str  # as it reads in a sentence


class _Work(NamedTuple):
    occupation: str  # empty when the description names no job: it then depends on the age
    retired: bool
    tech: int  # the job's nudge to tech_savviness


def compose(wanted: Wanted, rng: random.Random, avoid: Set[str], index: int = 0) -> Persona:
    """One persona; ``index`` takes turns among several places, ``avoid`` holds casefolded names not to use."""
    tables = load_tables()
    phrases = tables.phrases
    home = _home(wanted, rng, index, tables)
    female = rng.random() < 0.5
    pronouns = "they/them" if rng.random() < 0.06 else ("she/her" if female else "he/him")
    first, name = unused_name(home.fake, home.locale, female, avoid, rng)
    work = _work(wanted, rng, tables)
    span = wanted.age_range or ((62, 85) if work.retired else (18, 26) if "Student" in work.occupation else None)
    age = rng.randint(*span) if span else round(rng.triangular(21, 67, 36))
    occupation = work.occupation or _by_age(age, rng)
    kind = "retired" if work.retired else "student" if "Student" in occupation or "Pupil" in occupation else "work"
    words = {
        "first": first,
        "age": age,
        "a_age": f"{'an' if str(age).startswith('8') or age in (11, 18) else 'a'} {age}",
        "place": home.place,
        "occ": _inline(occupation),
        "a_occ": _article(_inline(occupation)),
        "their": {"she/her": "her", "he/him": "his"}.get(pronouns, "their"),
        "years": max(2, min(age - 18, rng.randint(2, 25))),
        "hobby": rng.choice(phrases.hobbies),
    }
    parts = [phrases.intros, phrases.work[kind], phrases.life, phrases.recent]
    sentences = [rng.choice(choices) for choices in parts]
    tech = 2 + work.tech + (1 if age < 30 else -1 if age >= 60 else 0) - (age >= 75) + rng.choice((-1, 0, 0, 1))
    return Persona(
        name=name,
        age=age,
        pronouns=pronouns,
        location=home.location,
        occupation=occupation,
        background=" ".join(s.format(**words) for s in sentences[: rng.randint(2, 4)]),
        goals=[g.format(**words) for g in rng.sample(phrases.goals, rng.randint(2, 4))],
        frustrations=rng.sample(phrases.frustrations, rng.randint(2, 4)),
        personality_traits=rng.sample(phrases.traits, rng.randint(3, 5)),
        tech_savviness=_LEVELS[min(4, max(0, tech))],
        communication_style=rng.choice(phrases.styles),
        quote=rng.choice(phrases.quotes).format(**words),
    )


def _home(wanted: Wanted, rng: random.Random, index: int, tables: Tables) -> _Home:
    """Where the persona lives, and a Faker seeded for names from there. Several places take turns."""
    cities, country = wanted.places[index % len(wanted.places)] if wanted.places else ((), rng.choice(tables.defaults))
    locale = rng.choice(tables.countries[country].locales)
    fake = seeded(locale, rng)
    city = cities[0] if len(cities) == 1 else rng.choice(cities or tables.countries[country].cities)
    if wanted.rural:
        return _Home(locale, fake, f"Rural area near {city}, {country}", f"the countryside near {city}")
    return _Home(locale, fake, f"{city}, {country}", city)


def _work(wanted: Wanted, rng: random.Random, tables: Tables) -> _Work:
    """The job the description asks for; "retired" with another job (or none) makes a former one."""
    others = [job for job in wanted.jobs if job.titles != ("Retired",)]
    if len(others) < len(wanted.jobs):
        former = rng.choice(others[0].titles if others else tables.former_jobs)
        return _Work(f"Retired {former}", True, others[0].tech if others else -1)
    if others:
        return _Work(rng.choice(others[0].titles), False, others[0].tech)
    return _Work("", False, 0)


def _by_age(age: int, rng: random.Random) -> str:
    """An occupation when none was asked for: school for the young, else any job Faker knows."""
    if age < 20:
        return "Primary School Pupil" if age < 12 else "Secondary School Student" if age < 18 else "Student"
    return _faker_job(seeded("en_US", rng))


def _faker_job(fake: Faker) -> str:
    """A Faker job, reordered from 'Therapist, art' to 'Art Therapist'."""
    head, _, tail = re.sub(r"\s*\(.*?\)", "", fake.job()).partition(", ")
    return " ".join(w[:1].upper() + w[1:] for w in f"{tail} {head}".split())


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
