"""The launcher opens the app when no command is given; the CLI alone never imports the app."""

from __future__ import annotations

import pytest

from persona_tui import cli, launch
from persona_tui.config import Settings


def test_no_command_opens_the_app_through_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    opened: list[Settings] = []
    import persona_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "run_app", lambda settings: opened.append(settings) or 0)
    assert launch.main(["--data-dir", str(tmp_path), "--provider", "offline"]) == 0
    assert len(opened) == 1 and opened[0].provider == "offline"


def test_the_cli_on_its_own_asks_for_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "No command given." in err and "persona-tui --help" in err
