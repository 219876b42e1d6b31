"""The app's model picker, driven with Pilot: the real openai client lists the loopback server's models."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.css.query import NoMatches
from textual.widgets import OptionList, Static

from persona_tui.config import Settings
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.engine.providers.openai_compatible import OpenAIProvider
from persona_tui.storage import PersonaStore
from persona_tui.tui.app import PersonaApp, make_app
from persona_tui.tui.screens.models import ModelPickerScreen
from persona_tui.tui.widgets.generation_panel import GenerationPanel
from persona_tui.tui.widgets.live_log import LiveLog
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_json

pytestmark = pytest.mark.asyncio

CONFIG = '# my settings\nprovider = "openai"  # the local server\nmodel = "gpt-4o-mini"\n\n[providers.echo]\nx = 1\n'


def app_for(tmp_path: Path, server: FakeOpenAIServer, config: Path | None = None, **settings: object) -> PersonaApp:
    values: dict[str, object] = {
        "population_plan": False,  # scripted answers are fixed: test_plan_pipeline holds answers to slots
        "regenerate_duplicates": False,  # and their stories alike: only the names differ
        "data_dir": tmp_path / "data",
        "provider": "openai",
        "base_url": server.base_url,
        "model": "gpt-4o-mini",
        "config_file": config,
    }
    values.update(settings)
    return make_app(
        Settings(**values),  # type: ignore[arg-type]
        store=PersonaStore(tmp_path / "data" / "personas"),
        estimates=EstimateBook(None),
    )


async def wait_until(pilot, condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)


def log_text(app: PersonaApp) -> str:
    return "\n".join(app.query_one(LiveLog).lines)


def in_log(app: PersonaApp, text: str) -> bool:
    """Whether the log holds ``text``, whatever the width it was folded at."""
    return "".join(text.split()) in "".join(log_text(app).split())


def status_of(screen: ModelPickerScreen) -> str:
    try:
        return str(screen.query_one("#models-status", Static).render())
    except NoMatches:  # not composed yet
        return ""


def notifications(app: PersonaApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def open_picker(pilot) -> ModelPickerScreen:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+l")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ModelPickerScreen))
    return pilot.app.screen  # type: ignore[no-any-return]


async def test_choosing_a_model_switches_the_provider_and_remembers_it(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    app = app_for(tmp_path, server, config)
    where = server.base_url.split("//")[1].split("/")[0]
    async with app.run_test(size=(120, 36)) as pilot:
        old = app.provider
        picker = await open_picker(pilot)
        await wait_until(pilot, lambda: bool(picker.shown))
        options = picker.query_one(OptionList)
        assert options.option_count == 3 and options.highlighted == 0  # the current model, gpt-4o-mini
        assert "3 model(s) at " + where in status_of(picker)
        assert str(options.get_option_at_index(0).prompt).startswith("* gpt-4o-mini")
        await pilot.press("q", "w", "e")
        assert [e.id for e in picker.shown] == ["qwen3:8b"]
        await pilot.press("enter")  # in the filter: chooses, and starts no generation
        await wait_until(pilot, lambda: "Remembered in" in log_text(app))
        assert not isinstance(app.screen, ModelPickerScreen)
        assert isinstance(app.provider, OpenAIProvider) and app.provider is not old
        assert app.provider.model == "qwen3:8b" and app.settings.model == "qwen3:8b"
        assert app.sub_title == f"qwen3:8b at {where}"
        assert app.query_one(GenerationPanel).model_label == f"qwen3:8b at {where}"
        assert in_log(app, f"Model: qwen3:8b at {where}")
        assert in_log(app, f"Remembered in {config}")
        assert any(n.startswith("Model chosen: qwen3:8b at") for n in notifications(app))
        assert old._client is not None and old._client.is_closed()  # type: ignore[attr-defined]
        assert config.read_text() == CONFIG.replace('model = "gpt-4o-mini"', 'model = "qwen3:8b"')
        assert [r["path"] for r in server.requests] == ["/v1/models"]

        server.script(Scenario(content=persona_json()))  # the next generation asks for the chosen model
        app.query_one("#description").value = "nurses"  # type: ignore[attr-defined]
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: len(server.requests) == 2 and not app.running)
        assert server.requests[-1]["body"]["model"] == "qwen3:8b"


async def test_a_failed_list_is_one_sentence_in_the_picker_and_esc_closes_it(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    server.fail_models(500)
    app = app_for(tmp_path, server)
    async with app.run_test(size=(120, 36)) as pilot:
        picker = await open_picker(pilot)
        await wait_until(pilot, lambda: "server error" in status_of(picker))
        assert "had a server error (500)" in status_of(picker) and "try again" in status_of(picker)
        assert picker.query_one("#models-status").has_class("-error")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPickerScreen))
        assert app.provider.model == "gpt-4o-mini" and "Remembered" not in log_text(app)


async def test_the_picker_is_refused_while_a_generation_runs(tmp_path: Path, server: FakeOpenAIServer) -> None:
    server.script(Scenario(content=persona_json(), stall_after=0, stall_seconds=30))
    config = tmp_path / "config.toml"
    app = app_for(tmp_path, server, config)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description").value = "nurses"  # type: ignore[attr-defined]
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.running and len(server.requests) == 1)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert not isinstance(app.screen, ModelPickerScreen)
        assert any("A generation is running; choose a model once it has ended" in n for n in notifications(app))
        app._model_chosen("qwen3:8b")  # a choice that arrives mid-run is refused too
        assert app.provider.model == "gpt-4o-mini" and not config.exists()
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.running)
        assert [r["path"] for r in server.requests] == ["/v1/chat/completions"]


async def test_an_unwritable_config_is_said_and_the_switch_still_applies(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    (tmp_path / "plain").write_text("a file, not a folder")
    config = tmp_path / "plain" / "config.toml"
    app = app_for(tmp_path, server, config)
    async with app.run_test(size=(120, 36)) as pilot:
        picker = await open_picker(pilot)
        await wait_until(pilot, lambda: bool(picker.shown))
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: "Could not remember" in log_text(app))
        assert app.provider.model == "llama3.2:3b"
        assert in_log(app, f"Could not remember the model in {config} (")
        assert in_log(app, "it is used until you quit.") and in_log(app, "Model: llama3.2:3b at")


async def test_server_text_is_drawn_literally(tmp_path: Path, server: FakeOpenAIServer) -> None:
    server.models = ["[bold]odd[/bold]\x1b[2J\x07model"]
    app = app_for(tmp_path, server, tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        picker = await open_picker(pilot)
        await wait_until(pilot, lambda: bool(picker.shown))
        prompt = str(picker.query_one(OptionList).get_option_at_index(0).prompt)
        assert "[bold]odd[/bold]model" in prompt and "\x1b" not in prompt
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Remembered in" in log_text(app))
        assert app.provider.model == "[bold]odd[/bold]\x1b[2J\x07model"  # sent back exactly as the server named it
        assert "\x1b" not in app.sub_title and "\x1b" not in log_text(app)
        assert "\\u001B" in (tmp_path / "config.toml").read_text()


async def test_offline_has_no_key_but_the_palette_entry_explains(tmp_path: Path) -> None:
    app = make_app(
        Settings(data_dir=tmp_path, provider="offline"),
        OfflineProvider(tokens_per_second=0),
        PersonaStore(tmp_path / "personas"),
        estimates=EstimateBook(None),
    )
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.check_action("choose_model", ()) is False  # no list: the key is not offered
        app.action_choose_model()  # what the palette's "Choose a model" does
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        picker = app.screen
        assert isinstance(picker, ModelPickerScreen)
        await wait_until(pilot, lambda: "no models" in status_of(picker))
        assert status_of(picker).startswith("The offline sample generator has no models to choose from.")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ModelPickerScreen))
