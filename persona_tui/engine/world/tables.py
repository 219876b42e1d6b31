"""The world's data: countries, regions, jobs and their families, phrases, name pools and wording.

They live in TOML files under ``data/`` so that adding a city or a job is an edit to a
data file, not to code, and they ship as package data. They are read once, on the first
persona composed (never at import: the app's first frame does not wait on them), into
typed tuples the rest of the generator reads by field name.
"""

from __future__ import annotations

import functools
import tomllib
from importlib.resources import files
from typing import Any, NamedTuple


class Country(NamedTuple):
    """A country a persona can live in, and how a description names it."""

    name: str
    aliases: tuple[str, ...]
    demonyms: tuple[str, ...]
    locales: tuple[str, ...]  # Faker locales (or our own name pools) for the persona's name
    cities: tuple[str, ...]
    city_aliases: dict[str, tuple[str, ...]]  # city -> other spellings recognised in a description
    default: bool  # picked from when a description names no place


class Region(NamedTuple):
    """A region within a country: a place like a city, whose persona lives in one of its cities."""

    country: str
    name: str
    forms: tuple[str, ...]  # how a description names it
    cities: tuple[str, ...]


class Job(NamedTuple):
    """A job a description can ask for."""

    forms: tuple[str, ...]  # how a description names it (plurals match too)
    titles: tuple[str, ...]  # the occupations a persona doing it gets
    tech: int  # nudge to tech_savviness
    start: int = 0  # the usual age to start it after training; 0: the family's (or 20)


class Family(NamedTuple):
    """A family of occupations that share flavour (health, teaching, ...), found by words in a title."""

    name: str
    words: tuple[str, ...]  # folded words (or word starts ending in "*") found in an occupation
    start: int  # the usual age to start work in it


class NamePool(NamedTuple):
    """Our own given names and surnames for a locale whose Faker names do not suit."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    surnames: tuple[str, ...]


class Pool(NamedTuple):
    """What one life stage or occupation family adds to a persona's writing (format strings)."""

    work: tuple[str, ...] = ()  # the background's sentence about what the persona does
    life: tuple[str, ...] = ()  # background sentences about the rest of life
    hobbies: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()
    ambitions: tuple[str, ...] = ()  # goals with a career ahead (a deposit, a promotion): only for the under-50s
    frustrations: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()


class Phrases(NamedTuple):
    """Sentences (format strings) and lists a persona is written from."""

    intros: tuple[str, ...]
    traits: tuple[str, ...]
    adults: Pool  # for every stage but childhood
    stages: dict[str, Pool]  # by life stage: child, student, working, parent, retired
    families: dict[str, Pool]  # by occupation family, for working people and parents


class Wording(NamedTuple):
    """How English differs by country: words swapped whole, case kept ("Maths" -> "Math")."""

    us_countries: frozenset[str]  # countries written in US English; the rest in British English
    to_us: dict[str, str]  # folded British word or phrase -> its US form
    to_uk: dict[str, str]


class Tables(NamedTuple):
    """Everything in ``data/``, in file order (the order random choices are made from)."""

    countries: dict[str, Country]  # by name
    defaults: tuple[str, ...]  # names of the default countries
    regions: tuple[Region, ...]
    jobs: tuple[Job, ...]
    families: tuple[Family, ...]  # in file order: the first whose word is in a title wins
    former_jobs: tuple[str, ...]  # for "retired" with no other job named
    phrases: Phrases
    own_names: dict[str, NamePool]  # by locale
    women_only: dict[str, frozenset[str]]  # by locale: women's given names, never a man's given name or surname
    wording: Wording


def _read(name: str) -> dict[str, Any]:
    """One data file, parsed."""
    return tomllib.loads((files(__package__) / "data" / name).read_text(encoding="utf-8"))


def _strings(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    """A list of strings from the entry, empty when the key is absent; anything else is a mistake in the data."""
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"offline data: {key!r} must be a list of strings, got {value!r}")
    return tuple(value)


def _country(entry: dict[str, Any]) -> Country:
    aliases = entry.get("city_aliases", {})
    return Country(
        name=entry["name"],
        aliases=_strings(entry, "aliases"),
        demonyms=_strings(entry, "demonyms"),
        locales=_strings(entry, "locales"),
        cities=_strings(entry, "cities"),
        city_aliases={city: _strings(aliases, city) for city in aliases},
        default=bool(entry["default"]),
    )


def _region(entry: dict[str, Any]) -> Region:
    forms = _strings(entry, "forms") or (entry["name"],)
    return Region(entry["country"], entry["name"], forms, _strings(entry, "cities"))


def _pool(entry: dict[str, Any]) -> Pool:
    return Pool(*(_strings(entry, key) for key in Pool._fields))


def _phrases(data: dict[str, Any]) -> Phrases:
    return Phrases(
        intros=_strings(data, "intros"),
        traits=_strings(data, "traits"),
        adults=_pool(data["adults"]),
        stages={stage: _pool(entry) for stage, entry in data["stage"].items()},
        families={family: _pool(entry) for family, entry in data["family"].items()},
    )


def _job(entry: dict[str, Any]) -> Job:
    return Job(_strings(entry, "forms"), _strings(entry, "titles"), int(entry["tech"]), int(entry.get("start", 0)))


def _wording(data: dict[str, Any]) -> Wording:
    def pairs(key: str) -> dict[str, str]:
        return {str(k).casefold(): str(v) for k, v in data[key].items()}

    return Wording(frozenset(_strings(data, "us_countries")), pairs("to_us"), pairs("to_uk"))


@functools.cache
def load_tables() -> Tables:
    """The tables, read from the package's data files on first use and kept."""
    countries = {c.name: c for c in map(_country, _read("countries.toml")["country"])}
    jobs = _read("jobs.toml")
    names = _read("names.toml")
    return Tables(
        countries=countries,
        defaults=tuple(name for name, country in countries.items() if country.default),
        regions=tuple(map(_region, _read("regions.toml")["region"])),
        jobs=tuple(map(_job, jobs["job"])),
        families=tuple(
            Family(f["name"], tuple(w.casefold() for w in _strings(f, "words")), int(f["start"]))
            for f in jobs["family"]
        ),
        former_jobs=_strings(jobs, "former_jobs"),
        phrases=_phrases(_read("phrases.toml")),
        own_names={
            locale: NamePool(*(_strings(pool, k) for k in NamePool._fields))
            for locale, pool in names.items()
            if locale != "women_only"
        },
        women_only={locale: frozenset(_strings(names["women_only"], locale)) for locale in names.get("women_only", {})},
        wording=_wording(_read("wording.toml")),
    )
