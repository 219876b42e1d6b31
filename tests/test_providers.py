"""Providers are plugins: the registry, the built-ins registered like any plugin, and a plugin added by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_tui.config import Settings, SettingsError, load_settings
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.providers import registry
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.engine.providers.openai_compatible import OpenAIProvider
from persona_tui.models import PersonaRecord
from tests import plugin_provider

ROOT = Path(__file__).resolve().parents[1]


def test_the_built_in_providers_come_from_the_entry_points() -> None:
    assert registry.names()[:2] == ["offline", "openai"]
    openai = registry.get("openai")
    assert openai.key_env_var == "OPENAI_API_KEY"
    assert openai.capabilities.json_schema and openai.is_ai
    assert "OPENAI_API_KEY" in openai.setup_hint
    offline = registry.get("offline")
    assert offline.key_env_var is None and not offline.is_ai


def test_auto_prefers_a_provider_that_is_set_up() -> None:
    assert isinstance(registry.make_provider(Settings(seed=1)), OfflineProvider)
    real = registry.make_provider(Settings(api_key="sk-test", model="gpt-5-mini"))
    assert isinstance(real, OpenAIProvider) and real.model == "gpt-5-mini"


def test_options_are_validated_by_the_providers_own_model() -> None:
    provider = registry.make_provider(Settings(provider="offline", seed=7, offline_tokens_per_second=0))
    assert isinstance(provider, OfflineProvider) and provider.seed == 7
    with pytest.raises(SettingsError, match="offline provider's option seed"):
        registry.make_provider(Settings(provider="offline", seed=-1))


def test_a_provider_table_may_not_shadow_a_setting() -> None:
    with pytest.raises(SettingsError, match=r"\[providers.offline\] sets seed, which is a setting of its own"):
        registry.make_provider(Settings(provider="offline", provider_options={"offline": {"seed": 3}}))


def test_an_unknown_provider_names_the_choices() -> None:
    with pytest.raises(SettingsError, match="no provider named 'anthropic'; use auto, offline, openai"):
        registry.get("anthropic")


def test_the_openai_provider_without_a_key_or_server_says_how_to_set_it_up() -> None:
    with pytest.raises(SettingsError, match=r"needs a key or a server\. Set OPENAI_API_KEY"):
        registry.make_provider(Settings(provider="openai"))


@pytest.fixture
def echo_registered() -> Iterator[None]:
    registry.register(plugin_provider.PROVIDER)
    yield
    registry.unregister("echo")


def test_a_provider_registered_in_process_is_found_by_name(echo_registered: None) -> None:
    assert "echo" in registry.names()
    provider = registry.make_provider(Settings(provider="echo", provider_options={"echo": {"greeting": "Hi"}}))
    assert isinstance(provider, plugin_provider.EchoProvider) and provider.greeting == "Hi"
    assert registry.chosen(Settings()).name == "offline"  # a plugin that is never 'ready' is not picked by auto


def test_failure_kinds_say_whether_they_stop_a_batch() -> None:
    stopping = {kind for kind in FailureKind if kind.stops_batch}
    assert stopping == {
        FailureKind.AUTH,
        FailureKind.FORBIDDEN,
        FailureKind.NOT_FOUND,
        FailureKind.QUOTA,
        FailureKind.BAD_REQUEST,
        FailureKind.SAVE,
    }
    assert FailureKind("rate_limited") is FailureKind.RATE_LIMITED and str(FailureKind.STALLED) == "stalled"


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which a distribution named persona-tui-echo registers ``tests/plugin_provider.py``."""
    site = tmp_path / "site"
    dist = site / "persona_tui_echo-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: persona-tui-echo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[persona_tui.providers]\necho = tests.plugin_provider:PROVIDER\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
        PERSONA_TUI_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        COLUMNS="120",
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_plugin_is_one_file_and_one_entry_point_line(plugin_env: dict[str, str], tmp_path: Path) -> None:
    helped = run_cli(plugin_env, "generate", "--help")
    assert "echo" in helped.stdout
    config = tmp_path / "config.toml"
    config.write_text(
        'regenerate_duplicates = false  # the echo plugin tells every persona the same story\n[providers.echo]\ngreeting = "Plugged"\n'
    )
    result = run_cli(
        plugin_env, "--config", str(config), "generate", "people who test plugins", "-n", "2", "--provider", "echo",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [PersonaRecord.model_validate(r) for r in json.loads(result.stdout)]
    assert sorted(r.persona.name for r in records) == ["Plugged Persona 1", "Plugged Persona 2"]
    assert all(r.provider == "echo" and r.model == "echo-1" for r in records)
    assert all(r.usage is not None and r.usage.reasoning_tokens == 6 for r in records)
    assert "Traceback" not in result.stderr


def test_a_config_may_name_a_plugin_provider(plugin_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('provider = "echo"\n')
    result = run_cli(plugin_env, "--config", str(config), "generate", "plugin people", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["provider"] == "echo"


def test_without_the_plugin_installed_its_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="use auto, offline or openai"):
        load_settings({"provider": "echo"}, env={}, config_path=None)
