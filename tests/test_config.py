"""Settings resolution: flag > PERSONA_TUI_* env > TOML config file > default, and bad values explained."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import platformdirs
import pytest

import persona_tui.config as config
from persona_tui.config import DEFAULT_MODEL, Settings, SettingsError, load_settings
from persona_tui.engine.providers import chosen

REAL_DEFAULT_CONFIG_PATH = config.default_config_path
SECRET = "sk-test-DO-NOT-PRINT-0123456789"


@pytest.fixture(autouse=True)
def no_default_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's real config file must never leak into a test."""
    missing = tmp_path / "default-config" / "config.toml"
    monkeypatch.setattr(config, "default_config_path", lambda: missing)
    return missing


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "c.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- precedence -----------------------------------------------------------------------------------

LAYERS: dict[str, dict[str, Any]] = {
    # name: flag value, env text, toml text, expected from flag / env / file
    "model": {"flag": "flag-model", "env": "env-model", "toml": '"file-model"'},
    "data_dir": {"flag": Path("/flag/dir"), "env": "/env/dir", "toml": '"/file/dir"'},
    "offline_tokens_per_second": {"flag": 1.5, "env": "2.5", "toml": "3.5"},
    "slow_seconds": {"flag": 4.0, "env": "5", "toml": "6"},
    "max_attempts": {"flag": 7, "env": "8", "toml": "9"},
    "provider": {"flag": "offline", "env": "openai", "toml": '"auto"'},
}
EXPECTED: dict[str, tuple[Any, Any, Any, Any]] = {
    # flag, env, file, default
    "model": ("flag-model", "env-model", "file-model", DEFAULT_MODEL),
    "data_dir": (Path("/flag/dir"), Path("/env/dir"), Path("/file/dir"), Settings().data_dir),
    "offline_tokens_per_second": (1.5, 2.5, 3.5, 80.0),
    "slow_seconds": (4.0, 5.0, 6.0, 15.0),
    "max_attempts": (7, 8, 9, 4),
    "provider": ("offline", "openai", "auto", "auto"),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_precedence_flag_env_file_default(name: str, cfg: Path) -> None:
    layer = LAYERS[name]
    env_key = "PERSONA_TUI_" + name.upper()
    write(cfg, f"{name} = {layer['toml']}\n")
    empty = write(cfg.with_name("empty.toml"), "")
    from_flag, from_env, from_file, default = EXPECTED[name]

    everything = load_settings({name: layer["flag"]}, env={env_key: layer["env"]}, config_path=cfg)
    assert getattr(everything, name) == from_flag
    assert getattr(load_settings({}, env={env_key: layer["env"]}, config_path=cfg), name) == from_env
    assert getattr(load_settings({name: None}, env={env_key: layer["env"]}, config_path=cfg), name) == from_env
    assert getattr(load_settings({}, env={}, config_path=cfg), name) == from_file
    assert getattr(load_settings({}, env={env_key: ""}, config_path=cfg), name) == from_file
    assert getattr(load_settings({}, env={}, config_path=empty), name) == default
    assert getattr(load_settings(None, env={}), name) == default


def test_layers_mix_per_setting(cfg: Path) -> None:
    write(cfg, 'model = "file-model"\nslow_seconds = 6\nheartbeat_seconds = 0.5\n')
    s = load_settings(
        {"model": "flag-model"},
        env={"PERSONA_TUI_SLOW_SECONDS": "5", "PERSONA_TUI_TEMPERATURE": "0.2"},
        config_path=cfg,
    )
    assert (s.model, s.slow_seconds, s.heartbeat_seconds, s.temperature) == ("flag-model", 5.0, 0.5, 0.2)
    assert s.idle_timeout == Settings().idle_timeout
    assert isinstance(s.slow_seconds, float) and isinstance(s.max_attempts, int)


def test_types_are_coerced_from_text(cfg: Path) -> None:
    s = load_settings(
        {},
        env={
            "PERSONA_TUI_SEED": " 42 ",
            "PERSONA_TUI_MAX_ATTEMPTS": "2",
            "PERSONA_TUI_PROVIDER": "OFFLINE",
            "PERSONA_TUI_DATA_DIR": "~/personas-here",
            "PERSONA_TUI_TEMPERATURE": "0",
        },
        config_path=write(cfg, ""),
    )
    assert s.seed == 42 and isinstance(s.seed, int)
    assert s.max_attempts == 2
    assert s.provider == "offline"
    assert s.data_dir == Path.home() / "personas-here"
    assert s.temperature == 0.0


def test_config_file_from_env_variable(tmp_path: Path, cfg: Path) -> None:
    write(cfg, 'model = "via-env-config"\n')
    assert load_settings({}, env={"PERSONA_TUI_CONFIG": str(cfg)}).model == "via-env-config"
    # An explicit path beats the variable.
    other = write(tmp_path / "other.toml", 'model = "explicit"\n')
    assert load_settings({}, env={"PERSONA_TUI_CONFIG": str(cfg)}, config_path=other).model == "explicit"


def test_default_config_file_is_read_when_present(no_default_config: Path) -> None:
    no_default_config.parent.mkdir(parents=True)
    write(no_default_config, "slow_seconds = 2.5\n")
    assert load_settings({}, env={}).slow_seconds == 2.5


def test_missing_default_config_file_is_fine(no_default_config: Path) -> None:
    assert not no_default_config.exists()
    s = load_settings({}, env={})
    assert s == Settings(data_dir=s.data_dir)
    assert s.model == DEFAULT_MODEL


def test_default_config_path_is_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert REAL_DEFAULT_CONFIG_PATH() == Path(platformdirs.user_config_dir("persona-tui")) / "config.toml"
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
        assert REAL_DEFAULT_CONFIG_PATH() == tmp_path / "xdg" / "persona-tui" / "config.toml"


# --- the OpenAI key and base URL ------------------------------------------------------------------


def test_api_key_only_from_openai_env(cfg: Path) -> None:
    write(cfg, "")
    assert load_settings({}, env={"OPENAI_API_KEY": SECRET}, config_path=cfg).api_key == SECRET
    assert load_settings({}, env={"PERSONA_TUI_API_KEY": SECRET}, config_path=cfg).api_key is None
    assert load_settings({}, env={"OPENAI_API_KEY": ""}, config_path=cfg).api_key is None
    assert load_settings({}, env={"OPENAI_API_KEY": "   "}, config_path=cfg).api_key is None


def test_api_key_in_config_file_is_rejected(cfg: Path) -> None:
    write(cfg, f'api_key = "{SECRET}"\nmodel = "m"\n')
    with pytest.raises(SettingsError) as info:
        load_settings({}, env={"OPENAI_API_KEY": "from-env"}, config_path=cfg)
    message = str(info.value)
    assert "sets api_key: keys are read only from the environment (OPENAI_API_KEY)" in message
    assert str(cfg) in message
    assert SECRET not in message


def test_base_url_sources(cfg: Path) -> None:
    write(cfg, 'base_url = "http://file:1/v1"\n')
    openai_env = {"OPENAI_BASE_URL": "http://openai-env:2/v1"}
    both = {**openai_env, "PERSONA_TUI_BASE_URL": "http://ours:3/v1"}
    assert load_settings({}, env=openai_env, config_path=cfg).base_url == "http://openai-env:2/v1"
    assert load_settings({}, env=both, config_path=cfg).base_url == "http://ours:3/v1"
    assert load_settings({"base_url": "http://flag:4/v1"}, env=both, config_path=cfg).base_url == "http://flag:4/v1"
    assert load_settings({}, env={}, config_path=cfg).base_url == "http://file:1/v1"
    assert load_settings({}, env={"OPENAI_BASE_URL": ""}, config_path=cfg).base_url == "http://file:1/v1"
    assert load_settings({}, env={}, config_path=write(cfg, "")).base_url is None


def test_api_key_never_in_repr(cfg: Path) -> None:
    s = load_settings({}, env={"OPENAI_API_KEY": SECRET}, config_path=write(cfg, ""))
    assert s.api_key == SECRET
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert SECRET not in f"{s!r} {s}"
    assert "api_key" not in repr(s)
    # A changed copy keeps it hidden too.
    assert SECRET not in repr(dataclasses.replace(s, model="other"))


# --- resolved provider ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "env", "expected"),
    [
        ("auto", {}, "offline"),
        ("auto", {"OPENAI_API_KEY": SECRET}, "openai"),
        ("auto", {"OPENAI_BASE_URL": "http://localhost:11434/v1"}, "openai"),
        ("auto", {"PERSONA_TUI_BASE_URL": "http://localhost:11434/v1"}, "openai"),
        ("auto", {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "http://x/v1"}, "openai"),
        ("auto", {"OPENAI_API_KEY": ""}, "offline"),
        ("offline", {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "http://x/v1"}, "offline"),
        ("openai", {}, "openai"),
    ],
)
def test_resolved_provider(provider: str, env: dict[str, str], expected: str, cfg: Path) -> None:
    s = load_settings({"provider": provider}, env=env, config_path=write(cfg, ""))
    assert s.provider == provider
    assert chosen(s).name == expected


def test_resolved_provider_on_settings_directly() -> None:
    assert chosen(Settings()).name == "offline"
    assert chosen(Settings(api_key="k")).name == "openai"
    assert chosen(Settings(base_url="http://x")).name == "openai"
    assert chosen(Settings(provider="offline", api_key="k")).name == "offline"
    assert chosen(Settings(provider="openai")).name == "openai"


# --- bad values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "source", "why"),
    [
        ({"PERSONA_TUI_SLOW_SECONDS": "soon"}, "PERSONA_TUI_SLOW_SECONDS", "'soon'"),
        ({"PERSONA_TUI_MAX_ATTEMPTS": "three"}, "PERSONA_TUI_MAX_ATTEMPTS", "whole number"),
        ({"PERSONA_TUI_MAX_ATTEMPTS": "2.5"}, "PERSONA_TUI_MAX_ATTEMPTS", "whole number"),
        ({"PERSONA_TUI_SEED": "1e3"}, "PERSONA_TUI_SEED", "whole number"),
        ({"PERSONA_TUI_TEMPERATURE": "-0.5"}, "PERSONA_TUI_TEMPERATURE", "must not be negative"),
        ({"PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "-1"}, "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND", "negative"),
        ({"PERSONA_TUI_SEED": "-3"}, "PERSONA_TUI_SEED", "negative"),
        ({"PERSONA_TUI_SLOW_SECONDS": "0"}, "PERSONA_TUI_SLOW_SECONDS", "greater than 0"),
        ({"PERSONA_TUI_MAX_ATTEMPTS": "0"}, "PERSONA_TUI_MAX_ATTEMPTS", "greater than 0"),
        ({"PERSONA_TUI_TOTAL_TIMEOUT": "-0.0"}, "PERSONA_TUI_TOTAL_TIMEOUT", "greater than 0"),
        ({"PERSONA_TUI_IDLE_TIMEOUT": "nan"}, "PERSONA_TUI_IDLE_TIMEOUT", "finite"),
        ({"PERSONA_TUI_IDLE_TIMEOUT": "NaN"}, "PERSONA_TUI_IDLE_TIMEOUT", "finite"),
        ({"PERSONA_TUI_TEMPERATURE": "inf"}, "PERSONA_TUI_TEMPERATURE", "finite"),
        ({"PERSONA_TUI_HEARTBEAT_SECONDS": "-inf"}, "PERSONA_TUI_HEARTBEAT_SECONDS", "finite"),
        ({"PERSONA_TUI_CONNECT_TIMEOUT": "1e999"}, "PERSONA_TUI_CONNECT_TIMEOUT", "finite"),
        ({"PERSONA_TUI_PROVIDER": "anthropic"}, "PERSONA_TUI_PROVIDER", "auto, offline or openai"),
        ({"PERSONA_TUI_MODEL": "   "}, "PERSONA_TUI_MODEL", "empty"),
    ],
)
def test_bad_env_values_name_the_variable(env: dict[str, str], source: str, why: str, cfg: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({}, env=env, config_path=write(cfg, ""))
    message = str(info.value)
    assert message.startswith(source + " "), message
    assert why in message, message


@pytest.mark.parametrize(
    ("toml", "name", "why"),
    [
        ("slow_seconds = -2", "slow_seconds", "greater than 0"),
        ("slow_seconds = 0", "slow_seconds", "greater than 0"),
        ("max_attempts = 0", "max_attempts", "greater than 0"),
        ("max_attempts = 2.0", "max_attempts", "whole number"),
        ("retry_base_delay = -1", "retry_base_delay", "negative"),
        ("slow_seconds = nan", "slow_seconds", "finite"),
        ("total_timeout = inf", "total_timeout", "finite"),
        ('slow_seconds = "fast"', "slow_seconds", "'fast'"),
        ('provider = "gpt"', "provider", "auto, offline or openai"),
        ("max_attempts = true", "max_attempts", "number"),
        ("temperature = false", "temperature", "number"),
        ('model = ""', "model", "empty"),
        ('model = ["a", "b"]', "model", "text"),
        ("model = 5", "model", "text"),
        ('data_dir = ""', "data_dir", "empty"),
        ("data_dir = 3", "data_dir", "path"),
        ("seed = { a = 1 }", "seed", "whole number"),
    ],
)
def test_bad_config_values_name_file_and_key(toml: str, name: str, why: str, cfg: Path) -> None:
    write(cfg, toml + "\n")
    with pytest.raises(SettingsError) as info:
        load_settings({}, env={}, config_path=cfg)
    message = str(info.value)
    assert message.startswith(f"{cfg} ({name}) "), message
    assert why in message, message


@pytest.mark.parametrize(
    ("flags", "source"),
    [
        ({"seed": -1}, "--seed"),
        ({"provider": "magic"}, "--provider"),
        ({"slow_seconds": 0}, "--slow-seconds"),
        ({"model": ""}, "--model"),
    ],
)
def test_bad_flag_values_name_the_flag(flags: dict[str, Any], source: str, cfg: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(flags, env={}, config_path=write(cfg, ""))
    assert str(info.value).startswith(source + " ")


def test_flag_beats_bad_env_and_file(cfg: Path) -> None:
    """A lower source is not even looked at when a higher one has the setting."""
    write(cfg, "slow_seconds = -5\n")
    s = load_settings({"slow_seconds": 2.0}, env={"PERSONA_TUI_SLOW_SECONDS": "bad"}, config_path=cfg)
    assert s.slow_seconds == 2.0


def test_unknown_key_in_config_file(cfg: Path) -> None:
    write(cfg, 'model = "m"\nmodle = "typo"\n[extras]\nx = 1\n')
    with pytest.raises(SettingsError) as info:
        load_settings({}, env={}, config_path=cfg)
    message = str(info.value)
    assert str(cfg) in message
    assert "unknown settings: extras, modle (did you mean model?)" in message


@pytest.mark.parametrize("text", ['model = "unterminated\n', "= 1\n", "model = 'a'\nmodel = 'b'\n", "\x00"])
def test_broken_toml_file(text: str, cfg: Path) -> None:
    write(cfg, text)
    with pytest.raises(SettingsError) as info:
        load_settings({}, env={}, config_path=cfg)
    assert str(cfg) in str(info.value)
    assert "could not be read" in str(info.value)


def test_config_file_not_utf8(cfg: Path) -> None:
    cfg.write_bytes(b'model = "\xff\xfe"\n')
    with pytest.raises(SettingsError, match="could not be read"):
        load_settings({}, env={}, config_path=cfg)


def test_config_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({}, env={}, config_path=tmp_path)
    assert str(tmp_path) in str(info.value)


def test_explicit_config_path_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as info:
        load_settings({}, env={}, config_path=missing)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings({}, env={"PERSONA_TUI_CONFIG": str(missing)})
    # An empty variable means "not set", and the default file may be missing.
    assert load_settings({}, env={"PERSONA_TUI_CONFIG": ""}).model == DEFAULT_MODEL


# --- defaults -------------------------------------------------------------------------------------


def test_default_data_dir_comes_from_platformdirs(cfg: Path) -> None:
    s = load_settings({}, env={}, config_path=write(cfg, ""))
    assert s.data_dir == Path(platformdirs.user_data_dir("persona-tui"))
    assert s.data_dir.name == "persona-tui"
    assert s.personas_dir == s.data_dir / "personas"
    assert Settings().data_dir == s.data_dir


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG variables are read on Linux")
def test_default_data_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cfg: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    s = load_settings({}, env={}, config_path=write(cfg, ""))
    assert s.data_dir == tmp_path / "xdg-data" / "persona-tui"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().model = "x"  # type: ignore[misc]


@pytest.mark.parametrize("raw", ["default", "none", "DEFAULT"])
def test_the_temperature_can_be_left_to_the_model(raw: str, cfg: Path) -> None:
    assert load_settings({"temperature": raw}, env={}, config_path=write(cfg, "")).temperature is None
    assert load_settings({}, env={"PERSONA_TUI_TEMPERATURE": raw}, config_path=write(cfg, "")).temperature is None
    assert load_settings({}, env={}, config_path=write(cfg, f'temperature = "{raw}"\n')).temperature is None
    assert load_settings({"temperature": "0.3"}, env={}, config_path=write(cfg, "")).temperature == 0.3
    with pytest.raises(SettingsError, match="--temperature has an invalid value 'warm'"):
        load_settings({"temperature": "warm"}, env={}, config_path=write(cfg, ""))


@pytest.mark.parametrize("value", ["5", "2.5"])
def test_a_temperature_out_of_range_is_refused_at_load(value: str, cfg: Path) -> None:
    write(cfg, f"temperature = {value}\n")
    with pytest.raises(SettingsError, match="must be from 0 to 2"):
        load_settings({}, env={}, config_path=cfg)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1", "http://[::1/v1", "localhost:11434/v1", "ftp://x/v1"])
def test_a_server_address_with_a_typo_is_refused_at_load(url: str, cfg: Path) -> None:
    with pytest.raises(SettingsError, match="--base-url has an invalid value"):
        load_settings({"base_url": url}, env={}, config_path=write(cfg, ""))


def test_a_bad_value_is_shown_as_it_was_written(cfg: Path) -> None:
    write(cfg, "seed = true\n")
    with pytest.raises(SettingsError, match=r"\(seed\) has an invalid value true: expected a whole number"):
        load_settings({}, env={}, config_path=cfg)
