"""The engine's refinement and in-place regeneration, and the store's replace, without a front end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.pipeline import Rewrite, generate
from persona_tui.engine.pipeline.refine import refine
from persona_tui.engine.providers.offline.provider import OfflineProvider
from persona_tui.engine.providers.offline.refine import refine_offline
from persona_tui.models import Persona, PersonaRecord
from persona_tui.storage import PersonaStore, file_name_for
from tests.conftest import make_record
from tests.helpers import ScriptedProvider, Step, ok_step, tokens_of

pytestmark = pytest.mark.asyncio
SETTINGS = Settings(offline_tokens_per_second=0, retry_base_delay=0.01, retry_max_delay=0.02)


async def stored(tmp_path: Path, record: PersonaRecord) -> PersonaStore:
    store = PersonaStore(tmp_path / "personas")
    await store.save(record)
    return store


async def events_of(agen) -> list[ev.Event]:  # type: ignore[no-untyped-def]
    return [event async for event in agen]


async def test_refine_saves_only_what_the_user_accepts(tmp_path: Path) -> None:
    record = make_record("Amina Otieno", 0)
    store = await stored(tmp_path, record)
    seen: list[tuple[PersonaRecord, PersonaRecord]] = []

    async def no(old: PersonaRecord, new: PersonaRecord) -> bool:
        seen.append((old, new))
        return False

    provider = OfflineProvider(seed=1, tokens_per_second=0)
    events = await events_of(refine(record, "older", provider=provider, store=store, decide=no, settings=SETTINGS))
    assert seen and seen[0][1].persona.age == record.persona.age + 8, "the offline rule for 'older'"
    assert any(isinstance(e, ev.Cancelled) for e in events) and isinstance(events[-1], ev.Finished)
    assert not events[-1].summary.saved
    assert (await store.find(record.id))[0] == record, "nothing saved"
    assert {e.stage for e in events if isinstance(e, ev.StageStarted)} >= {ev.Stage.CALLING, ev.Stage.STREAMING}


async def test_refine_gives_a_bad_answer_back_once_then_fails_and_keeps_the_persona(tmp_path: Path) -> None:
    record = make_record("Amina Otieno", 0)
    store = await stored(tmp_path, record)

    async def yes(old: PersonaRecord, new: PersonaRecord) -> bool:
        raise AssertionError("never asked: there is no revision")

    provider = ScriptedProvider([Step(pieces=tokens_of('{"name": "x"}'))])
    events = await events_of(refine(record, "older", provider=provider, store=store, decide=yes, settings=SETTINGS))
    assert any(isinstance(e, ev.Retrying) and "correct" in e.reason for e in events)
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and events[-1].summary.failed == 1  # type: ignore[union-attr]
    assert (await store.find(record.id))[0] == record


async def test_refine_can_be_cancelled_mid_stream(tmp_path: Path) -> None:
    record = make_record("Amina Otieno", 0)
    store = await stored(tmp_path, record)
    cancel = asyncio.Event()

    async def yes(old: PersonaRecord, new: PersonaRecord) -> bool:
        return True

    provider = ScriptedProvider([Step(hang=True)])
    agen = refine(record, "older", provider=provider, store=store, decide=yes, settings=SETTINGS, cancel=cancel)
    events: list[ev.Event] = []
    async for event in agen:
        events.append(event)
        if isinstance(event, ev.RequestSent):
            cancel.set()
    assert any(isinstance(e, ev.Cancelled) for e in events) and events[-1].summary.cancelled  # type: ignore[union-attr]
    assert len(list(store.root.glob("*.json"))) == 1


async def test_regenerate_in_place_keeps_the_id_and_one_file(tmp_path: Path) -> None:
    record = make_record("Amina Otieno", 0)
    store = await stored(tmp_path, record)
    rewrite = Rewrite.again(record)
    provider = ScriptedProvider([ok_step("Njeri Kamau")])
    events = await events_of(
        generate(rewrite.request(), provider=provider, store=store, settings=SETTINGS, rewrite=rewrite)
    )
    [saved] = [e.record for e in events if isinstance(e, ev.PersonaSaved)]
    assert saved.id == record.id and saved.created_at == record.created_at
    assert saved.versions is not None and saved.versions[0].persona == record.persona
    assert saved.versions[0].how == "regenerate" and saved.versions[0].model == record.model
    assert [p.name for p in store.root.glob("*.json")] == [file_name_for(saved)], "the old name's file is gone"
    assert not any(isinstance(e, ev.PersonaReplaced) for e in events)


async def test_replace_removes_a_file_of_another_name_only_after_the_new_one_is_written(tmp_path: Path) -> None:
    record = make_record("Amina Otieno", 0)
    store = PersonaStore(tmp_path / "personas")
    store.root.mkdir(parents=True)
    (store.root / f"{record.id}.json").write_text(record.model_dump_json())  # an older file name
    new = record.with_change(record.persona.model_copy(update={"name": "Amina Achieng"}), "edit")
    path = await store.replace(new)
    assert sorted(p.name for p in store.root.iterdir()) == [path.name] == [file_name_for(new)]
    found, _ = await store.find(record.id)
    assert found.persona.name == "Amina Achieng" and found.versions and found.versions[0].changed == ["name"]


async def test_offline_refine_rules_are_visible_and_deterministic() -> None:
    persona = make_record("Amina Otieno", 0).persona
    once = refine_offline(persona, "more sceptical of AI; less tech-savvy and lives alone")
    assert once == refine_offline(persona, "more sceptical of AI; less tech-savvy and lives alone")
    assert "sceptical of AI" in once.personality_traits
    assert "Being expected to trust AI without seeing how it works" in once.frustrations
    assert once.background.endswith("Amina lives alone.")
    assert once.tech_savviness != persona.tech_savviness
    assert Persona.model_validate(once.model_dump()) == once
    assert refine_offline(persona, "curious about gadgets").personality_traits[-1] == "curious about gadgets"


async def test_old_records_without_versions_load_and_save_without_the_field() -> None:
    record = make_record("Amina Otieno", 0)
    assert "versions" not in record.model_dump_json()
    changed = record.with_change(record.persona.model_copy(update={"age": 60}), "edit")
    again = PersonaRecord.model_validate_json(changed.model_dump_json())
    assert again.version_count == 2 and again.versions is not None and again.versions[0].persona.age == 47
