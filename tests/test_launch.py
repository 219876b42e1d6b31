"""The launcher opens the app when no command is given; the CLI alone never imports the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from persona_tui import cli, launch
from persona_tui.config import Settings


def test_no_command_opens_the_app_through_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    opened: list[Settings] = []
    import persona_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "run_app", lambda settings: opened.append(settings) or 0)
    monkeypatch.setattr(launch, "_has_terminal", lambda: True)
    assert launch.main(["--data-dir", str(tmp_path), "--provider", "offline"]) == 0
    assert len(opened) == 1 and opened[0].provider == "offline"


def test_the_cli_on_its_own_asks_for_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "No command given." in err and "persona-tui --help" in err


def test_without_a_terminal_the_app_is_not_opened(tmp_path: Path) -> None:
    """Issue 14 (28): input and output redirected: one sentence, exit 2, no escape codes, no hang."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    env["PERSONA_TUI_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "persona_tui"], stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=30
    )
    assert result.returncode == 2
    assert b"needs a terminal" in result.stderr and b"persona-tui generate" in result.stderr
    assert b"\x1b" not in result.stdout + result.stderr


def test_piped_output_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    """Issue 14 (27): a long line on stderr or in a table reaches a pipe whole."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_", "COLUMNS"))}
    env.update(PERSONA_TUI_DATA_DIR=str(tmp_path / "data"), PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND="0")
    description = "community health workers who visit remote villages in the hills above Kisumu every week"
    run = subprocess.run(
        [sys.executable, "-m", "persona_tui", "generate", description],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "persona_tui", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    rows = [line for line in listed.stdout.splitlines() if "offline-sample" in line]
    assert len(rows) == 1, listed.stdout  # the whole row on one line, no cell folded over several
    assert "Community Health" in rows[0] and "Kisumu, Kenya" in rows[0]
