"""Issue 14, the app's side: each item's behaviour, driven with Pilot against the real pipeline."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from persona_tui.config import Settings
from persona_tui.engine.estimate import EstimateBook
from persona_tui.storage import PersonaStore
from persona_tui.tui.app import PersonaApp, make_app
from persona_tui.tui.widgets.generation_panel import GenerationPanel
from persona_tui.tui.widgets.live_log import LiveLog
from tests.conftest import FIXED_NOW
from tests.helpers import ScriptedProvider, Step, ok_step, persona_json, tokens_of

pytestmark = pytest.mark.asyncio

UNUSABLE = "The data folder"


async def wait_until(pilot, condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)


def notifications(app: PersonaApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


def log_text(app: PersonaApp) -> str:
    """The log's words, its wrapping and timestamps aside."""
    words = " ".join(app.query_one(LiveLog).lines).split()
    return " ".join(w for w in words if not (len(w) == 8 and w[2] == ":" and w[5] == ":"))


def in_log(app: PersonaApp, sentence: str) -> bool:
    """Whether the sentence is in the log (long paths wrap, so they are compared without spaces)."""
    return "".join(sentence.split()) in "".join(log_text(app).split())


def blocked_app(tmp_path: Path, provider: ScriptedProvider) -> PersonaApp:
    """An app whose data folder lies under a file: it can neither be read nor written."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    settings = Settings(data_dir=blocker / "data", heartbeat_seconds=0.05)  # type: ignore[call-arg]
    store = PersonaStore(blocker / "data" / "personas")
    return make_app(settings, provider, store, now=lambda: FIXED_NOW, estimates=EstimateBook(None))


async def test_an_unusable_data_folder_is_said_at_start_and_refuses_generate(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step()])
    app = blocked_app(tmp_path, provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        [warning] = [n for n in app._notifications if UNUSABLE in n.message]
        assert warning.severity == "warning"
        assert "is a file, not a folder" in warning.message
        assert "PERSONA_TUI_DATA_DIR or data_dir in the config file" in warning.message
        assert "--data-dir" not in warning.message
        assert in_log(app, warning.message)
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        error = str(app.query_one("#form-error").render())
        assert error == warning.message
        assert provider.calls == [], "nothing is sent"
        assert not app.query_one(GenerationPanel).running


async def test_the_table_says_when_the_personas_could_not_be_read(tmp_path: Path) -> None:
    app = blocked_app(tmp_path, ScriptedProvider([]))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one("#table")
        assert table.border_title == "Personas: could not be read"
        reason = [n.message for n in app._notifications if n.title == "Personas not loaded"]
        assert reason and "could not be read: not a directory" in reason[0].lower()
        assert in_log(app, reason[0])


async def test_ctrl_c_cancels_a_running_generation_then_quits(app_factory) -> None:  # type: ignore[no-untyped-def]
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json()), delay=0.05)])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        await wait_until(pilot, lambda: panel.tokens >= 3)
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: not panel.running, timeout=2)
        assert "Cancelled after" in log_text(app)
        assert provider.closed_streams == 1
        assert app.is_running, "the first Ctrl-C only cancels"
        description = app.query_one("#description", Input)
        description.focus()
        description.select_all()
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running and app.clipboard == "nurses", "with text selected, Ctrl-C copies it"
        description.action_end()
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        assert not app.is_running, "with nothing running or selected, Ctrl-C quits"


async def test_a_second_ctrl_c_quits_while_the_generation_stops(app_factory) -> None:  # type: ignore[no-untyped-def]
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json()), delay=0.05)])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.query_one(GenerationPanel).tokens >= 3)
        app._cancel = asyncio.Event()  # as if a first Ctrl-C had been pressed and the stream were slow to stop
        app._cancel.set()
        assert app.running
        await pilot.press("ctrl+c")
        await pilot.pause(0.3)
        assert not app.is_running


async def test_ctrl_g_while_running_says_what_enter_says(app_factory) -> None:  # type: ignore[no-untyped-def]
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json()), delay=0.05)])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.query_one(GenerationPanel).tokens >= 3)
        await pilot.press("ctrl+g")
        await pilot.pause()
        busy = [n for n in notifications(app) if "already running" in n]
        assert busy == [": A generation is already running; Esc cancels it."]
        await pilot.press("enter")  # Enter in the description field says the same
        await pilot.pause()
        assert len([n for n in notifications(app) if "already running" in n]) == 2
        assert len(provider.calls) == 1
        await pilot.press("escape")


@pytest.mark.parametrize("typed", ["-", "", "0", "10001", "12345", "-1"])
async def test_a_count_that_is_not_1_to_10000_is_explained_not_changed(app_factory, typed: str) -> None:  # type: ignore[no-untyped-def]
    provider = ScriptedProvider([ok_step()])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        count = app.query_one("#count", Input)
        count.value = ""
        count.focus()
        for key in typed:
            await pilot.press("minus" if key == "-" else key)
        assert count.value == typed, "nothing typed is cut off"
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert str(app.query_one("#form-error").render()) == "The count must be a whole number from 1 to 10,000."
        assert "got" not in str(app.query_one("#form-error").render())
        assert count.has_class("-invalid") and app.focused is count
        assert provider.calls == []


async def test_export_writes_what_the_table_shows(app_factory, sample_records) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Select

    from persona_tui.models import Organization

    tagged = [
        r.model_copy(update={"request": r.request.model_copy(update={"organization": "Acme Health"})})
        for r in sample_records[:2]
    ]
    app = app_factory(records=[*tagged, sample_records[2]])
    acme = Organization(name="Acme Health")
    await app.org_store.save(acme)
    exports = app.settings.data_dir / "exports"
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.query_one("#table-filter", Select).value = acme.id
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        [export] = list(exports.glob("*.json"))
        assert [r["persona"]["name"] for r in json.loads(export.read_text())] == ["Amina Otieno", "Bo Lindqvist"]
        assert f"Exported: Exported 2 personas shown (Acme Health) to {export}" in notifications(app)
        export.unlink()
        app.query_one("#table-filter", Select).clear()
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        [export] = list(exports.glob("*.json"))
        assert len(json.loads(export.read_text())) == 3
        assert f"Exported: Exported 3 personas to {export}" in notifications(app)


@pytest.mark.parametrize(
    ("engine", "app"),
    [
        (
            "Set OPENAI_API_KEY to a valid key, or run with --provider offline.",
            'Set OPENAI_API_KEY to a valid key, or set provider = "offline" in the config file'
            " (or PERSONA_TUI_PROVIDER=offline).",
        ),
        (
            "Choose a folder you can write to with --data-dir (or PERSONA_TUI_DATA_DIR).",
            "Choose a folder you can write to with PERSONA_TUI_DATA_DIR or data_dir in the config file.",
        ),
        (
            "Check the key's project and permissions, or choose another model with --model.",
            "Check the key's project and permissions, or choose another model with ctrl+l.",
        ),
        (
            "Check the network, or raise --connect-timeout / the read timeouts.",
            "Check the network, or raise connect_timeout or the read timeouts in the config file.",
        ),
        (
            "Check the model name (--model or PERSONA_TUI_MODEL; `persona-tui models` lists them) and the base URL.",
            "Check the model name (ctrl+l lists them) and the base URL.",
        ),
    ],
)
async def test_hints_in_the_app_name_what_to_do_in_the_app(engine: str, app: str) -> None:
    from persona_tui.narrate import app_hint

    assert app_hint(engine) == app


async def test_a_failure_in_the_app_hints_in_app_words(app_factory) -> None:  # type: ignore[no-untyped-def]
    from persona_tui.engine.errors import GenerationError

    missing = GenerationError("not_found", "The model nope was not found.", "Choose another model with --model.")
    app = app_factory(ScriptedProvider([Step(error=missing)]))
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        await wait_until(pilot, lambda: panel.outcome is not None and not panel.running)
        assert "Generation failed: The model nope was not found. Choose another model with ctrl+l." in notifications(
            app
        )
        assert "--model" not in log_text(app) and "ctrl+l" in log_text(app)
        assert "Choose another model with ctrl+l." in panel.outcome.plain  # type: ignore[union-attr]


async def test_the_org_picker_says_ctrl_o_manages_organizations(app_factory) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Select

    app = app_factory()
    async with app.run_test(size=(120, 36)):
        assert app.query_one("#org", Select).prompt == "no organization (ctrl+o)"


@pytest.mark.parametrize("key", [None, "exa-test"])
async def test_ticking_web_search_without_a_key_says_it_will_be_skipped(app_factory, key: str | None) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Checkbox

    app = app_factory(exa_api_key=key)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#enrich", Checkbox).focus()
        await pilot.press("space")
        await pilot.pause()
        assert app.query_one("#enrich", Checkbox).value
        warned = [n for n in notifications(app) if n.startswith("Web search:")]
        if key is None:
            assert warned == [
                "Web search: EXA_API_KEY is not set, so the web search will be skipped and the personas made"
                " without it. Set EXA_API_KEY=… in the environment and start persona-tui again to ground them"
                " in search results."
            ]
        else:
            assert warned == []


async def test_the_palette_offers_organizations_and_a_new_persona(app_factory) -> None:  # type: ignore[no-untyped-def]
    from persona_tui.tui.screens.organizations import OrganizationsScreen

    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Organizations", "New persona (focus the description)"} <= set(commands)
        app.query_one("#table").focus()
        commands["New persona (focus the description)"].callback()
        assert app.focused is app.query_one("#description", Input)
        commands["Organizations"].callback()
        await pilot.pause()
        assert isinstance(app.screen, OrganizationsScreen)


async def open_organizations(app, pilot):  # type: ignore[no-untyped-def]
    from persona_tui.tui.screens.organizations import OrganizationsScreen

    await app.workers.wait_for_complete()
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: isinstance(app.screen, OrganizationsScreen))
    await app.screen.workers.wait_for_complete()
    await pilot.pause()
    return app.screen


def unsaved(app) -> bool:  # type: ignore[no-untyped-def]
    return type(app.screen).__name__ == "UnsavedScreen"


@pytest.mark.parametrize(("choice", "product", "closed"), [("k", None, False), ("d", "", True), ("s", "edited", True)])
async def test_escape_with_unsaved_organization_edits_asks_first(  # type: ignore[no-untyped-def]
    app_factory, choice: str, product: str | None, closed: bool
) -> None:
    from persona_tui.models import Organization
    from persona_tui.tui.screens.organizations import OrganizationsScreen

    app = app_factory()
    await app.org_store.save(Organization(name="Acme Health"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_organizations(app, pilot)
        assert screen.query_one("#org-name", Input).value == "Acme Health"
        await pilot.press("escape")  # nothing edited: closes at once
        await wait_until(pilot, lambda: not isinstance(app.screen, OrganizationsScreen))
        screen = await open_organizations(app, pilot)
        screen.query_one("#org-product", Input).value = "edited"
        await pilot.press("escape")
        await wait_until(pilot, lambda: unsaved(app))
        await pilot.press(choice)
        await pilot.pause(0.2)
        await app.workers.wait_for_complete()
        assert isinstance(app.screen, OrganizationsScreen) is not closed
        if not closed:
            assert screen.query_one("#org-product", Input).value == "edited", "the edits are still there"
        orgs, _ = await app.org_store.load_all()
        assert [o.product for o in orgs] == [product or ""]


async def test_picking_another_organization_with_unsaved_edits_asks_first(app_factory) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import OptionList

    from persona_tui.models import Organization

    app = app_factory()
    await app.org_store.save(Organization(name="Acme Health"))
    await app.org_store.save(Organization(name="Beta Bank"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_organizations(app, pilot)
        assert screen.query_one("#org-name", Input).value == "Acme Health"
        screen.query_one("#org-region", Input).value = "Kenya"
        screen.query_one(OptionList).highlighted = 1
        await wait_until(pilot, lambda: unsaved(app))
        await pilot.press("k")  # keep editing: the form and the list stay on Acme Health
        await pilot.pause(0.1)
        assert screen.query_one("#org-region", Input).value == "Kenya"
        assert screen.query_one(OptionList).highlighted == 0
        screen.query_one(OptionList).highlighted = 1
        await wait_until(pilot, lambda: unsaved(app))
        await pilot.press("s")  # save, then go on to Beta Bank
        await wait_until(pilot, lambda: screen.query_one("#org-name", Input).value == "Beta Bank")
        orgs, _ = await app.org_store.load_all()
        assert {o.name: o.region for o in orgs} == {"Acme Health": "Kenya", "Beta Bank": ""}
        screen.query_one("#org-region", Input).value = "Norway"
        await pilot.press("ctrl+n")  # a new one: asked too; discard
        await wait_until(pilot, lambda: unsaved(app))
        await pilot.press("d")
        await wait_until(pilot, lambda: screen.query_one("#org-name", Input).value == "")
        orgs, _ = await app.org_store.load_all()
        assert {o.name: o.region for o in orgs} == {"Acme Health": "Kenya", "Beta Bank": ""}


async def test_the_filter_follows_a_renamed_organization_by_id(app_factory, sample_records) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Select

    from persona_tui.models import Organization

    acme = Organization(name="Acme Care")  # renamed since the first persona was made
    made_before = sample_records[0].request.model_copy(
        update={"organization": "Acme Health", "organization_id": acme.id}
    )
    made_before_ids = sample_records[1].request.model_copy(update={"organization": "acme care"})
    other = Organization(name="Beta Bank")
    another = sample_records[2].request.model_copy(update={"organization": "Acme Care", "organization_id": other.id})
    records = [
        sample_records[0].model_copy(update={"request": made_before}),
        sample_records[1].model_copy(update={"request": made_before_ids}),
        sample_records[2].model_copy(update={"request": another}),
    ]
    app = app_factory(records=records)
    await app.org_store.save(acme)
    await app.org_store.save(other)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.query_one("#table-filter", Select).value = acme.id
        await pilot.pause()
        table = app.query_one("#table")
        shown = sorted(table.shown_ids)
        assert shown == sorted([records[0].id, records[1].id]), "by id, and by name for records with no id"
        assert table.border_title == "Personas (2 of 3, Acme Care)"
