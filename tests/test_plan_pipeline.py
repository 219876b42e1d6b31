"""The plan through the whole pipeline: drawn before the first call, carried by every request
(to a real HTTP server too), held (corrected once), recorded with the run, and reported on."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.engine.plan import draw_plan, slot_breaks
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.models import GenerationRequest, PersonaRecord, Slot
from persona_tui.storage import PersonaStore, RunStore
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import ScriptedProvider, Step, persona_json, tokens_of
from tests.test_dialects import provider_for

pytestmark = pytest.mark.asyncio
KENYA = "nurses in Kenya aged 30 to 60"


def settings(tmp_path: Path, **kw: object) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "seed": 5,
        "heartbeat_seconds": 0.5,
        "first_token_timeout": 5.0,
        "idle_timeout": 5.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.02,
    }
    values.update(kw)
    return Settings(**values)


async def run(provider: Any, tmp_path: Path, request: GenerationRequest, **kw: object) -> list[ev.Event]:
    s = settings(tmp_path, **kw)
    return [
        e
        async for e in generate(
            request,
            provider=provider,
            store=PersonaStore(s.personas_dir),
            settings=s,
            estimates=EstimateBook(None),
            rng=random.Random(0),
            runs=RunStore(s.runs_dir),
        )
    ]


def saved(events: list[ev.Event]) -> list[PersonaRecord]:
    return [e.record for e in events if isinstance(e, ev.PersonaSaved)]


def fitting(slot: Slot, name: str, **extra: Any) -> str:
    """A persona's JSON that keeps to ``slot``."""
    fields: dict[str, Any] = {"age": slot.age, "pronouns": slot.pronouns, "tech_savviness": slot.tech_savviness}
    if slot.location:
        fields["location"] = slot.location
    if slot.occupation:
        fields["occupation"] = slot.occupation
    return persona_json(name, **(fields | extra))


async def test_an_offline_batch_of_twenty_is_a_population(tmp_path: Path) -> None:
    """The issue's own check: 20 offline nurses in Kenya aged 30 to 60."""
    events = await run(OfflineProvider(seed=5, tokens_per_second=0), tmp_path, GenerationRequest.create(KENYA, 20))
    plans = [e for e in events if isinstance(e, ev.PlanDrawn)]
    assert len(plans) == 1
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ev.StageStarted) and e.stage is ev.Stage.PROMPT)
    assert events.index(plans[0]) < first_call, "the plan is drawn before the first call"
    records = saved(events)
    assert len(records) == 20
    assert all(r.slot is not None and not slot_breaks(r.slot, r.persona) for r in records)
    assert {r.persona.age // 10 for r in records} >= {3, 4, 5}
    towns = Counter(r.persona.location.split(",")[0] for r in records)
    assert len(towns) >= 8 and all(r.persona.location.endswith("Kenya") for r in records)
    assert max(Counter(r.persona.quote for r in records).values()) <= 2
    report = next(e.report for e in events if isinstance(e, ev.DiversityReported))
    assert report.count == 20 and not report.near_duplicates
    assert report.plan is not None and report.plan.held == 20
    finished = events[-1]
    assert isinstance(finished, ev.Finished) and finished.summary.report == report


async def test_the_run_is_recorded_with_its_plan_and_personas(tmp_path: Path) -> None:
    events = await run(OfflineProvider(seed=5, tokens_per_second=0), tmp_path, GenerationRequest.create(KENYA, 3))
    plan = next(e.plan for e in events if isinstance(e, ev.PlanDrawn))
    run_record = RunStore(tmp_path / "runs").latest_sync()
    assert run_record is not None
    assert run_record.plan == plan and run_record.finished_at is not None
    records = saved(events)
    assert sorted(run_record.persona_ids) == sorted(r.id for r in records)
    assert all(r.run_id == run_record.id for r in records)


async def test_the_same_seed_gives_the_same_plan_and_personas(tmp_path: Path) -> None:
    request = GenerationRequest.create(KENYA, 4)
    one = await run(OfflineProvider(seed=5, tokens_per_second=0), tmp_path / "a", request, concurrency=1)
    two = await run(OfflineProvider(seed=5, tokens_per_second=0), tmp_path / "b", request, concurrency=1)
    assert [r.persona for r in saved(one)] == [r.persona for r in saved(two)]


async def test_a_persona_off_its_slot_is_corrected_once(tmp_path: Path) -> None:
    request = GenerationRequest.create(KENYA, 1)
    slot = draw_plan(request, seed=5).slots[0]
    wrong = persona_json("Amina Otieno", age=slot.age + 30 if slot.age < 60 else 20, pronouns="ze/zir")
    provider = ScriptedProvider([Step(tokens_of(wrong)), Step(tokens_of(fitting(slot, "Amina Otieno")))])
    events = await run(provider, tmp_path, request)
    assert len(provider.calls) == 2
    correction = provider.calls[1].messages[-1]["content"]
    assert "breaks its slot" in correction and "pronouns are ze/zir, not" in correction
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert "broke its slot" in retry.reason
    assert not any(isinstance(e, ev.SlotBroken) for e in events)
    (record,) = saved(events)
    assert record.slot == slot and record.persona.age == slot.age


async def test_a_persona_still_off_its_slot_is_kept_and_said_to_be(tmp_path: Path) -> None:
    request = GenerationRequest.create(KENYA, 1)
    wrong = persona_json("Amina Otieno", pronouns="ze/zir")
    provider = ScriptedProvider([Step(tokens_of(wrong))])
    events = await run(provider, tmp_path, request)
    assert len(provider.calls) == 2, "one correction, not more"
    broken = [e for e in events if isinstance(e, ev.SlotBroken)]
    assert len(broken) == 1 and any("pronouns are ze/zir" in b for b in broken[0].breaks)
    assert len(saved(events)) == 1, "a paid-for persona is kept"


async def test_a_near_duplicate_is_written_again_once_and_visibly(tmp_path: Path) -> None:
    request = GenerationRequest.create(KENYA, 2)
    slots = draw_plan(request, seed=5).slots
    story = {"background": "Grew up on a tea farm, trained in Eldoret, now runs the night ward alone."}
    other = {
        "background": "A former teacher who retrained late, she sings in a choir and fixes radios.",
        "goals": ["Open a small clinic"],
        "frustrations": ["Power cuts"],
        "quote": "Radios and patients both need patience.",
    }
    provider = ScriptedProvider(
        [
            Step(tokens_of(fitting(slots[0], "Amina Otieno", **story))),
            Step(tokens_of(fitting(slots[1], "Grace Wanjiru", **story))),
            Step(tokens_of(fitting(slots[1], "Grace Wanjiru", **other))),
        ]
    )
    events = await run(provider, tmp_path, request, concurrency=1)
    near = [e for e in events if isinstance(e, ev.NearDuplicate)]
    assert len(near) == 1 and near[0].other == "Amina Otieno" and near[0].similarity >= 0.8 and not near[0].kept
    assert "read almost like" in provider.calls[2].messages[1]["content"]
    records = saved(events)
    assert [r.persona.background for r in records] == [story["background"], other["background"]]


async def test_a_near_duplicate_is_kept_when_regenerating_is_off(tmp_path: Path) -> None:
    request = GenerationRequest.create(KENYA, 2)
    slots = draw_plan(request, seed=5).slots
    provider = ScriptedProvider(
        [Step(tokens_of(fitting(slots[0], "Amina Otieno"))), Step(tokens_of(fitting(slots[1], "Grace Wanjiru")))]
    )
    events = await run(provider, tmp_path, request, concurrency=1, regenerate_duplicates=False)
    near = [e for e in events if isinstance(e, ev.NearDuplicate)]
    assert len(near) == 1 and near[0].kept
    assert len(provider.calls) == 2 and len(saved(events)) == 2
    report = next(e.report for e in events if isinstance(e, ev.DiversityReported))
    assert len(report.near_duplicates) == 1


async def test_the_offline_generator_rewrites_a_near_duplicate_as_someone_else(tmp_path: Path) -> None:
    """Asked again, the offline generator draws anew (a variant), so the rewrite is not the same persona."""
    provider = OfflineProvider(seed=5, tokens_per_second=0)
    slot = draw_plan(GenerationRequest.create(KENYA, 1), seed=5).slots[0]
    first = provider.compose(KENYA, 0, slot=slot)
    again = provider.compose(KENYA, 0, slot=slot, variant=1)
    assert first != again and again.age == slot.age


async def test_every_request_to_a_real_server_carries_its_slot(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """The real openai client over HTTP: each request's prompt holds that persona's slot."""
    request = GenerationRequest.create(KENYA, 3)
    slots = draw_plan(request, seed=5).slots
    names = ["Amina Otieno", "Grace Wanjiru", "Joseph Kamau"]
    backgrounds = [
        "Runs a maternity ward in a county hospital and coaches a youth football team.",
        "Travels by motorbike between village clinics with a cool box of vaccines.",
        "Left banking to study nursing at thirty and now trains new graduates.",
    ]
    server.script(
        *(
            Scenario(content=fitting(slot, name, background=bg, quote=f"Quote {i}"))
            for i, (slot, name, bg) in enumerate(zip(slots, names, backgrounds, strict=True))
        )
    )
    events = await run(provider_for(server, tmp_path), tmp_path, request, concurrency=1)
    assert len(saved(events)) == 3, [e for e in events if isinstance(e, ev.Failed)]
    prompts = [sent["body"]["messages"][1]["content"] for sent in server.requests if sent["method"] == "POST"]
    assert len(prompts) == 3
    for slot, prompt in zip(slots, prompts, strict=True):
        assert f"slot {slot.index + 1} of 3" in prompt
        assert f"- age: {slot.age}" in prompt and f"- location: {slot.location}" in prompt
        assert f"- occupation: {slot.occupation}" in prompt and f"- pronouns: {slot.pronouns}" in prompt
    records = saved(events)
    assert sorted(r.persona.age for r in records) == sorted(slot.age for slot in slots)
    assert json.loads(records[0].model_dump_json())["slot"]["index"] in (0, 1, 2)


async def test_a_record_made_without_a_plan_or_mix_writes_none_of_them(tmp_path: Path) -> None:
    """Fields left unset are left out of the file: set on every loaded record they cost memory (BENCHMARKS.md)."""
    provider = OfflineProvider(seed=5, tokens_per_second=0)
    events = await run(provider, tmp_path, GenerationRequest.create(KENYA, 1), population_plan=False)
    (record,) = saved(events)
    written = json.loads(next((tmp_path / "personas").glob("*.json")).read_text())
    assert "mix" not in written["request"] and "slot" not in written
    assert written["run_id"] == record.run_id  # the run is always recorded
    planned = await run(provider, tmp_path / "b", GenerationRequest.create(KENYA, 1))
    assert saved(planned)[0].slot is not None
    assert "slot" in json.loads(next((tmp_path / "b" / "personas").glob("*.json")).read_text())
