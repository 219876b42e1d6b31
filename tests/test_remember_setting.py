"""Writing a chosen model into the user's config file: every other line kept, atomically, never a key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from persona_tui.config import ConfigWriteError, load_settings, remember_setting, with_setting

HAND_WRITTEN = """\
# persona-tui settings, by hand
provider = "openai"   # my server
base_url = "http://localhost:11434/v1"
model = "llama3.2"  # the small one
seed = 7

# the echo plugin
[providers.echo]
greeting = "Hello # not a comment"
"""


def test_replaces_an_existing_model_line_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN)
    assert remember_setting(path, "model", "qwen3:8b") == path
    expected = HAND_WRITTEN.replace('model = "llama3.2"  # the small one', 'model = "qwen3:8b"  # the small one')
    assert path.read_text() == expected
    settings = load_settings({}, env={}, config_path=path)
    assert settings.model == "qwen3:8b" and settings.seed == 7 and settings.provider_options["echo"]["greeting"]


def test_adds_the_line_before_the_first_table_when_absent(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN.replace('model = "llama3.2"  # the small one\n', ""))
    remember_setting(path, "model", "qwen3:8b")
    lines = path.read_text().splitlines()
    assert lines[:6] == [
        "# persona-tui settings, by hand",
        'provider = "openai"   # my server',
        'base_url = "http://localhost:11434/v1"',
        "seed = 7",
        'model = "qwen3:8b"',
        "",
    ]
    assert lines[6:] == ["# the echo plugin", "[providers.echo]", 'greeting = "Hello # not a comment"']
    assert load_settings({}, env={}, config_path=path).model == "qwen3:8b"


def test_adds_at_the_end_of_a_file_without_tables_or_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("seed = 7\n# model = 'commented out'")
    remember_setting(path, "model", "m")
    assert path.read_text() == "seed = 7\n# model = 'commented out'\nmodel = \"m\"\n"


def test_creates_the_folder_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "folder" / "config.toml"
    remember_setting(path, "model", "qwen3:8b")
    assert path.read_text() == 'model = "qwen3:8b"\n'
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary file left


def test_a_quoted_key_crlf_lines_and_odd_characters_survive(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\"model\" = 'a#b' # keep\r\nseed = 1\r\n")
    odd = 'we"ird\\name\x7f\ttab'
    remember_setting(path, "model", odd)
    assert path.read_bytes().startswith(b'model = "we\\"ird\\\\name\\u007F\\u0009tab"  # keep\r\nseed = 1\r\n')
    assert load_settings({}, env={}, config_path=path).model == odd


def test_keeps_the_files_mode_and_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "persona.toml"
    real.parent.mkdir()
    real.write_text("seed = 1\n")
    real.chmod(0o600)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    remember_setting(link, "model", "m")
    assert link.is_symlink() and real.read_text() == 'seed = 1\nmodel = "m"\n'
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_never_writes_a_key_or_something_that_is_not_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for name in ("api_key", "exa_api_key", "config_file", "provider_options", "nonsense"):
        with pytest.raises(ValueError):
            remember_setting(path, name, "sk-secret")
    assert not path.exists()


def test_a_file_it_cannot_edit_safely_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    broken = 'model = "a"\nseed = \n'
    path.write_text(broken)
    with pytest.raises(ConfigWriteError, match="not valid TOML"):
        remember_setting(path, "model", "b")
    multi = 'model = """\nllama3.2"""\n'
    path.write_text(multi)
    with pytest.raises(ConfigWriteError, match="not one line of TOML"):
        remember_setting(path, "model", "b")
    assert path.read_text() == multi


def _writable_anyway(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_text("")
    except PermissionError:
        return False
    probe.unlink()
    return True


def test_a_read_only_folder_gives_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text("seed = 1\n")
    folder.chmod(0o500)
    try:
        if _writable_anyway(folder):  # root writes anyway: refuse the temporary file as the kernel would

            def refused(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied", str(folder))

            monkeypatch.setattr("persona_tui.config.tempfile.mkstemp", refused)
        with pytest.raises(ConfigWriteError) as caught:
            remember_setting(path, "model", "m")
        assert str(caught.value) == f"Could not write {path}: Permission denied."
        assert path.read_text() == "seed = 1\n" and os.listdir(folder) == ["config.toml"]
    finally:
        folder.chmod(0o700)


def test_a_folder_that_is_a_file_gives_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    path = tmp_path / "plain" / "config.toml"
    with pytest.raises(ConfigWriteError) as caught:
        remember_setting(path, "model", "m")
    message = str(caught.value)
    assert message.startswith(f"Could not write {path}: ") and message.endswith(".") and "\n" not in message


def test_with_setting_is_exact_about_what_it_changes() -> None:
    assert with_setting("", "model", "x") == 'model = "x"\n'
    text = "# only a comment for the table\n[providers.echo]\ngreeting = 'hi'\n"
    assert with_setting(text, "model", "x") == 'model = "x"\n\n' + text


def test_settings_know_their_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app writes where the settings were read: --config, PERSONA_TUI_CONFIG, or the default."""
    path = tmp_path / "chosen.toml"
    path.write_text("")
    assert load_settings({}, env={"PERSONA_TUI_CONFIG": str(path)}).config_file == path
    assert load_settings({}, env={}, config_path=path).config_file == path
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_settings({}, env={}).config_file == tmp_path / "xdg" / "persona-tui" / "config.toml"
