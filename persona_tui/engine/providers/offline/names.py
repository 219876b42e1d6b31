"""Names for personas: Faker instances seeded from the persona's randomness, in the locale's order.

Faker is slow to import and its instances slow to build, so it is imported on first use and
one instance per locale is kept and reseeded for each persona; callers hold the provider's
lock while they use one. Some locales need help for names to read well in English text:
romanized Japanese and Taiwanese names, family-name-first order, or our own pools (names.toml).
"""

from __future__ import annotations

import random
from collections.abc import Set
from typing import TYPE_CHECKING

from persona_tui.engine.world.tables import load_tables

if TYPE_CHECKING:
    from faker import Faker

_FAMILY_FIRST = {"hu_HU": " ", "ko_KR": "", "zh_CN": ""}  # surname first; separator
_ROMANIZED = {"ja_JP", "zh_TW"}  # Latin-script names suit the English text around them
_FAKERS: dict[str, Faker] = {}


def seeded(locale: str, rng: random.Random) -> Faker:
    """A cached Faker for the locale (slow to import and build), reseeded from the persona's randomness."""
    if locale not in _FAKERS:
        from faker import Faker
        from faker.config import AVAILABLE_LOCALES

        _FAKERS[locale] = Faker(locale if locale in AVAILABLE_LOCALES else "en_US")
    _FAKERS[locale].seed_instance(rng.getrandbits(64))
    return _FAKERS[locale]


def draw_name(fake: Faker, locale: str, female: bool) -> tuple[str, str]:
    """(given name, full name) in the order usual for the locale."""
    if pool := load_tables().own_names.get(locale):
        first = fake.random.choice(pool.female if female else pool.male)
        return first, f"{first} {fake.random.choice(pool.surnames)}"
    if locale in _ROMANIZED:
        first = fake.first_romanized_name_female() if female else fake.first_romanized_name_male()
        return first, f"{first} {fake.last_romanized_name()}"
    if not female and locale in load_tables().women_only:
        return _mans_name(fake, locale)
    first = fake.first_name_female() if female else fake.first_name_male()
    if locale in _FAMILY_FIRST:
        return first, f"{fake.last_name()}{_FAMILY_FIRST[locale]}{first}"
    return first, f"{first} {fake.last_name()}"


def _mans_name(fake: Faker, locale: str) -> tuple[str, str]:
    """(given name, full name) for a man where the locale's pools file women's names among men's names and
    surnames (names.toml, women_only): drawn again until neither is a woman's, as a surname comes from the father.
    """
    person = fake.factories[0].provider("faker.providers.person")
    women = load_tables().women_only[locale] | set(getattr(person, "first_names_female", ()))
    first, last = fake.first_name_male(), fake.last_name()
    for _ in range(50):  # a handful of redraws at most in practice
        if first not in women:
            break
        first = fake.first_name_male()
    for _ in range(50):
        if last not in women:
            break
        last = fake.last_name()
    return first, f"{first} {last}"


def unused_name(fake: Faker, locale: str, female: bool, avoid: Set[str], rng: random.Random) -> tuple[str, str]:
    """(given name, full name) whose casefolded full name is not in ``avoid``.

    Names are redrawn with the same gender, so the rest of the persona is unchanged; a locale
    with few names falls back to en_US after 100 tries, and a pathological avoid list gets a
    numbered name.
    """
    first, name = draw_name(fake, locale, female)
    for attempt in range(1, 200):
        if name.casefold() not in avoid:
            break
        if attempt == 100:  # a locale with few names: widen the pool
            locale, fake = "en_US", seeded("en_US", rng)
        first, name = draw_name(fake, locale, female)
    base, suffix = name, 0
    while name.casefold() in avoid:  # a pathological avoid list: disambiguate
        suffix += 1
        name = f"{base} ({suffix})"
    return first, name
