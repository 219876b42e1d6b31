"""The diversity report on hand-made batches: spreads counted by hand, the plan, near-duplicates, repeats, words."""

from __future__ import annotations

import math
from typing import Any

import pytest

from persona_tui.engine import diversity
from persona_tui.engine.diversity import (
    DEFAULT_THRESHOLD,
    DiversityReport,
    country_of,
    diversity_report,
    evenness,
    town_of,
)
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.models import Persona, PersonaRecord, RequestInfo, Slot
from persona_tui.narrate import REPORT_WIDTH, report_lines, report_summary
from tests.helpers import persona_dict


def record(name: str = "Amina Otieno", slot: Slot | None = None, **fields: Any) -> PersonaRecord:
    return PersonaRecord(
        provider="test",
        model="m",
        request=RequestInfo(description="field nurses in rural Kenya"),
        generation_seconds=1.0,
        tokens=100,
        persona=Persona.model_validate(persona_dict(name, **fields)),
        slot=slot,
    )


def slot(ages: tuple[int, int] = (45, 49), life_stage: str = "working", **fields: Any) -> Slot:
    values: dict[str, Any] = {
        "index": 0,
        "age": ages[0],
        "ages": ages,
        "pronouns": "she/her",
        "location": "Kisumu, Kenya",
        "occupation": "Field nurse",
        "tech_savviness": "basic",
        "life_stage": life_stage,
    }
    return Slot.model_validate(values | fields)


# Amina's story (persona_dict's) copied under another name, age and place: her own name in it changed too.
COPY = {
    "age": 33,
    "location": "Nakuru, Kenya",
    "background": "Grace has run a mobile clinic for twelve years. She drives between villages twice a week.",
}
OTHER_NURSE = {
    "age": 29,
    "pronouns": "he/him",
    "occupation": "Ward nurse",
    "background": "Joseph works on a busy surgical ward in a city hospital. He moved from his village to train "
    "and sends money home every month.",
    "goals": ["Become a charge nurse within three years", "Save for his sister's school fees"],
    "frustrations": ["Handover notes written on scraps of paper", "Night shifts that change at short notice"],
    "quote": "Give me one screen with the whole ward on it.",
}
THIRD_NURSE = {
    "age": 58,
    "location": "Nyeri, Kenya",
    "background": "Wanjiku has visited the same villages for thirty years and knows every family by name. "
    "She is sceptical of new systems but trusts her younger colleagues.",
    "goals": ["Hand over her patients to a trusted successor", "Retire without a backlog of paperwork"],
    "frustrations": ["Forms that ask the same question twice", "Logins that expire every week"],
    "quote": "I remember every child I vaccinated; the tablet does not.",
}


def pair_of(report: DiversityReport, a: PersonaRecord, b: PersonaRecord) -> diversity.SimilarPair:
    return next(p for p in report.pairs if {p.a_id, p.b_id} == {a.id, b.id})


# ----- spreads -----


def test_four_personas_in_one_decade_have_one_distinct_age_and_no_spread() -> None:
    report = diversity_report([record(age=age) for age in (30, 33, 35, 39)])
    ages = report.spread("age")
    assert ages is not None
    assert (ages.distinct, ages.entropy, ages.top, ages.top_count, ages.counted) == (1, 0.0, "30-39", 4, 4)


def test_two_and_two_is_an_even_spread() -> None:
    ages = diversity_report([record(age=age) for age in (31, 35, 52, 58)]).spread("age")
    assert ages is not None and (ages.distinct, ages.entropy) == (2, 1.0)


def test_three_and_one_spread_is_the_entropy_over_log_two() -> None:
    by_hand = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)  # 0.811
    people = [record(pronouns=p) for p in ("she/her", "she/her", "She / her", "he/him")]
    pronouns = diversity_report(people).spread("pronouns")
    assert pronouns is not None
    assert pronouns.distinct == 2 and pronouns.top == "she/her" and pronouns.top_count == 3
    assert pronouns.entropy == pytest.approx(by_hand, abs=1e-3)
    assert evenness([1, 1, 1]) == 1.0 and evenness([5]) == 0.0 and evenness([]) == 0.0


def test_places_are_counted_by_town_and_by_country() -> None:
    places = ["Kisumu, Kenya", "Rural area near Kisumu, Kenya", "kisumu ,  KENYA", "Kampala, Uganda"]
    report = diversity_report([record(location=place) for place in places])
    towns, countries = report.spread("town"), report.spread("country")
    assert towns is not None and countries is not None
    assert (towns.distinct, towns.top, towns.top_count) == (2, "Kisumu", 3)
    assert (countries.distinct, countries.top, countries.top_count) == (2, "Kenya", 3)
    assert town_of("Outskirts of Lagos, Lagos State, Nigeria") == "Lagos"
    assert country_of("Lagos, Lagos State, Nigeria") == "Nigeria" and country_of("Kenya") == "Kenya"


def test_occupations_compare_without_case_or_extra_spaces() -> None:
    report = diversity_report([record(occupation=o) for o in ("Field nurse", "field  Nurse", "Midwife")])
    occupations = report.spread("occupation")
    assert occupations is not None and (occupations.distinct, occupations.top_count) == (2, 2)


def test_life_stage_is_reported_only_when_records_carry_slots() -> None:
    plain = diversity_report([record(), record("Bo Lind")])
    assert plain.spread("life_stage") is None and plain.plan is None
    planned = diversity_report([record(slot=slot(life_stage="parent")), record("Bo Lind", slot=slot())])
    stages = planned.spread("life_stage")
    assert stages is not None and (stages.distinct, stages.entropy) == (2, 1.0)


# ----- the plan -----


def test_the_plan_counts_slots_held_and_names_each_broken_one() -> None:
    records = [
        record("Amina Otieno", slot=slot()),
        record("Bo Lind", slot=slot()),
        record("Chen Wei", age=29, slot=slot(ages=(40, 44))),
        record("Dana Roe"),  # no slot: not part of the plan
    ]
    plan = diversity_report(records).plan
    assert plan is not None
    assert (plan.planned, plan.held, plan.broke) == (3, 2, 1)
    assert plan.broken[0].id == records[2].id and plan.broken[0].name == "Chen Wei"
    assert plan.broken[0].breaks == ("age 29 is outside 40-44",)


# ----- similarity -----


def test_a_copied_story_under_another_name_is_a_near_duplicate_and_a_different_nurse_is_not() -> None:
    amina, grace, joseph = record(), record("Grace Wanjiru", **COPY), record("Joseph Otieno", **OTHER_NURSE)
    report = diversity_report([amina, grace, joseph, record("Wanjiku Mwangi", **THIRD_NURSE)])
    copy = pair_of(report, amina, grace)
    assert copy.flagged and copy.similarity == pytest.approx(1.0, abs=1e-3)
    assert report.near_duplicates == (copy,) and report.pairs[0] == copy
    different = pair_of(report, amina, joseph)
    assert not different.flagged and different.similarity < 0.3


def test_names_do_not_count_toward_similarity() -> None:
    """A shared surname makes two stories no closer; a changed first name in a story makes them no further."""
    joseph = record("Joseph Otieno", **OTHER_NURSE)
    ruth = record("Ruth Otieno", **(OTHER_NURSE | {"background": OTHER_NURSE["background"].replace("Joseph", "Ruth")}))
    assert diversity_report([joseph, ruth]).pairs[0].similarity == pytest.approx(1.0, abs=1e-3)
    namesake = record("Joseph Otieno", **(THIRD_NURSE | {"background": "Joseph Otieno, Otieno's son, " + "x" * 3}))
    other = record("Mary Otieno", background="Mary Otieno keeps bees.", goals=["Sell honey"], frustrations=["Rain"])
    assert diversity_report([namesake, other]).pairs == ()  # nothing in common once names are gone


def test_the_threshold_and_top_are_the_callers() -> None:
    reworded = record(
        "Faith Njeri",
        background="For twelve years Faith has run a mobile clinic, driving between villages twice every week.",
        goals=["Keep vaccination records accurate", "Train two new nurses"],
        quote="If it works in the rain, I'll use it.",
    )
    amina = record()
    default = pair_of(diversity_report([amina, reworded]), amina, reworded)
    assert 0.5 < default.similarity < DEFAULT_THRESHOLD and not default.flagged
    assert pair_of(diversity_report([amina, reworded], threshold=0.5), amina, reworded).flagged
    five = [record(), record("Grace Wanjiru", **COPY), record("Joseph", **OTHER_NURSE), record("W", **THIRD_NURSE)]
    report = diversity_report(five, top=2)
    assert len(report.pairs) == 2 and report.pairs[0].similarity >= report.pairs[1].similarity


def offline_batch(n: int) -> list[PersonaRecord]:
    provider = OfflineProvider(seed=1, tokens_per_second=0)
    return [
        PersonaRecord(
            provider="offline",
            model="offline-sample",
            request=RequestInfo(description="nurses"),
            generation_seconds=0,
            tokens=0,
            persona=provider.compose("nurses in rural Kenya", i),
        )
        for i in range(n)
    ]


def test_a_large_batch_leaves_common_terms_out_of_the_search_but_scores_exactly(monkeypatch: Any) -> None:
    batch = [*offline_batch(30), record(), record("Grace Wanjiru", **COPY)]
    exact = diversity_report(batch)
    assert not exact.approximate
    monkeypatch.setattr(diversity, "PAIR_BUDGET", 1000)  # a twelfth of the work this batch needs
    cheap = diversity_report(batch)
    assert cheap.approximate
    every = {(p.a_id, p.b_id): p.similarity for p in diversity_report(batch, top=len(batch) ** 2).pairs}
    assert all(every[(p.a_id, p.b_id)] == p.similarity for p in cheap.pairs), "candidates are scored exactly"
    assert cheap.pairs[0] == exact.pairs[0]  # the near-duplicate is not lost to the cheaper search
    assert cheap.near_duplicates[0].b_name == "Grace Wanjiru"


# ----- repeats -----


def test_repeated_names_and_quotes_are_found_without_case_or_extra_spaces() -> None:
    records = [
        record("Amina Otieno", quote="If it works in the rain, I will use it."),
        record("amina  OTIENO", quote="if it works in the rain,  i will use it"),
        record("Bo Lind", quote="Something else entirely."),
        record("Chen Wei", quote="IF IT WORKS IN THE RAIN, I WILL USE IT!"),
    ]
    report = diversity_report(records)
    assert len(report.repeated_names) == 1
    name = report.repeated_names[0]
    assert (name.value, name.count, name.ids) == ("Amina Otieno", 2, (records[0].id, records[1].id))
    quote = report.worst_quote_repeat
    assert quote is not None and quote.count == 3 and quote.ids == (records[0].id, records[1].id, records[3].id)


# ----- edges -----


def test_an_empty_batch_reports_nothing_and_says_so() -> None:
    report = diversity_report([])
    assert report.count == 0 and report.pairs == () and report.plan is None
    assert all(spread.distinct == 0 and spread.entropy == 0.0 for spread in report.fields)
    assert report_lines(report) == ["Diversity: no personas to report on"]


def test_a_single_record_has_no_pairs_and_no_spread() -> None:
    report = diversity_report([record(slot=slot())])
    assert report.count == 1 and report.pairs == () and report.nearest is None
    assert all(spread.distinct == 1 and spread.entropy == 0.0 for spread in report.fields)
    assert report.plan is not None and report.plan.held == 1
    assert any("needs two personas" in line for line in report_lines(report))


def test_the_report_survives_json() -> None:
    report = diversity_report([record(slot=slot()), record("Grace Wanjiru", **COPY), record("Chen Wei", age=29)])
    assert DiversityReport.model_validate(report.model_dump(mode="json")) == report


# ----- words -----


def test_report_lines_name_the_near_duplicate_and_the_broken_slot() -> None:
    records = [
        record(slot=slot()),
        record("Grace Wanjiru", **COPY),
        record("Joseph Otieno", **(OTHER_NURSE | {"age": 29}), slot=slot(ages=(40, 44), pronouns="he/him")),
    ]
    lines = report_lines(diversity_report(records))
    text = "\n".join(lines)
    assert lines[0] == "Diversity of 3 personas"
    assert "1 near-duplicate pair at 0.80 or above" in text
    assert "1.00 Amina Otieno ~ Grace Wanjiru" in text
    assert "1 of 2 held their slot; 1 broke it:" in text
    assert "Joseph Otieno: age 29 is outside 40-44" in text
    assert all(len(line) <= REPORT_WIDTH for line in lines)


def test_report_lines_without_trouble_give_the_nearest_pair_and_the_threshold() -> None:
    lines = report_lines(diversity_report([record(), record("Joseph Otieno", **OTHER_NURSE)]))
    text = "\n".join(lines)
    assert "nearest" in text and "Amina Otieno ~ Joseph Otieno" in text
    assert "none at 0.80 or above" in text and "no name or quote repeated" in text
    assert "plan" not in text


def test_report_summary_puts_what_needs_a_look_in_one_line() -> None:
    troubled = diversity_report([record(slot=slot()), record("Grace Wanjiru", **COPY, slot=slot())])
    summary = report_summary(troubled)
    assert "\n" not in summary
    assert summary.startswith("Diversity of 2 personas: 1 near-duplicate pair (≥ 0.80)")
    assert "1 of 2 broke their slot" in summary and "1 quote repeated" in summary
    calm = report_summary(diversity_report([record(), record("Joseph Otieno", **OTHER_NURSE)]))
    assert calm.startswith("Diversity of 2 personas: no near-duplicates, nearest pair 0.")


def test_top_zero_keeps_only_the_near_duplicates_on_both_search_paths(monkeypatch: Any) -> None:
    batch = [*offline_batch(30), record(), record("Grace Wanjiru", **COPY)]
    only_flagged = diversity_report(batch, top=0)
    assert [p.b_name for p in only_flagged.pairs] == ["Grace Wanjiru"] and only_flagged.pairs[0].flagged
    monkeypatch.setattr(diversity, "PAIR_BUDGET", 1000)
    assert diversity_report(batch, top=0).pairs == only_flagged.pairs


def test_long_lists_in_the_words_end_with_how_many_more() -> None:
    broken = [record(f"Person {i}", age=29, slot=slot(ages=(40, 44))) for i in range(5)]
    lines = report_lines(diversity_report(broken))
    assert "  plan         0 of 5 held their slot; 5 broke it:" in lines
    assert sum("age 29 is outside 40-44" in line for line in lines) == 3
    assert any(line.strip() == "and 2 more" for line in lines)


def test_the_similarity_index_scores_a_newcomer_as_the_report_would() -> None:
    """The index's fast path (idf once per query, no vector per persona) is the report's cosine exactly."""
    words = [
        "river",
        "clinic",
        "ledger",
        "bicycle",
        "mango",
        "radio",
        "chalk",
        "lantern",
        "harbour",
        "sorghum",
        "kettle",
        "ferry",
    ]
    personas = []
    for i in range(12):
        d = persona_dict(f"Person {i}")
        d["background"] = " ".join(words[(i * j) % len(words)] for j in range(1, 40))
        d["goals"] = [" ".join(words[(i + j) % len(words)] for j in range(5))]
        personas.append(Persona.model_validate(d))
    index = diversity.SimilarityIndex()
    for p in personas[:-1]:
        index.add(p)
    found = index.nearest(personas[-1])
    assert found is not None
    records = [
        PersonaRecord(
            provider="p",
            model="m",
            request=RequestInfo(description="x", count=1),
            generation_seconds=0,
            tokens=0,
            persona=p,
        )
        for p in personas
    ]
    vectors = diversity._vectors(records)
    cosines = [sum(w * v.get(t, 0.0) for t, w in vectors[-1].items()) for v in vectors[:-1]]
    assert found[0] is personas[cosines.index(max(cosines))]
    assert found[1] == pytest.approx(max(cosines), abs=1e-9)
