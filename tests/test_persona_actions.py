"""One persona's actions in the app: help (? and F1), edit (e), regenerate (r), refine (f), copy (c), versions (v)."""

from __future__ import annotations

import json
import time

import pytest
from textual.widgets import Input, Label, Static, TextArea

from persona_tui.engine.providers.offline.provider import OfflineProvider
from persona_tui.models import PersonaRecord
from persona_tui.tui.app import PersonaApp
from persona_tui.tui.screens.detail import DetailScreen
from persona_tui.tui.screens.diff import DiffScreen
from persona_tui.tui.screens.edit import EditScreen, InstructionScreen
from persona_tui.tui.screens.help import HelpScreen, key_rows
from persona_tui.tui.widgets.persona_table import PersonaTable
from tests.conftest import AppFactory
from tests.helpers import ScriptedProvider, ok_step

pytestmark = pytest.mark.asyncio
AMINA = "Amina Otieno"


async def wait_until(pilot, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)


def saved(app: PersonaApp) -> dict[str, PersonaRecord]:
    records = [PersonaRecord.model_validate_json(p.read_text()) for p in app.store.root.glob("*.json")]
    return {r.id: r for r in records}


async def on_table(app: PersonaApp, pilot) -> PersonaTable:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()
    table = app.query_one(PersonaTable)
    table.focus()
    await pilot.pause()
    return table


def offline() -> OfflineProvider:
    return OfflineProvider(seed=1, tokens_per_second=0)


async def test_help_lists_the_keys_of_the_screen_grouped_and_esc_closes(
    app_factory: AppFactory, sample_records
) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await on_table(app, pilot)
        rows = {(row.group, row.description): row for row in key_rows(app.screen)}
        assert rows[("Personas table", "Delete")].keys == "del / d", "one row per action, its keys together"
        assert rows[("Persona", "Edit")].keys == "e"
        assert ("Generation", "Generate") in rows and ("Application", "Help") in rows
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = {(row.group, row.description) for row in app.screen.rows}
        assert ("Persona", "Refine") in shown and ("Personas table", "Delete") in shown, "the table's keys, from below"
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        app.query_one("#description", Input).focus()
        await pilot.press("question_mark")
        assert app.query_one("#description", Input).value == "?", "? types in a field"
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen), "F1 works from a field"
        rows_in_field = {row.group for row in app.screen.rows}
        assert "Text field" in rows_in_field and "Personas table" not in rows_in_field


async def test_help_on_the_details_lists_its_version_key(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    first = sample_records[0]
    sample_records[0] = first.with_change(first.persona.model_copy(update={"age": 50}), "edit")
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await on_table(app, pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        groups = {(row.group, row.description) for row in key_rows(app.screen)}
        assert ("Persona details", "Versions") in groups and ("Persona details", "Refine") in groups


async def test_edit_form_refuses_a_bad_age_beside_the_field_then_saves_with_the_old_version(
    app_factory: AppFactory,
    sample_records,  # type: ignore[no-untyped-def]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await on_table(app, pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, EditScreen))
        form = app.screen
        form.query_one("#age", Input).value = "200"
        form.query_one("#age", Input).focus()
        await pilot.press("enter")
        assert not app.running and form.focused is not form.query_one("#age", Input), "Enter moves on, starts nothing"
        assert not app.query_one("#form-error").has_class("-shown"), "the main form was not asked to generate"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EditScreen), "an invalid form stays open"
        assert str(form.query_one("#age-error", Label).render()) == "Age must be a whole number from 0 to 120."
        assert form.query_one("#age-error", Label).has_class("-shown")
        form.query_one("#age", Input).value = "52"
        form.query_one("#goals", TextArea).text = "Fewer night shifts\n\nA clinic closer to home\n"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, EditScreen))
        await app.workers.wait_for_complete()
        amina = next(r for r in saved(app).values() if r.persona.name == AMINA)
        assert amina.persona.age == 52
        assert amina.persona.goals == ["Fewer night shifts", "A clinic closer to home"], "blank lines dropped"
        assert amina.versions is not None and amina.versions[0].how == "edit"
        assert amina.versions[0].changed == ["age", "goals"] and amina.versions[0].persona.age == 47
        assert len(saved(app)) == 3, "replaced in place, not added"
        table = app.query_one(PersonaTable)
        assert [str(c) for c in table.get_row_at(table.get_row_index(amina.id))][1] == "52"


async def test_regenerate_streams_a_new_persona_into_the_same_id_keeping_the_old_one(
    app_factory: AppFactory,
    sample_records,  # type: ignore[no-untyped-def]
) -> None:
    app = app_factory(ScriptedProvider([ok_step("Njeri Kamau")]), records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await on_table(app, pilot)
        amina_id = table.selected_id
        await pilot.press("r")
        await wait_until(pilot, lambda: saved(app)[amina_id].versions is not None and not app.running)
        record = saved(app)[amina_id]
        assert record.persona.name == "Njeri Kamau" and record.provider == "scripted"
        assert record.versions is not None and record.versions[-1].how == "regenerate"
        assert record.versions[-1].persona.name == AMINA
        assert len(saved(app)) == 3 and table.row_count == 3
        assert "Regenerating Amina Otieno" in "\n".join(app.log_pane.lines)


async def test_refine_streams_then_shows_the_diff_and_saves_only_on_accept(
    app_factory: AppFactory, sample_records
) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(offline(), records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await on_table(app, pilot)
        amina_id = table.selected_id
        before = saved(app)[amina_id]
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, InstructionScreen))
        app.screen.query_one(Input).value = "more sceptical of AI, lives alone"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DiffScreen))
        assert "+ sceptical of AI" in str(app.screen.query_one("#diff-text", Static).content)
        await pilot.press("d")
        await wait_until(pilot, lambda: not app.running)
        assert saved(app)[amina_id] == before, "discarded: nothing saved"
        assert "Discarded the revision of Amina Otieno;" in "\n".join(app.log_pane.lines)
        said = "\n".join(str(line) for line in app.log_pane.lines)
        assert "Revision discarded after" in said and "Cancelled after" not in said  # a choice, not a cancel
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, InstructionScreen))
        app.screen.query_one(Input).value = "more sceptical of AI, lives alone"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DiffScreen))
        await pilot.press("a")
        await wait_until(pilot, lambda: not app.running)
        after = saved(app)[amina_id]
        assert "sceptical of AI" in after.persona.personality_traits
        assert after.versions is not None and after.versions[-1].note == "more sceptical of AI, lives alone"
        assert after.versions[-1].persona == before.persona and after.provider == "offline"
        assert "Refining Amina Otieno" in "\n".join(app.log_pane.lines)


async def test_copy_puts_the_markdown_card_on_the_clipboard_and_says_so(
    app_factory: AppFactory, sample_records
) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await on_table(app, pilot)
        await pilot.press("c")
        await app.workers.wait_for_complete()
        assert app.clipboard.startswith("# Amina Otieno\n")
        assert "## Frustrations" in app.clipboard
        assert any(n.message == "Copied Amina Otieno as Markdown" for n in app._notifications)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Copy persona as JSON" in titles and "Export personas as Markdown cards" in titles
        app.action_copy_persona("json")
        await app.workers.wait_for_complete()
        assert json.loads(app.clipboard)["persona"]["name"] == AMINA


async def test_the_details_page_through_earlier_versions_read_only(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    first = sample_records[0]
    edited = first.with_change(first.persona.model_copy(update={"name": "Amina Achieng"}), "edit")
    sample_records[0] = edited.with_change(edited.persona.model_copy(update={"age": 60}), "refine", note="older")
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await on_table(app, pilot)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailScreen)

        def caption() -> str:
            return str(screen.query_one("#detail-version", Static).content)

        def body() -> str:
            return str(screen.query_one("#detail-body", Static).content)

        assert caption().startswith("Version 3 of 3 (refined ") and ": 'older')" in caption()
        await pilot.press("v")
        assert caption().startswith("Version 2 of 3 (edited ") and "read-only" in caption()
        assert "Amina Achieng" in body() and "60" not in body().split("\n")[0]
        await pilot.press("v")
        assert caption().startswith("Version 1 of 3") and body().startswith(AMINA)
        await pilot.press("v")
        assert caption().startswith("Version 3 of 3")


async def test_persona_keys_do_nothing_outside_the_table_and_details(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        assert not app.check_action("edit_persona", ())
        await on_table(app, pilot)
        assert app.check_action("edit_persona", ())
