"""The population plan: drawn in code, seeded, spread over the ranges, shaped by the user's mix,
carried into each prompt, and checked against what the model wrote."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from persona_tui.engine.plan import (
    describe_mix,
    draw_plan,
    mix_from_table,
    parse_mix,
    slot_breaks,
    slot_lines,
)
from persona_tui.engine.prompt import build_messages
from persona_tui.models import GenerationRequest, Mix, Organization, Persona, RequestError, Slot


def plan_for(description: str, count: int, seed: int = 7, mix: Mix | None = None, org: Organization | None = None):
    return draw_plan(GenerationRequest.create(description, count, mix=mix), org, seed=seed)


def persona(**changes: object) -> Persona:
    base = dict(
        name="Amina Otieno",
        age=43,
        pronouns="she/her",
        location="Kisumu, Kenya",
        occupation="Ward Nurse",
        background="Works nights on a busy ward.",
        goals=["Finish her degree"],
        frustrations=["Short staffing"],
        personality_traits=["steady"],
        tech_savviness="basic",
        communication_style="Plain and warm.",
        quote="We manage.",
    )
    return Persona.model_validate(base | changes)


# --- drawing --------------------------------------------------------------------------------------------------


def test_ages_are_stratified_over_the_range_every_decade_present() -> None:
    plan = plan_for("nurses in Kenya aged 30 to 60", 20)
    ages = sorted(slot.age for slot in plan.slots)
    assert all(30 <= age <= 60 for age in ages)
    assert {age // 10 for age in ages} >= {3, 4, 5}  # 60 itself is one year of the range
    # one age per stratum: the 20 strata of 31 years leave no gap wider than two strata
    assert max(b - a for a, b in itertools.pairwise(ages)) <= 4
    for slot in plan.slots:
        assert slot.ages[0] <= slot.age <= slot.ages[1]


def test_random_draws_would_clump_where_strata_do_not() -> None:
    """Over many seeds, every fifth of the range holds a fifth of the slots: never empty, never doubled."""
    for seed in range(30):
        ages = [slot.age for slot in plan_for("teachers aged 20 to 69", 10, seed).slots]
        fifths = Counter((age - 20) // 10 for age in ages)
        assert sorted(fifths.values()) == [2, 2, 2, 2, 2], (seed, ages)


def test_same_seed_same_plan_and_other_seeds_differ() -> None:
    a = plan_for("nurses in Kenya", 12, seed=3)
    b = plan_for("nurses in Kenya", 12, seed=3)
    c = plan_for("nurses in Kenya", 12, seed=4)
    assert a == b
    assert a.slots != c.slots
    assert a.seed == 3


def test_without_a_seed_one_is_drawn_and_kept_so_the_plan_can_be_drawn_again() -> None:
    request = GenerationRequest.create("nurses", 5)
    plan = draw_plan(request)
    assert draw_plan(request, seed=plan.seed) == plan


def test_places_spread_over_a_countrys_towns_before_any_repeats() -> None:
    plan = plan_for("nurses in Kenya aged 30 to 60", 20)
    towns = Counter(slot.location for slot in plan.slots)
    assert all(location.endswith(", Kenya") for location in towns)
    assert len(towns) >= 5
    assert max(towns.values()) - min(towns.values()) <= 1  # used in turn, not clumped


def test_several_places_take_turns() -> None:
    plan = plan_for("teachers in Lagos and Nairobi", 6)
    locations = [slot.location for slot in plan.slots]
    assert sum("Nigeria" in loc for loc in locations) == 3
    assert sum("Kenya" in loc for loc in locations) == 3


def test_the_organizations_region_steers_places_when_the_description_names_none() -> None:
    org = Organization(name="Afya", region="Kenya", audience="nurses and midwives")
    plan = plan_for("busy people", 6, org=org)
    assert all(slot.location and slot.location.endswith("Kenya") for slot in plan.slots)
    assert "organization" in plan.sources["places"]
    assert all(slot.occupation and "Nurse" in slot.occupation for slot in plan.slots)


def test_occupation_variants_take_turns_and_none_is_the_writers_choice() -> None:
    plan = plan_for("nurses", 8)
    titles = Counter(slot.occupation for slot in plan.slots)
    assert len(titles) >= 3 and all("Nurse" in title for title in titles if title)
    assert all(slot.occupation is None for slot in plan_for("people who like cats", 4).slots)


def test_pronouns_follow_the_default_mix_with_some_they() -> None:
    counts = Counter(slot.pronouns for slot in plan_for("people", 50).slots)
    assert counts["she/her"] == counts["he/him"] == 24
    assert counts["they/them"] == 2


def test_life_stage_fits_age_and_job() -> None:
    for slot in plan_for("people aged 5 to 90", 40).slots:
        if slot.age < 13:
            assert slot.life_stage == "child"
        elif slot.age < 18:
            assert slot.life_stage == "student"
        if slot.life_stage == "retired":
            assert slot.age >= 55
    retirees = plan_for("retired teachers", 6)
    assert {slot.life_stage for slot in retirees.slots} == {"retired"}
    assert all(slot.occupation and slot.occupation.startswith("Retired") for slot in retirees.slots)


def test_tech_spreads_over_levels_and_leans_with_the_job() -> None:
    devs = Counter(slot.tech_savviness for slot in plan_for("software developers", 40).slots)
    carers = Counter(slot.tech_savviness for slot in plan_for("care workers", 40).slots)
    assert len(devs) >= 4
    assert devs["expert"] + devs["advanced"] > carers["expert"] + carers["advanced"]


# --- the user's mix ------------------------------------------------------------------------------------------


def test_mix_shapes_ages_pronouns_tech_and_pins() -> None:
    mix = parse_mix("ages 25-60; 60% she/her; tech novice:2 expert:1; pin location=Nairobi, Kenya")
    plan = plan_for("nurses", 30, mix=mix)
    assert all(25 <= slot.age <= 60 for slot in plan.slots)
    pronouns = Counter(slot.pronouns for slot in plan.slots)
    assert pronouns["she/her"] == 18
    tech = Counter(slot.tech_savviness for slot in plan.slots)
    assert tech == {"novice": 20, "expert": 10}
    assert {slot.location for slot in plan.slots} == {"Nairobi, Kenya"}
    assert plan.sources["ages"] == "your mix"


def test_percentages_leave_the_rest_to_the_others_and_weights_do_not() -> None:
    assert set(parse_mix("60% she/her").pronouns) == {"she/her", "he/him", "they/them"}
    assert parse_mix("60% she/her").pronouns["she/her"] == 60
    assert parse_mix("pronouns she/her:3 he/him:1").pronouns == {"she/her": 3, "he/him": 1}


def test_stage_weights_go_to_slots_by_age() -> None:
    plan = plan_for("people aged 20 to 80", 10, mix=parse_mix("stage student:1 working:2 retired:2"))
    by_age = [slot.life_stage for slot in sorted(plan.slots, key=lambda s: s.age)]
    assert by_age == ["student", "student", "working", "working", "working", "working"] + ["retired"] * 4


def test_places_and_jobs_in_the_mix() -> None:
    plan = plan_for("health workers", 4, mix=parse_mix("places Mombasa, Nakuru; jobs Midwife, Ward Nurse"))
    assert {slot.location for slot in plan.slots} == {"Mombasa, Kenya", "Nakuru, Kenya"}
    assert {slot.occupation for slot in plan.slots} == {"Midwife", "Ward Nurse"}


def test_mix_round_trips_through_its_compact_form() -> None:
    mix = parse_mix("ages 25-60; pronouns she/her:3 he/him:1; tech novice:2; places Nairobi; jobs Midwife; seed 9")
    assert parse_mix(describe_mix(mix)) == mix


def test_population_table_from_toml() -> None:
    mix = mix_from_table(
        {"ages": [25, 60], "pronouns": {"she/her": "60%"}, "tech": {"novice": 2, "expert": 1}, "pin": {"age": 40}}
    )
    assert mix.ages == (25, 60)
    assert mix.pronouns["she/her"] == 60 and "he/him" in mix.pronouns
    assert mix.pins == {"age": "40"}
    assert {slot.age for slot in plan_for("nurses", 3, mix=mix).slots} == {40}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ages 60-25", "youngest age (60) is above the oldest (25)"),
        ("colour blue", "is not one I know"),
        ("tech novice:lots", "name:number"),
        ("pin location", "field=value"),
        ("pin salary=3", "'salary' cannot be pinned"),
        ("tech wizard:1", "tech"),
        ("50% everyone", "is not pronouns"),
        ("seed x", "whole number"),
    ],
)
def test_unclear_mix_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_mix(text)
    assert caught.value.field == "mix"
    assert words in caught.value.message


def test_unknown_population_key_is_named() -> None:
    with pytest.raises(RequestError, match="unknown key 'agez'"):
        mix_from_table({"agez": [1, 2]})


# --- prompts and checks ----------------------------------------------------------------------------------------


def test_each_prompt_carries_its_slot() -> None:
    request = GenerationRequest.create("nurses in Kenya aged 30 to 60", 3)
    plan = draw_plan(request, seed=1)
    for slot in plan.slots:
        text = build_messages(request, slot.index, slot=slot)[1]["content"]
        assert f"- age: {slot.age}" in text
        assert f"- pronouns: {slot.pronouns}" in text
        assert f"- location: {slot.location}" in text
        assert f"- occupation: {slot.occupation}" in text
        assert f"- tech_savviness: {slot.tech_savviness}" in text
        assert f"slot {slot.index + 1} of 3" in text


def test_slot_lines_leave_out_what_is_the_writers_choice() -> None:
    slot = Slot(index=0, age=30, ages=(30, 34), pronouns="he/him", tech_savviness="basic", life_stage="working")
    text = "\n".join(slot_lines(slot, 1))
    assert "location" not in text and "occupation" not in text


SLOT = Slot(
    index=0,
    age=43,
    ages=(42, 44),
    pronouns="she/her",
    location="Kisumu, Kenya",
    occupation="Ward Nurse",
    tech_savviness="basic",
    life_stage="parent",
)


def test_a_persona_that_keeps_its_slot_has_no_breaks() -> None:
    assert slot_breaks(SLOT, persona()) == []
    assert slot_breaks(SLOT, persona(age=44, occupation="Senior Ward Nurse", location="Kisumu town, Kenya")) == []


def test_each_break_is_named() -> None:
    broken = persona(age=29, pronouns="he/him", location="Nairobi, Kenya", occupation="Doctor", tech_savviness="expert")
    assert slot_breaks(SLOT, broken) == [
        "age 29 is outside 42-44",
        "pronouns are he/him, not she/her",
        "lives in Nairobi, Kenya, not Kisumu, Kenya",
        "works as Doctor, not Ward Nurse",
        "tech savviness is expert, not basic",
    ]


def test_pins_are_checked() -> None:
    slot = SLOT.model_copy(update={"pins": {"communication_style": "terse"}})
    assert slot_breaks(slot, persona()) == ["communication_style is not terse"]
    assert slot_breaks(slot, persona(communication_style="Terse, to the point.")) == []


def test_without_an_age_range_a_job_starts_at_its_usual_age_and_ends_near_retirement() -> None:
    doctors = [slot.age for slot in plan_for("doctors", 30).slots]
    assert min(doctors) >= 26 and max(doctors) <= 67
    people = [slot.age for slot in plan_for("people", 30).slots]
    assert min(people) < 26 and max(people) > 67


@pytest.mark.parametrize(
    ("description", "pronouns"),
    [
        ("single mothers in Leeds", {"she/her"}),
        ("a grandmother who sells fish in Mombasa", {"she/her"}),
        ("fathers of toddlers", {"he/him"}),
        ("women in tech", {"she/her"}),
        ("mothers and fathers", {"she/her", "he/him", "they/them"}),
        ("nurses", {"she/her", "he/him", "they/them"}),
    ],
)
def test_a_description_that_names_only_women_or_men_sets_the_pronouns(description: str, pronouns: set[str]) -> None:
    assert {slot.pronouns for slot in plan_for(description, 30).slots} == pronouns


@pytest.mark.parametrize(
    ("description", "lo", "hi"),
    [
        ("a grandmother who sells fish in Mombasa", 55, 85),
        ("parents of toddlers", 22, 40),
        ("parents of teenagers", 38, 58),
    ],
)
def test_who_they_are_the_parents_of_does_not_set_their_age(description: str, lo: int, hi: int) -> None:
    assert all(lo <= slot.age <= hi for slot in plan_for(description, 10).slots)


@pytest.mark.parametrize(
    ("description", "mix", "warning"),
    [
        ("bus drivers in Leeds", "ages 5-10", "younger than Bus Driver usually starts (18)"),
        ("bus drivers", "stage child:1", "with a life stage its age rarely has (child at"),
        ("nurses aged 30 to 40", "ages 70-80", "the mix's ages 70-80 replace the description's 30-40"),
        ("retired teachers", "ages 20-25", "retired at 2"),
    ],
)
def test_a_plan_that_contradicts_itself_says_so_before_the_first_call(description: str, mix: str, warning: str) -> None:
    plan = plan_for(description, 6, mix=parse_mix(mix))
    assert any(warning in said for said in plan.warnings), plan.warnings
    assert not plan_for(description, 6).warnings


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("pin age=200", "a pinned age must be a whole number from 0 to 120"),
        ("shee/her 60%", "'shee/her' are not pronouns I know (did you mean she/her?)"),
        ("she/her 70%; he/him 50%", "add up to more than 100% (she/her 70% + he/him 50%)"),
        ("tech novce:1", "'novce' is not a tech level (did you mean novice?)"),
        ("places", "says nothing after 'places'"),
        ("pin name=Ann Smith", "'name' cannot be pinned"),
    ],
)
def test_mix_mistakes_found_by_trying_it(text: str, words: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_mix(text)
    assert words in caught.value.message


def test_toml_ages_must_be_a_pair_of_numbers() -> None:
    with pytest.raises(RequestError, match=r"like ages = \[25, 60\]"):
        mix_from_table({"ages": "30-45"})


def test_a_town_the_tables_do_not_know_is_placed_in_the_described_country() -> None:
    plan = plan_for("bus drivers in Leeds", 3, mix=parse_mix("places York, Bradford, Atlantis"))
    places = {slot.location for slot in plan.slots}
    assert places == {"York, United Kingdom", "Bradford, United Kingdom", "Atlantis, United Kingdom"}
