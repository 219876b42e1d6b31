"""Behaviour of the app, driven with Pilot against the real pipeline and a scripted provider."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Input, Log

from persona_tui.engine import events as ev
from persona_tui.engine.errors import GenerationError
from persona_tui.models import PersonaRecord
from persona_tui.tui.app import PersonaApp
from persona_tui.tui.screens.confirm import ConfirmScreen
from persona_tui.tui.widgets.generation_panel import GenerationPanel
from persona_tui.tui.widgets.live_log import LiveLog
from persona_tui.tui.widgets.persona_table import PersonaTable
from persona_tui.tui.widgets.persona_view import PersonaView
from tests.conftest import AppFactory
from tests.helpers import ScriptedProvider, Step, ok_step, persona_json, tokens_of

pytestmark = pytest.mark.asyncio


def persona_files(app: PersonaApp) -> list[Path]:
    return sorted(app.store.root.glob("*.json"))


def temp_files(app: PersonaApp) -> list[Path]:
    return sorted(app.store.root.glob(".tmp-*"))


async def wait_until(pilot, condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)


def log_text(app: PersonaApp) -> str:
    return "\n".join(app.query_one(LiveLog).lines)


def lines_after(log: LiveLog, marker: str) -> list[str]:
    """The log's lines after the last one holding ``marker``."""
    start = max(i for i, line in enumerate(log.lines) if marker in line) + 1
    return list(log.lines[start:])


def notifications(app: PersonaApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def type_request(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one("#description", Input).value = text


async def test_opens_with_focus_on_the_description_and_loads_the_table(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.focused is app.query_one("#description", Input)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        assert table.row_count == 3
        assert table.border_title == "Personas (3)"
        first_row = [str(c) for c in table.get_row_at(0)]
        assert first_row[0] == "Amina Otieno", "newest first"
        assert not app.check_action("cancel", ()), "Escape is offered only while generating"


async def test_corrupt_file_is_reported_not_fatal(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    bad = app.store.root / "broken.json"
    bad.write_text("{nope")
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one(PersonaTable).row_count == 3
        assert "broken.json" in log_text(app)
        assert any("could not be read" in n for n in notifications(app))
    assert bad.read_text() == "{nope"


async def test_keypress_to_new_highlighted_row(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    provider = ScriptedProvider([ok_step("Dana Kowalski", delay=0.002)])
    app = app_factory(provider, records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await type_request(pilot, "warehouse staff in Poland")
        panel = app.query_one(GenerationPanel)
        buttons: list[tuple[bool, bool]] = []  # (generate, cancel) disabled, as each token arrives
        handle = app.handle_event

        def watched(event: ev.Event) -> None:
            if isinstance(event, ev.TokenDelta):
                buttons.append((app.query_one("#generate").disabled, app.query_one("#cancel").disabled))
            handle(event)

        app.handle_event = watched  # type: ignore[method-assign]
        app.start_generation()  # what ctrl+g runs once typed keys are in; checked before anything is awaited
        assert panel.running and panel.stage is not None, "the panel changes on the key press itself"
        await wait_until(pilot, lambda: not panel.running)
        # The buttons follow just after the first frame (Escape works from the key press on);
        # this scripted stream starts at once, so its first few tokens may come before them.
        assert buttons[-1] == (True, False)
        assert buttons.index((True, False)) < len(buttons) // 4
        assert app.query_one("#generate").disabled is False and app.query_one("#cancel").disabled is True
        await pilot.pause()
        table = app.query_one(PersonaTable)
        assert table.row_count == 4
        assert table.cursor_row == 0
        selected = table.selected_row
        assert selected is not None and selected.name == "Dana Kowalski"
        assert selected.id in table.highlighted and "bold green" in str(table._cells(selected)[0].style)
        assert any(n.startswith("Persona saved: Dana Kowalski in") and "tok/s" in n for n in notifications(app))
        assert len(persona_files(app)) == 4
        assert app.query_one("#description", Input).value == "warehouse staff in Poland", "the request is kept"
        assert provider.calls[0].description == "warehouse staff in Poland"


async def test_tokens_are_drawn_in_batches_not_one_write_each(app_factory: AppFactory) -> None:
    pieces = tokens_of(persona_json(), size=1)
    provider = ScriptedProvider([Step(pieces=pieces)])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not app.query_one(GenerationPanel).running)
        await pilot.pause()
        log = app.query_one(LiveLog)
        assert len(pieces) > 500
        assert log.writes < 100, f"{log.writes} writes for {len(pieces)} tokens"
        lines = list(log.lines)
        start = next(i for i, line in enumerate(lines) if "Streaming tokens…" in line) + 1
        end = next(i for i in range(start, len(lines)) if lines[i][:2].isdigit())
        streamed = [line[len("    ") :] for line in lines[start:end]]
        assert " ".join(streamed).split() == persona_json().split(), "every word shown, in order, none cut"
        assert all(len(line) <= log.scrollable_content_region.width for line in lines[start:end])
        assert len(streamed) > 3, "folded at the width"


@pytest.mark.parametrize(
    ("step", "when"),
    [
        (Step(pieces=tokens_of(persona_json()), first_delay=30), "calling"),
        (Step(pieces=tokens_of(persona_json()), delay=0.05), "streaming"),
    ],
)
async def test_escape_cancels_and_saves_nothing(app_factory: AppFactory, step: Step, when: str) -> None:
    provider = ScriptedProvider([step])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        if when == "calling":
            await wait_until(pilot, lambda: panel.waiting_since is not None)
        else:
            await wait_until(pilot, lambda: panel.tokens >= 5)
        assert app.check_action("cancel", ())
        await pilot.press("escape")
        await wait_until(pilot, lambda: not panel.running, timeout=2)
        assert "Cancelled after" in log_text(app)
        assert provider.closed_streams == 1
        assert not app.check_action("cancel", ())
        assert app.check_action("generate", ()), "the form is ready again"
        assert persona_files(app) == [] and temp_files(app) == []


async def test_escape_during_saving_leaves_no_partial_file(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import persona_tui.storage as storage

    real_fsync = os.fsync
    started = asyncio.Event()

    def slow_fsync(fd: int) -> None:
        started.set()
        time.sleep(0.3)
        real_fsync(fd)

    monkeypatch.setattr(storage.os, "fsync", slow_fsync)
    app = app_factory(ScriptedProvider([ok_step()]))
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        await wait_until(pilot, started.is_set)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.query_one(GenerationPanel).running, timeout=3)
        assert temp_files(app) == []
        for path in persona_files(app):  # the save either completed whole or not at all
            PersonaRecord.model_validate_json(path.read_bytes())


async def test_quit_while_saving_removes_the_temporary_file(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import persona_tui.storage as storage

    started = asyncio.Event()

    def stuck_fsync(fd: int) -> None:
        started.set()
        time.sleep(0.5)

    monkeypatch.setattr(storage.os, "fsync", stuck_fsync)
    app = app_factory(ScriptedProvider([ok_step()]))
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        await wait_until(pilot, started.is_set)
        app._generation.cancel()  # what quitting does to a stuck worker
        await pilot.pause(0.1)
    deadline = time.monotonic() + 10  # the stuck fsync (0.5 s) returns, then the temporary file goes
    while temp_files(app) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert temp_files(app) == []
    assert persona_files(app) == []


async def test_quit_mid_stream_closes_the_stream(app_factory: AppFactory) -> None:
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json()), delay=0.05)])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.query_one(GenerationPanel).tokens >= 3)
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
    assert provider.closed_streams == 1
    assert provider.closed, "the provider's client is closed on exit"
    assert persona_files(app) == [] and temp_files(app) == []


HOSTILE = {
    "name": "Eve [/bold] Mallory",
    "occupation": "[link=https://x.example]Admin[/link]",
    "background": "Starts \x1b[31mred\x1b[0m and \x1b]0;pwned\x07 titles. [bold]not bold[/]",
    "quote": "[/]",
}


async def test_markup_and_escapes_from_the_model_are_shown_literally(app_factory: AppFactory) -> None:
    text = persona_json("Eve [/bold] Mallory", **{k: v for k, v in HOSTILE.items() if k != "name"})
    app = app_factory(ScriptedProvider([Step(pieces=tokens_of(text))]))
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "admins [/bold] \x1b[2J")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not app.query_one(GenerationPanel).running)
        await pilot.pause()
        log = log_text(app)
        assert "\x1b" not in log and "\x07" not in log
        assert "[/bold]" in log
        view = str(app.query_one(PersonaView).body.content)
        assert "Eve [/bold] Mallory" in view and "[link=https://x.example]Admin[/link]" in view
        assert "\x1b" not in view and "[bold]not bold[/]" in view
        table = app.query_one(PersonaTable)
        assert str(table.get_row_at(0)[0]) == "Eve [/bold] Mallory"
        assert any("Eve [/bold] Mallory" in n for n in notifications(app))
        [saved] = persona_files(app)
        assert json.loads(saved.read_text())["persona"]["quote"] == "[/]"


async def test_failure_explains_and_keeps_the_request(app_factory: AppFactory) -> None:
    denied = GenerationError(
        "auth", "The API key was rejected by api.openai.com.", "Set OPENAI_API_KEY, or run with --provider offline."
    )
    provider = ScriptedProvider([Step(error=denied), ok_step()])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "nurses in Kenya")
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        await wait_until(pilot, lambda: not panel.running)
        assert any(
            n == "Generation failed: The API key was rejected by api.openai.com. Set OPENAI_API_KEY,"
            ' or set provider = "offline" in the config file (or PERSONA_TUI_PROVIDER=offline).'
            for n in notifications(app)
        )
        assert "Failed (auth)" in log_text(app)
        assert app.query_one("#description", Input).value == "nurses in Kenya"
        await pilot.press("ctrl+g")  # the retry is one key away
        await wait_until(pilot, lambda: not panel.running and len(persona_files(app)) == 1)
        assert len(provider.calls) == 2


@pytest.mark.parametrize(
    ("description", "count", "message", "field"),
    [
        ("   ", "1", "description is empty", "#description"),
        ("nurses", "0", "1 to 10,000", "#count"),
        ("nurses", "10001", "1 to 10,000", "#count"),
        ("nurses", "", "The count must be a whole number from 1 to 10,000.", "#count"),
    ],
)
async def test_input_errors_are_shown_beside_the_form(  # type: ignore[no-untyped-def]
    app_factory: AppFactory, description: str, count: str, message: str | None, field: str | None
) -> None:
    provider = ScriptedProvider([ok_step()])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = description
        app.query_one("#count", Input).value = count
        await pilot.press("ctrl+g")
        await pilot.pause()
        error = str(app.query_one("#form-error").render())
        if message is None:  # an empty count means one persona
            await app.workers.wait_for_complete()
            assert len(provider.calls) == 1
            return
        assert message in error
        assert app.query_one("#form-error").has_class("-shown")
        assert app.query_one(field, Input).has_class("-invalid")
        assert app.focused is app.query_one(field, Input)
        assert provider.calls == [], "nothing is sent"


async def test_delete_asks_first(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        table.focus()
        await pilot.press("down")
        target = table.selected_row
        assert target is not None
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert table.row_count == 3 and len(persona_files(app)) == 3
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: table.row_count == 2)
        assert target.id not in table.rows
        assert len(persona_files(app)) == 2
        assert table.border_title == "Personas (2)"


async def test_export_and_detail_view(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        [export] = list((app.settings.data_dir / "exports").glob("*.json"))
        assert [r["persona"]["name"] for r in json.loads(export.read_text())] == [
            "Amina Otieno",
            "Bo Lindqvist",
            "Chen Wei",
        ]
        app.query_one(PersonaTable).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "DetailScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "Screen"


async def test_every_binding_has_a_description(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)):
        for binding in [*PersonaApp.BINDINGS, *PersonaTable.BINDINGS, *ConfirmScreen.BINDINGS]:
            assert binding.description, binding  # type: ignore[union-attr]
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Generate personas", "Export personas as CSV", "Delete selected persona"} <= titles


async def test_log_follows_the_end_unless_scrolled_up(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LiveLog)
        for i in range(80):
            log.message(f"line {i}")
        await pilot.pause()
        assert log.scroll_offset.y == log.max_scroll_y > 0, "it follows the end"
        log.scroll_to(y=5, animate=False)
        await pilot.pause()
        for i in range(20):
            log.message(f"more {i}")
        log.tokens("[/bold] \x1b[31mred")
        log.flush()
        await pilot.pause()
        assert log.scroll_offset.y == 5, "a reader who scrolled up is left in place"
        assert log.lines[-1] == "    [/bold] red"
        log.scroll_end(animate=False)
        await pilot.pause()
        log.message("last")
        await pilot.pause()
        assert log.scroll_offset.y == log.max_scroll_y


async def test_a_batch_shows_each_persona_and_saves_them_all(app_factory: AppFactory) -> None:
    names = ["Ana Souza", "Bo Lindqvist", "Chen Wei", "Dana Kowalski", "Emeka Obi"]
    provider = ScriptedProvider([ok_step(n, first_delay=0.05, delay=0.003) for n in names])
    app = app_factory(provider, concurrency=2)
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "people")
        app.query_one("#count", Input).value = "5"
        panel = app.query_one(GenerationPanel)
        # Watched from inside: pilot.press can return after the quick scripted batch is half done.
        seen: list[tuple[int, str]] = []
        apply = panel.apply

        def watched(event: ev.Event) -> None:
            apply(event)
            seen.append((len(panel.lanes), str(panel._status())))

        panel.apply = watched  # type: ignore[method-assign]
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not panel.running, timeout=10)
        assert max(lanes for lanes, _ in seen) == 2
        assert any(lanes == 2 and "2 in flight" in status for lanes, status in seen)
        assert provider.max_active == 2
        table = app.query_one(PersonaTable)
        assert table.row_count == 5
        assert sorted(r.name for r in table.rows.values()) == names
        assert "[3/5] Saved" in log_text(app)


async def test_organization_and_enrichment_from_the_form(app_factory: AppFactory, tmp_path: Path) -> None:
    from textual.widgets import Checkbox, Select

    from persona_tui.models import Organization
    from persona_tui.storage import OrganizationStore
    from tests.fake_exa import FakeExaServer

    await OrganizationStore(tmp_path / "organizations").save(Organization(name="Acme Health", product="telehealth app"))
    provider = ScriptedProvider([ok_step("Dana Kowalski")])
    with FakeExaServer() as exa:
        app = app_factory(provider, exa_base_url=exa.base_url, exa_api_key="exa-test-key")
        async with app.run_test(size=(120, 36)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            select = app.query_one("#org", Select)
            assert ("Acme Health", "Acme Health") in select._options
            select.value = "Acme Health"
            app.query_one("#enrich", Checkbox).value = True
            await type_request(pilot, "clinic managers")
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: not app.query_one(GenerationPanel).running)
            await pilot.pause()
            record, _ = await app.store.read(app.query_one(PersonaTable).selected_id or "")
            assert record.request.organization == "Acme Health"
            assert len(record.sources) == 3
            assert "telehealth app" in provider.calls[0].messages[-1]["content"]
            flat = " ".join(log_text(app).split())
            assert "Fetching real-world context: done in" in flat and "(3 source(s))" in flat
            view = str(app.query_one(PersonaView).body.content)
            assert "Grounded in" in view and "https://example.org/clinics/1" in view and "For: Acme Health" in view


async def test_organizations_screen_creates_and_the_form_offers_it(app_factory: AppFactory) -> None:
    from textual.widgets import Select, TextArea

    from persona_tui.tui.screens.organizations import OrganizationsScreen

    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, OrganizationsScreen))
        screen = app.screen
        screen.query_one("#org-name", Input).value = "Acme Health"
        screen.query_one("#org-product", Input).value = "telehealth app"
        screen.query_one("#org-notes", TextArea).text = "Mostly rural clinics."
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        orgs, _ = await app.org_store.load_all()
        assert [(o.name, o.product, o.notes) for o in orgs] == [
            ("Acme Health", "telehealth app", "Mostly rural clinics.")
        ]
        screen.query_one("#org-name", Input).value = ""
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "name is not valid" in str(screen.query_one("#orgs-error").render())
        await pilot.press("escape")  # the emptied name is an unsaved edit: asked about, then discarded
        await wait_until(pilot, lambda: type(app.screen).__name__ == "UnsavedScreen")
        await pilot.press("d")
        await wait_until(pilot, lambda: not isinstance(app.screen, OrganizationsScreen))
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert ("Acme Health", "Acme Health") in app.query_one("#org", Select)._options


async def test_table_filters_by_organization(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Select

    from persona_tui.models import Organization

    tagged = sample_records[0].model_copy(
        update={"request": sample_records[0].request.model_copy(update={"organization": "Acme Health"})}
    )
    app = app_factory(records=[tagged, *sample_records[1:]])
    acme = Organization(name="Acme Health")
    await app.org_store.save(acme)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        assert table.row_count == 3
        app.query_one("#table-filter", Select).value = acme.id
        await pilot.pause()
        assert table.row_count == 1 and table.border_title == "Personas (1 of 3, Acme Health)"
        app.query_one("#table-filter", Select).clear()
        await pilot.pause()
        assert table.row_count == 3


async def test_a_batch_ends_with_one_summary_not_a_toast_per_persona(app_factory: AppFactory) -> None:
    names = ["Ana Souza", "Bo Lindqvist", "Chen Wei"]
    provider = ScriptedProvider([ok_step(n) for n in names])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await type_request(pilot, "people")
        app.query_one("#count", Input).value = "3"
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        await wait_until(pilot, lambda: not panel.running, timeout=10)
        saved = [n for n in notifications(app) if n.startswith("Persona")]
        assert len(saved) == 1 and saved[0].startswith("Personas saved: 3 of 3 saved in")
        assert str(panel.outcome).startswith("✔ 3 of 3 saved in")


async def test_log_keeps_following_when_the_panel_above_grows(app_factory: AppFactory) -> None:
    provider = ScriptedProvider([ok_step(delay=0.01)])
    app = app_factory(provider)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LiveLog)
        for i in range(40):
            log.message(f"earlier line {i}")
        await pilot.pause()
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        await wait_until(pilot, lambda: panel.tokens >= 60)
        await pilot.pause()
        assert log.max_scroll_y > 0
        assert log.scroll_offset.y == log.max_scroll_y, "the newest tokens stay in view"
        await wait_until(pilot, lambda: not panel.running)


async def test_closing_mid_stream_without_quit_raises_nothing(app_factory: AppFactory) -> None:
    """Events that arrive while the app is closing must not query widgets that are gone."""
    provider = ScriptedProvider([ok_step(delay=0.01)])
    app = app_factory(provider)
    async with app.run_test(size=(80, 24)) as pilot:
        await type_request(pilot, "nurses")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.query_one(GenerationPanel).tokens >= 5)
    # Leaving run_test closes the app under the running worker; an error there would be re-raised above.
    assert app.return_code in (None, 0)
    await asyncio.sleep(0.2)
    assert provider.closed_streams == 1, "the worker was cancelled and its stream closed"


async def test_one_clock_draws_log_and_partial_persona_less_often_when_the_model_is_fast(
    app_factory: AppFactory,
) -> None:
    from persona_tui.tui.app import FAST_TOKENS_PER_SECOND
    from persona_tui.tui.widgets.persona_view import PersonaView

    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        log, view, panel = app.query_one(LiveLog), app.query_one(PersonaView), app.query_one(GenerationPanel)
        app._beats = 0  # the next beat is number 1

        def beat(text: str, name: str) -> tuple[bool, bool]:
            """Queue text and a partial persona, run one beat; say which of the two were drawn."""
            log.tokens(text + " ")
            view.show_partial({"name": name})
            app._pulse()
            return log.lines[-1].rstrip().endswith(text), name in str(view.body.content)

        # A model at reading speed: the log is drawn on every beat, the persona on every second.
        assert beat("one", "Ana") == (True, False)
        assert beat("two", "Bo") == (True, True)
        # Faster than anyone reads: the log every second beat, the persona every eighth.
        panel.running, panel.rate = True, FAST_TOKENS_PER_SECOND + 1
        drawn = [beat(f"t{n}", f"N{n}") for n in range(3, 19)]
        assert [d[0] for d in drawn] == [False, True] * 8
        assert [n for n, d in zip(range(3, 19), drawn, strict=True) if d[1]] == [8, 16]
        panel.running = False
        await pilot.pause()


async def test_a_scrolling_log_grows_without_laying_out_the_screen(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        log = app.query_one(LiveLog)
        for i in range(60):
            log.message(f"line {i}")
        await pilot.pause()
        assert log.show_vertical_scrollbar and not log._layout_required
        Log.write(log, "written the plain way\n")
        assert log._layout_required, "Textual's own write lays the screen out"
        await pilot.pause()

        log.tokens("more text\n" * 5)
        log.flush()
        assert not log._layout_required, "growing taller only resizes the scrollbar"
        await pilot.pause()
        assert log.vertical_scrollbar.window_virtual_size == log.virtual_size.height == log.line_count
        assert log.scroll_offset.y == log.max_scroll_y, "and it still follows the end"
        assert log.lines[-2].rstrip() == "    more text"


async def test_streamed_text_breaks_between_words(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        log.message("start")
        width = log.scrollable_content_region.width
        words = [f"word{i:03d}" for i in range(40)]
        text = " ".join(words)
        for at in range(0, len(text), 3):  # three characters at a time, a flush on every beat
            log.tokens(text[at : at + 3])
            log.flush(whole_words=True)
        assert not log.lines[-1].rstrip().endswith("word039"), "the last word may still grow, so it waits"
        log.tokens(" " + "x" * (width * 2) + "\n" + "  indented")
        log.end_tokens()
        await pilot.pause()
        streamed = [line.rstrip() for line in lines_after(log, "start") if line]
        assert all(line.startswith("    ") and len(line) <= width for line in streamed)
        pieces = " ".join(line.strip() for line in streamed).split()
        assert pieces[:40] == words, "no word is cut where a line breaks"
        assert "".join(pieces[40:-1]) == "x" * (width * 2), "a word longer than a line is cut where lines end"
        assert streamed[-1] == "      indented", "spaces after a real newline are kept"


@pytest.mark.parametrize("room", [30, 56, 64, 88, 89, 101, 120, 200])
async def test_columns_fit_the_room_the_table_has(room: int) -> None:
    from persona_tui.tui.widgets.persona_table import CELL_PADDING, COLUMNS, NARROWEST, SQUEEZED, WIDEST, fit_columns

    widths = fit_columns(room)
    keys = [key for key, _, _ in COLUMNS]
    narrow = room < sum(NARROWEST[key] + CELL_PADDING for key in keys[:4])  # the first four squeeze (80 columns)
    least = {key: SQUEEZED.get(key, NARROWEST[key]) if narrow else NARROWEST[key] for key in keys}
    assert all(least[key] <= widths[key] <= max(WIDEST[key], NARROWEST[key]) for key in keys)
    shown = [key for n, key in enumerate(keys) if n < 4 or sum(widths[k] + CELL_PADDING for k in keys[: n + 1]) <= room]
    used = sum(widths[key] + CELL_PADDING for key in shown)
    if room >= sum(least[key] + CELL_PADDING for key in keys[:4]):
        assert used <= room, "what is shown fits"
        grown = [key for key in ("name", "occupation", "location") if widths[key] < WIDEST[key]]
        assert not grown or used >= room - len(shown), "and the room is used"
    assert ("created" in shown) == (room >= 89), "created joins once the first four keep their widths"


async def test_the_table_fits_its_pane_and_cuts_long_text_with_an_ellipsis(
    app_factory: AppFactory, sample_records
) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        room = table.scrollable_content_region.width
        first_four = list(table.columns.values())[:4]
        assert sum(column.get_render_width(table) for column in first_four) <= room
        occupation = table.get_row_at(0)[2]
        row = table.selected_row
        assert row is not None
        drawn = table._cells(row)[2]
        assert isinstance(drawn, Text) and drawn.overflow == "ellipsis" and drawn.no_wrap and drawn.plain == occupation
        await pilot.resize_terminal(240, 50)
        await pilot.pause()
        wide = table.scrollable_content_region.width
        assert wide >= 101, "room for all six columns"
        assert sum(column.get_render_width(table) for column in table.columns.values()) <= wide


async def test_a_break_at_a_real_newline_adds_no_blank_line_and_a_new_stream_keeps_its_indent(
    app_factory: AppFactory,
) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        log.message("start")
        room = log._fold_width() - len("    ")
        log.tokens("a" * room + "    \nb")
        log.end_tokens()
        log.message("next")
        log.tokens("  indented")
        log.end_tokens()
        await pilot.pause()
        lines = [line.rstrip() for line in lines_after(log, "start")]
        assert lines[:2] == ["    " + "a" * room, "    b"], "no blank line between them"
        assert lines[3] == "      indented", "the next stream keeps its leading spaces"


async def test_a_batch_that_ends_on_a_failure_does_not_leave_a_half_written_persona(
    app_factory: AppFactory,
    sample_records,  # type: ignore[no-untyped-def]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = app.query_one(PersonaView)
        app.count = 2
        view.show_partial({"name": "Half Written"}, 0, 2)
        view.draw_partial()
        assert view.showing_partial
        saved = sample_records[0]
        summary = ev.Summary(saved=(saved,), failed=1, cancelled=False, seconds=3.0, tokens=300)
        app.handle_event(ev.Finished(summary))
        await pilot.pause()
        assert not view.showing_partial
        assert "Half Written" not in str(view.body.content)


async def test_the_columns_are_fitted_again_when_the_scrollbar_comes(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    import uuid

    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        assert not table.show_vertical_scrollbar
        for _ in range(40):
            table.add_record(sample_records[0].model_copy(update={"id": uuid.uuid4().hex}))
        await pilot.pause()
        await pilot.pause()
        assert table.show_vertical_scrollbar
        first_four = list(table.columns.values())[:4]
        assert sum(column.get_render_width(table) for column in first_four) == table.scrollable_content_region.width


async def test_wide_characters_and_tabs_stay_inside_the_log(app_factory: AppFactory) -> None:
    from rich.cells import cell_len

    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        log.message("Saved 佐藤 美咲 → " + "佐藤美咲" * 12 + ".json")
        story = '{"background": "' + "東京の大きな病院で看護師として十二年間働いています。" * 4 + '"}\t"x":\t1'
        for at in range(0, len(story), 3):
            log.tokens(story[at : at + 3])
            log.flush(whole_words=True)
        log.end_tokens()
        await pilot.pause()
        width = log.scrollable_content_region.width
        assert all(cell_len(line) <= width for line in log.lines), [cell_len(line) for line in log.lines]
        assert "\t" not in "".join(log.lines)
        shown = "".join(line.strip() for line in log.lines)
        assert "東京の大きな病院で看護師として十二年間働いています。" * 4 in shown, "nothing lost"


async def test_a_very_long_persona_taking_shape_is_drawn_in_part(app_factory: AppFactory) -> None:
    from persona_tui.tui.widgets.persona_view import PARTIAL_CHARS

    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        view = app.query_one(PersonaView)
        view.show_partial({"name": "Ana Souza", "background": "word " * 600})
        view.draw_partial()
        short = str(view.body.content)
        assert "Ana Souza" in short and not short.rstrip().endswith("…")
        view.show_partial({"name": "Ana Souza", "background": "word " * 3000})
        view.draw_partial()
        await pilot.pause()
        drawn = view.body.content
        assert "Ana Souza" in str(drawn) and str(drawn).rstrip().endswith("…")
        assert len(str(drawn)) <= max(PARTIAL_CHARS, 3 * view.size.width * view.size.height) + 2
        view.show_record(_record_with_background("word " * 3000))
        assert not str(view.body.content).rstrip().endswith("…"), "a complete persona is shown whole"


def _record_with_background(background: str) -> PersonaRecord:
    from tests.helpers import persona_json as make_json

    fields = json.loads(make_json())
    fields["background"] = background.strip()[:4000]
    return PersonaRecord.model_validate(
        {
            "persona": fields,
            "provider": "scripted",
            "model": "script-1",
            "request": {"description": "nurses", "count": 1},
            "generation_seconds": 1.0,
            "tokens": 10,
        }
    )


async def test_ctrl_g_waits_for_the_keys_typed_before_it(app_factory: AppFactory) -> None:
    """Keys queue in the focused field while ctrl+g runs at once: typed fast, they must all count."""
    from textual import events

    provider = ScriptedProvider([ok_step()])
    app = app_factory(provider)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        description = app.query_one("#description", Input)
        description.focus()
        await pilot.pause()
        for char in "nurses in Osaka":
            description.post_message(events.Key(char, char))
        app.action_generate()  # before the field has handled a single one of those keys
        await wait_until(pilot, lambda: bool(provider.calls))
        assert provider.calls[0].description == "nurses in Osaka"
        await wait_until(pilot, lambda: not app.query_one(GenerationPanel).running)


async def test_a_thinking_model_streams_its_reasoning_apart_from_its_answer(app_factory: AppFactory) -> None:
    """Hand-made events of a reasoning model: the log sets the reasoning apart, never as markup,
    the panel lists the thinking stage and counts its tokens, and usage and notices get a line."""
    from persona_tui.models import GenerationRequest, Usage

    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        app.begin_run(GenerationRequest.create("nurses"))
        for event in (
            ev.StageStarted(ev.Stage.CALLING, "gpt-5 at api.openai.com"),
            ev.RequestSent("gpt-5", "api.openai.com", 1, 1.0),
            ev.FirstToken(0.5),
            ev.StageFinished(ev.Stage.CALLING, 0.5),
            ev.StageStarted(ev.Stage.THINKING),
            ev.ReasoningDelta("Nurses [/bold] work nights", 5, 1.0),
        ):
            app.handle_event(event)
        panel = app.query_one(GenerationPanel)
        assert "Thinking: 5 tokens" in str(panel._status())
        for event in (
            ev.StageFinished(ev.Stage.THINKING, 2.0),
            ev.StageStarted(ev.Stage.STREAMING),
            ev.TokenDelta('{"name": ', 3, 10.0),
            ev.ServerNotice("this model is deprecated"),
            ev.UsageReported(Usage(prompt_tokens=10, completion_tokens=20, reasoning_tokens=5)),
        ):
            app.handle_event(event)
        app.log_pane.flush()
        await pilot.pause()
        lines = lines_after(app.query_one(LiveLog), "Generating 1 persona")
        assert any(line.endswith("Model thinking…") for line in lines)
        assert "    ┊ Nurses [/bold] work nights" in [line.rstrip() for line in lines], "reasoning, set apart, as text"
        assert any(line.endswith("Model thinking: done in 2.0 s (5 tokens)") for line in lines)
        assert '    {"name":' in [line.rstrip() for line in lines], "the answer keeps its own margin"
        flat = " ".join(line.strip() for line in lines)
        assert "Usage: 10 prompt + 20 completion tokens (5 reasoning)" in flat
        assert "The server says: this model is deprecated" in flat
        assert ev.Stage.THINKING in panel.state.checklist()


def _after_stamp(line: str) -> str:
    return line.split("  ", 1)[1] if "  " in line else line.strip()


async def test_a_wait_rewrites_its_heartbeat_line_in_place(app_factory: AppFactory) -> None:
    """A heartbeat every 3 s updates one line while nothing else is logged; another line ends it; in a batch
    the personas waiting together each keep one line."""
    from persona_tui.models import GenerationRequest
    from tests.conftest import FakeClock

    clock = FakeClock()
    app = app_factory(clock=clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        app.begin_run(GenerationRequest.create("nurses"))
        app.handle_event(ev.StageStarted(ev.Stage.CALLING, "gpt-5 at api.openai.com"))
        app.handle_event(ev.RequestSent("gpt-5", "api.openai.com", 1, 1.0, timeout=30.0, max_attempts=4))
        await pilot.pause()
        before = len(log.lines)
        for idle in (3.0, 6.0, 9.0):
            clock.advance(3.0)
            app.handle_event(ev.Heartbeat(idle, idle))
            await pilot.pause()
        assert len(log.lines) == before + 1, "one line for the whole wait"
        assert [_after_stamp(line) for line in lines_after(log, "Request sent") if line] == [
            "Still waiting: nothing for 9.0 s"
        ]
        hint = str(app.query_one(GenerationPanel)._hint())
        assert hint == "… no first token after 9 s: gives up in 21 s", "the panel counts down to the timeout"
        app.handle_event(ev.SlowWarning(15.0, 15.0))
        app.handle_event(ev.Heartbeat(15.0, 15.0))
        app.handle_event(ev.Heartbeat(18.0, 18.0))
        await pilot.pause()
        assert [_after_stamp(line) for line in lines_after(log, "Request sent") if line] == [
            "Still waiting: nothing for 9.0 s",
            "Slower than usual: past 15.0 s. Esc cancels.",
            "Still waiting: nothing for 18.0 s",
        ]

        app.handle_event(ev.Finished(ev.Summary((), 1, False, 18.0, 0)))
        app.begin_run(GenerationRequest.create("nurses", 3))
        for index in (0, 2):
            app.handle_event(ev.StageStarted(ev.Stage.CALLING, "m", index))
            app.handle_event(ev.RequestSent("m", "e", 1, 1.0, index, timeout=30.0))
        for idle in (3.0, 6.0):
            app.handle_event(ev.Heartbeat(idle, idle, 0))
            app.handle_event(ev.Heartbeat(idle, idle, 2))
        await pilot.pause()
        assert [_after_stamp(line) for line in lines_after(log, "[3/3] Request sent") if line] == [
            "[1/3] Still waiting: nothing for 6.0 s",
            "[3/3] Still waiting: nothing for 6.0 s",
        ]


async def test_the_fold_key_folds_the_models_thinking_into_one_counting_line(app_factory: AppFactory) -> None:
    """ctrl+r applies once a model has shown its thinking: folded, the reasoning text leaves the log for one
    line that keeps counting (rewritten on the pulse, not per token); unfolded, what was folded is shown."""
    from persona_tui.models import GenerationRequest

    app = app_factory()
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        assert "ctrl+r" not in app.screen.active_bindings, "no thinking yet: the key is not offered"
        app.begin_run(GenerationRequest.create("nurses"))
        for event in (
            ev.StageStarted(ev.Stage.CALLING, "qwen3 at localhost"),
            ev.RequestSent("qwen3", "localhost", 1, 1.0),
            ev.FirstToken(0.5),
            ev.StageFinished(ev.Stage.CALLING, 0.5),
            ev.StageStarted(ev.Stage.THINKING),
            ev.ReasoningDelta("Shown first. ", 3, 0.5),
        ):
            app.handle_event(event)
        await pilot.pause()
        assert "ctrl+r" in app.screen.active_bindings, "the model thought aloud: the fold key joins the footer"
        await pilot.press("ctrl+r")
        assert not app.show_thinking
        writes = log.writes
        for n in range(1, 31):
            app.handle_event(ev.ReasoningDelta(f"folded{n} [/b]\x1b[31m ", 3 + n, 0.5 + n / 10))
            if n % 10 == 0:
                app._pulse()
        assert log.writes - writes <= 4, "the folded line is written on the pulse, not per token"
        await pilot.pause()
        shown = lines_after(log, "Calling model: done")
        assert any("┊ Shown first." in line for line in shown)
        assert not any("folded1" in line for line in shown)
        folded = [line for line in log.lines if "folded: ctrl+r shows" in line]
        assert [_after_stamp(line) for line in folded] == ["Model thinking… (33 tokens, folded: ctrl+r shows)"]
        await pilot.press("ctrl+r")
        assert app.show_thinking
        app.handle_event(ev.ReasoningDelta("Shown again.", 34, 4.0))
        app.log_pane.flush()
        await pilot.pause()
        text = log_text(app)
        assert "folded1 [/b]" in text and "folded30" in text and "Shown again." in text, "nothing folded is lost"
        assert "\x1b" not in text
        assert "The model's thinking is folded in the log; ctrl+r shows it." in " ".join(notifications(app))
        app.handle_event(ev.StageFinished(ev.Stage.THINKING, 4.2))
        await pilot.pause()
        assert _after_stamp(log.lines[-2]) == "Model thinking: done in 4.2 s (34 tokens)"
