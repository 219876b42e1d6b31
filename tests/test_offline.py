"""The offline sample generator: honest, deterministic under a seed, faithful to the
description, and streamed at the configured pace."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from faker.config import AVAILABLE_LOCALES
from faker.providers.person import en_KE, en_US

from persona_tui.engine.providers.base import PromptSpec, Provider
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.engine.world.reading import matchers
from persona_tui.engine.world.tables import load_tables
from persona_tui.models import Persona

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ["novice", "basic", "intermediate", "advanced", "expert"]


def spec(description: str, index: int = 0, avoid: tuple[str, ...] = ()) -> PromptSpec:
    return PromptSpec(messages=[], schema={}, description=description, index=index, avoid_names=avoid)


def canonical(persona: Persona) -> str:
    return json.dumps(persona.model_dump(mode="json"), ensure_ascii=False)


def many(description: str, n: int = 12, seed: int = 11) -> list[Persona]:
    provider = OfflineProvider(seed=seed)
    return [provider.compose(description, i) for i in range(n)]


class FakeTime:
    """A clock that only moves when slept on; ``granularity`` mimics coarse timers that oversleep."""

    def __init__(self, granularity: float = 0.0) -> None:
        self.now = 100.0
        self.granularity = granularity
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.now += math.ceil(seconds / self.granularity) * self.granularity if self.granularity else seconds


# --- identity --------------------------------------------------------------------------------------------------


def test_says_it_is_not_ai() -> None:
    provider = OfflineProvider()
    assert provider.is_ai is False
    assert "not AI" in provider.label
    assert provider.name == "offline"
    assert provider.model == "offline-sample"
    assert provider.endpoint == "local"
    assert isinstance(provider, Provider)


def test_rejects_negative_rate() -> None:
    with pytest.raises(ValueError):
        OfflineProvider(tokens_per_second=-1)


def test_faker_is_imported_lazily() -> None:
    code = "import sys, persona_tui.engine.providers.offline\nprint('faker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tables_are_broad_and_use_real_locales() -> None:
    tables = load_tables()
    assert len(tables.countries) >= 40
    assert sum(1 for place in matchers().places if place.cities) >= 40
    assert len(tables.jobs) >= 60
    assert len(tables.defaults) >= 10
    for country in tables.countries.values():
        assert set(country.locales) <= set(AVAILABLE_LOCALES) | set(tables.own_names)


# --- determinism ------------------------------------------------------------------------------------------------


def test_same_seed_same_persona() -> None:
    a = OfflineProvider(seed=7).compose("nurses in rural Kenya", 3)
    b = OfflineProvider(seed=7).compose("nurses in rural Kenya", 3)
    assert canonical(a) == canonical(b)


def test_indexes_and_seeds_differ() -> None:
    personas = many("nurses in rural Kenya", n=10, seed=7)
    assert len({canonical(p) for p in personas}) == 10
    assert len({p.name for p in personas}) >= 8
    other = OfflineProvider(seed=8).compose("nurses in rural Kenya", 0)
    assert canonical(other) != canonical(personas[0])


def test_no_seed_is_fresh_each_time() -> None:
    provider = OfflineProvider()
    assert len({canonical(provider.compose("teachers", 0)) for _ in range(5)}) > 1


def test_deterministic_across_processes() -> None:
    code = (
        "from persona_tui.engine.providers.offline import OfflineProvider\n"
        "import json\n"
        "p = OfflineProvider(seed=42).compose('Software engineers in Berlin', 5, ['Nobody Here'])\n"
        "print(json.dumps(p.model_dump(mode='json'), ensure_ascii=False))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8"}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout.strip())
    here = canonical(OfflineProvider(seed=42).compose("Software engineers in Berlin", 5, ["Nobody Here"]))
    assert outputs == {here}


# --- streaming ---------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_joins_to_the_composed_persona() -> None:
    provider = OfflineProvider(seed=3, tokens_per_second=0)
    pieces = [part.text async for part in provider.stream(spec("farmers in Ghana", 2))]
    joined = "".join(pieces)
    composed = provider.compose("farmers in Ghana", 2)
    assert joined == canonical(composed)
    assert Persona.model_validate_json(joined) == composed
    assert len(pieces) > 100
    assert max(len(p) for p in pieces) <= 8
    assert all(pieces)
    await provider.aclose()


@pytest.mark.asyncio
async def test_stream_honours_avoid_names() -> None:
    provider = OfflineProvider(seed=3, tokens_per_second=0)
    first = provider.compose("farmers in Ghana", 2).name
    pieces = [part.text async for part in provider.stream(spec("farmers in Ghana", 2, (first,)))]
    assert Persona.model_validate_json("".join(pieces)).name != first


@pytest.mark.asyncio
async def test_pacing_matches_the_rate() -> None:
    fake = FakeTime()
    provider = OfflineProvider(seed=1, tokens_per_second=100, sleep=fake.sleep, clock=fake.clock)
    stream = provider.stream(spec("teachers in Lyon"))
    count = 0
    async for _ in stream:
        count += 1
        if count == 201:  # 200 intervals after the first piece
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert sum(fake.sleeps) == pytest.approx(2.0, rel=0.1)
    assert fake.now - 100.0 == pytest.approx(2.0, rel=0.1)


@pytest.mark.asyncio
async def test_pacing_makes_up_for_coarse_sleeps() -> None:
    # Timers that wake 15 ms late at best: one sleep per piece would take 15 ms x pieces.
    fake = FakeTime(granularity=0.015)
    provider = OfflineProvider(seed=1, tokens_per_second=1000, sleep=fake.sleep, clock=fake.clock)
    pieces = [part.text async for part in provider.stream(spec("teachers in Lyon"))]
    ideal = (len(pieces) - 1) / 1000
    assert ideal <= fake.now - 100.0 <= ideal + 0.015 + 1e-9
    assert len(fake.sleeps) < len(pieces) / 5


@pytest.mark.asyncio
async def test_zero_rate_never_waits_but_yields_to_the_loop() -> None:
    fake = FakeTime()
    provider = OfflineProvider(seed=1, tokens_per_second=0, sleep=fake.sleep, clock=fake.clock)
    pieces = [part.text async for part in provider.stream(spec("teachers in Lyon"))]
    assert fake.sleeps, "no cancel points"
    assert all(s == 0 for s in fake.sleeps)
    assert len(fake.sleeps) >= len(pieces) // 50 - 1
    assert fake.now == 100.0


@pytest.mark.asyncio
async def test_cancel_lands_mid_stream_without_pacing() -> None:
    provider = OfflineProvider(seed=1, tokens_per_second=0)
    total = len([p async for p in provider.stream(spec("teachers in Lyon"))])
    got: list[str] = []

    async def consume() -> None:
        async for piece in provider.stream(spec("teachers in Lyon")):
            got.append(piece)
            if len(got) == 10:
                asyncio.current_task().cancel()  # type: ignore[union-attr]

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(consume())
    assert 10 <= len(got) < total


# --- what the description asks for ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "lo", "hi"),
    [
        ("nurses aged 40 to 60", 40, 60),
        ("farmers 40-60", 40, 60),
        ("teachers between 25 and 35", 25, 35),
        ("developers in their 30s", 30, 39),
        ("parents in their early forties", 40, 43),
        ("people over 65", 66, 120),
        ("65+ shoppers", 65, 120),
        ("gamers under 25", 0, 24),
        ("teenagers in Lagos", 13, 19),
        ("retirees in Spain", 60, 100),
        ("retired teachers", 60, 100),
        ("students in Toronto", 16, 30),
        ("a nurse aged 45", 45, 45),
        ("45-year-old plumbers", 45, 45),
    ],
)
def test_age_stays_in_the_requested_range(description: str, lo: int, hi: int) -> None:
    ages = [p.age for p in many(description)]
    assert all(lo <= age <= hi for age in ages), ages


@pytest.mark.parametrize(
    "description",
    ["nurses with 10-15 years of experience", "founders of firms with over 100 employees", "teams of 5-10 people"],
)
def test_numbers_that_are_not_ages_are_ignored(description: str) -> None:
    assert all(18 <= p.age <= 80 for p in many(description))


def test_age_varies_when_unconstrained() -> None:
    ages = [p.age for p in many("people who like hiking", n=20)]
    assert len(set(ages)) >= 8
    assert all(18 <= age <= 80 for age in ages)


def test_rural_kenya_gives_kenyan_places_and_names() -> None:
    kenyan = set(en_KE.Provider.first_names_female) | set(en_KE.Provider.first_names_male)
    for persona in many("nurses in rural Kenya"):
        assert persona.location.endswith(", Kenya")
        assert persona.location.startswith("Rural")
        assert persona.name.split()[0] in kenyan


@pytest.mark.parametrize(
    ("description", "country"),
    [
        ("teachers in Japan", "Japan"),
        ("farmers in brazil", "Brazil"),
        ("Nigerian students", "Nigeria"),
        ("UK nurses", "United Kingdom"),
        ("small business owners in South Korea", "South Korea"),
        ("Kenya-based drivers", "Kenya"),
        ("people from the Philippines", "Philippines"),
    ],
)
def test_country_is_honoured(description: str, country: str) -> None:
    for persona in many(description, n=6):
        assert persona.location.endswith(f", {country}"), persona.location


@pytest.mark.parametrize(
    ("description", "location"),
    [
        ("developers in Nairobi", "Nairobi, Kenya"),
        ("nurses in Sao Paulo", "São Paulo, Brazil"),
        ("students in Mexico City", "Mexico City, Mexico"),
        ("designers in new york", "New York, United States"),
        ("retirees living in Tokyo", "Tokyo, Japan"),
        ("bank tellers in Bangalore", "Bengaluru, India"),
    ],
)
def test_city_is_honoured(description: str, location: str) -> None:
    assert {p.location for p in many(description, n=6)} == {location}


@pytest.mark.parametrize(
    ("description", "region", "country"),
    [
        ("retired teachers in Ohio who garden", "Ohio", "United States"),
        ("developers in New Mexico", "New Mexico", "United States"),
        ("clinic staff in West Virginia", "West Virginia", "United States"),
        ("people in Washington State", "Washington", "United States"),
        ("students in Ontario", "Ontario", "Canada"),
        ("engineers in Karnataka", "Karnataka", "India"),
        ("farmers in rural Queensland", "Queensland", "Australia"),
    ],
)
def test_a_region_gives_one_of_its_cities(description: str, region: str, country: str) -> None:
    locations = [p.location for p in many(description, n=8)]
    assert all(loc.endswith(f", {region}, {country}") for loc in locations), locations
    assert len(set(locations)) >= 2, "its cities vary"


@pytest.mark.parametrize(
    ("description", "location"),
    [
        ("teachers in Austin, Texas", "Austin, Texas, United States"),
        ("nurses in Houston, Texas", "Houston, Texas, United States"),
        ("nurses in London, Ontario", "London, Ontario, Canada"),
    ],
)
def test_a_city_named_with_its_region_is_kept(description: str, location: str) -> None:
    assert {p.location for p in many(description, n=6)} == {location}


@pytest.mark.parametrize(
    ("description", "locations"),
    [
        ("teachers in Kansas City, Missouri", {"Kansas City, Missouri, United States"}),
        ("nurses in Sydney, Australia and Halifax, Nova Scotia", {"Sydney, Australia", "Halifax, Nova Scotia, Canada"}),
        ("developers in Nairobi, Kenya", {"Nairobi, Kenya"}),
    ],
)
def test_cities_regions_and_countries_named_together_are_one_place(description: str, locations: set[str]) -> None:
    assert {p.location for p in many(description, n=6)} == locations


def test_a_region_and_a_country_whose_names_overlap_are_both_used() -> None:
    locations = [p.location for p in many("farmers in New Mexico and Mexico", n=4)]
    assert [loc.endswith(", New Mexico, United States") for loc in locations] == [True, False, True, False]
    assert all(loc.endswith(", Mexico") for loc in locations[1::2])


@pytest.mark.parametrize(
    ("description", "not_wanted"),
    [
        ("cake decorators", "Painter"),
        ("occupational therapists", "Psychotherapist"),
        ("football coaches", "Personal Trainer"),
        ("history teachers who study 300 BC", "British Columbia"),
    ],
)
def test_words_that_only_look_like_a_place_or_job_are_not_read_as_one(description: str, not_wanted: str) -> None:
    assert not any(not_wanted in f"{p.occupation} {p.location}" for p in many(description, n=6))


def test_a_region_name_inside_a_country_name_is_not_the_country() -> None:
    assert all(p.location.endswith(", Mexico") and "New Mexico" not in p.location for p in many("farmers in Mexico"))


def test_a_named_place_beats_a_demonym() -> None:
    assert all(p.location.endswith(", Canada") for p in many("French teachers in Canada", n=6))


def test_latin_america_is_not_the_united_states() -> None:
    assert not any(p.location.endswith("United States") for p in many("Latin American developers", n=20))


def test_several_places_take_turns() -> None:
    personas = many("clinic managers in Kenya and Nigeria", n=4)
    assert [p.location.rsplit(", ", 1)[1] for p in personas] == ["Kenya", "Nigeria", "Kenya", "Nigeria"]


def test_no_place_picks_varied_countries() -> None:
    defaults = load_tables().defaults
    countries = [p.location.rsplit(", ", 1)[1] for p in many("people who like hiking", n=30)]
    assert len(set(countries)) >= 6
    assert set(countries) <= set(defaults)


@pytest.mark.parametrize(
    ("description", "keyword"),
    [
        ("nurses", "nurse"),
        ("a nurse", "nurse"),
        ("teachers", "teacher"),
        ("software engineers", "software engineer"),
        ("developers", "developer"),
        ("farmers", "farmer"),
        ("clinic managers", "clinic manager"),
        ("small business owners", "owner"),
        ("students", "student"),
        ("retirees", "retired"),
        ("accountants in Dublin", "accountant"),
        ("bakers in Lyon aged 25-35", "bak"),
        ("yoga teachers", "yoga"),
        ("midwives in Accra", "midwife"),
        ("call centre agents in Manila", "agent"),
        ("painters in Ohio", "painter"),
    ],
)
def test_occupation_is_honoured(description: str, keyword: str) -> None:
    for persona in many(description, n=6):
        assert keyword in persona.occupation.lower(), persona.occupation


def test_retired_keeps_the_former_job() -> None:
    for persona in many("retired teachers", n=6):
        assert persona.occupation.startswith("Retired ") and "Teacher" in persona.occupation


def test_the_young_go_to_school_unless_told_otherwise() -> None:
    assert all("Student" in p.occupation for p in many("teenagers in Lagos"))
    # "Primary School Pupil", or in US English "Elementary School Student"
    children = many("children aged 6 to 11")
    assert all(
        p.occupation
        == ("Elementary School Student" if p.location.endswith("United States") else "Primary School Pupil")
        for p in children
    ), [(p.occupation, p.location) for p in children]


def test_unknown_occupation_falls_back_to_a_job_title() -> None:
    occupations = [p.occupation for p in many("people who like hiking", n=10)]
    assert all(o and "," not in o for o in occupations)
    assert len(set(occupations)) >= 7


# --- variety and consistency -------------------------------------------------------------------------------------


def test_fields_have_the_promised_shape() -> None:
    for persona in many("people who like hiking", n=30):
        assert 2 <= len(persona.goals) <= 4
        assert 2 <= len(persona.frustrations) <= 4
        assert 3 <= len(persona.personality_traits) <= 5
        assert 2 <= persona.background.count(". ") + 1 <= 4
        assert persona.name.split()[0] in persona.background
        text = " ".join([persona.background, persona.quote, *persona.goals])
        assert "{" not in text and "}" not in text  # every template placeholder was filled


def test_pronouns_match_the_name_and_sometimes_they() -> None:
    female, male = set(en_US.Provider.first_names_female), set(en_US.Provider.first_names_male)
    personas = many("nurses in Chicago", n=200)
    assert {p.pronouns for p in personas} == {"she/her", "he/him", "they/them"}
    for p in personas:
        first = p.name.split()[0]
        if p.pronouns == "she/her":
            assert first in female
        elif p.pronouns == "he/him":
            assert first in male


def test_own_name_pools_are_latin_and_gendered() -> None:
    females, males, _ = load_tables().own_names["ur_latn"]
    personas = many("Pakistani teachers", n=40)
    assert {p.pronouns for p in personas} >= {"she/her", "he/him"}
    for p in personas:
        first = p.name.split()[0]
        assert first in {"she/her": females, "he/him": males}.get(p.pronouns, females + males)
    assert all(p.name.isascii() for p in many("nurses in Cairo"))


def test_tech_savviness_follows_age_and_work() -> None:
    def mean_level(description: str) -> float:
        levels = [LEVELS.index(p.tech_savviness) for p in many(description, n=30)]
        return sum(levels) / len(levels)

    assert mean_level("software engineers aged 22 to 29") > mean_level("retired farmers over 75") + 1.5


def test_avoid_names_draws_again_and_keeps_the_rest() -> None:
    provider = OfflineProvider(seed=5)
    original = provider.compose("nurses in Kenya", 0)
    again = provider.compose("nurses in Kenya", 0, avoid_names=[original.name.upper()])
    assert again.name.casefold() != original.name.casefold()
    assert "(" not in again.name  # a real redraw, not the last-resort "(1)" suffix
    assert (again.age, again.location, again.occupation) == (original.age, original.location, original.occupation)


def test_avoid_names_accumulated_stay_unique() -> None:
    provider = OfflineProvider(seed=5)
    seen: list[str] = []
    for _ in range(40):  # the same index each time: only avoid_names keeps them apart
        seen.append(provider.compose("nurses in Kenya", 0, avoid_names=seen).name)
    assert len({name.casefold() for name in seen}) == 40
    assert not any("(" in name for name in seen)
