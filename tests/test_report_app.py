"""The plan and the report in the app: the mix field, the plan in the log, ctrl+d's report, and its
near-duplicates written again on a key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import Input

from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.models import Persona, PersonaRecord, RequestInfo, RunRecord
from persona_tui.storage import RunStore
from persona_tui.tui.screens.report import ReportScreen
from tests.conftest import AppFactory
from tests.helpers import ScriptedProvider, Step, persona_dict, persona_json, tokens_of
from tests.test_app import wait_until
from tests.test_issue14 import log_text

pytestmark = pytest.mark.asyncio

STORY = {
    "background": "Grew up on a tea farm, trained in Eldoret, now runs the night ward alone.",
    "goals": ["Finish her degree", "Get the ward a second nurse"],
    "quote": "Nights are long but the ward is mine.",
}


async def test_a_batch_shows_its_plan_and_ctrl_d_its_report(app_factory: AppFactory) -> None:
    app = app_factory(OfflineProvider(seed=3, tokens_per_second=0), population_plan=True)
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#description", Input).value = "nurses in Kenya aged 30 to 60"
        app.query_one("#count", Input).value = "4"
        app.query_one("#mix", Input).value = "tech novice:1"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not app.running and app.table.row_count == 4)
        text = log_text(app)
        assert "Population plan for 4 personas:" in text and "tech novice 4 (your mix)" in text
        assert "Diversity of 4 personas" in text
        assert all(r.persona.tech_savviness == "novice" for r in app.store.load_all_sync().records)
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen))
        shown = str(app.screen.query_one("#report-text").render())
        assert "plan         4 of 4 held their slot" in shown
        assert not app.screen.query("#report-rewrite"), "no near-duplicates: nothing to write again"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ReportScreen))


async def test_a_bad_mix_is_said_beside_the_form(app_factory: AppFactory) -> None:
    app = app_factory(OfflineProvider(seed=3, tokens_per_second=0), population_plan=True)
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        mix = app.query_one("#mix", Input)
        mix.value = "ages 60-25"
        await pilot.press("ctrl+g")
        await pilot.pause()
        error = str(app.query_one("#form-error").render())
        assert "the youngest age (60) is above the oldest (25)" in error
        assert mix.has_class("-invalid") and app.focused is mix
        assert not app.running


async def test_ctrl_d_without_a_run_says_how_to_get_one(app_factory: AppFactory) -> None:
    app = app_factory(OfflineProvider(seed=3, tokens_per_second=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: any("No run to report on yet" in n.message for n in app._notifications))
        assert not isinstance(app.screen, ReportScreen)


def twin(name: str, minutes_ago: int, run_id: str, **extra: object) -> PersonaRecord:
    return PersonaRecord(
        created_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago),
        provider="scripted",
        model="script-1",
        request=RequestInfo(description="nurses in Kenya"),
        generation_seconds=3.0,
        tokens=300,
        persona=Persona.model_validate(persona_dict(name, **(STORY | extra))),
        run_id=run_id,
    )


async def test_the_report_writes_a_near_duplicate_again_and_replaces_it(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    run = RunRecord(provider="scripted", model="script-1", request=RequestInfo(description="nurses in Kenya"), count=2)
    first = twin("Amina Otieno", 10, run.id)
    second = twin("Grace Wanjiru", 5, run.id, age=39)
    run.persona_ids = [first.id, second.id]
    await RunStore(tmp_path / "runs").save(run)
    fresh = persona_json(
        "Joyce Achieng",
        background="A former teacher who retrained late; she sings in a choir and fixes radios.",
        goals=["Open a small clinic"],
        quote="Radios and patients both need patience.",
    )
    provider = ScriptedProvider([Step(tokens_of(fresh))])
    app = app_factory(provider, records=[first, second], population_plan=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.table.row_count == 2)
        await pilot.press("ctrl+d")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen))
        assert "Write it again (r)" in str(app.screen.query_one("#report-rewrite").render())
        await pilot.press("r")
        await wait_until(pilot, lambda: not app.running and "Joyce Achieng" in log_text(app), timeout=10)
        names = sorted(r.persona.name for r in app.store.load_all_sync().records)
        assert names == ["Amina Otieno", "Joyce Achieng"], "the later twin is replaced, the first kept"
        assert "Joyce Achieng replaces Grace Wanjiru" in log_text(app)
        assert "read almost like" in provider.calls[0].messages[1]["content"]
        files = sorted(p.name for p in (tmp_path / "personas").glob("*.json"))
        assert len(files) == 2 and not any(second.id in name for name in files)
        recorded = RunStore(tmp_path / "runs").latest_sync()
        assert recorded is not None and recorded.replaced == [second.id]
        assert second.id not in recorded.persona_ids and len(recorded.persona_ids) == 2
    await asyncio.sleep(0)


async def test_the_mix_field_shows_its_text_when_wrong_and_its_error_goes_once_touched(
    app_factory: AppFactory,
) -> None:
    app = app_factory(OfflineProvider(seed=3, tokens_per_second=0), population_plan=True)
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        mix = app.query_one("#mix", Input)
        mix.value = "shee/her 60%"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert mix.has_class("-invalid") and mix.content_region.height == 1, "the text row is still there"
        assert "did you mean she/her?" in str(app.query_one("#form-error").render())
        await pilot.press("backspace")
        await pilot.pause()
        assert not mix.has_class("-invalid")
        assert not app.query_one("#form-error").has_class("-shown")
