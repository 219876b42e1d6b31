"""Each headless command's --help says what it does, its exit codes and the environment variables that matter."""

from __future__ import annotations

import pytest

from persona_tui.cli import main


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["list"], "List the personas saved in the data folder"),
        (["show"], "Show one saved persona in full"),
        (["delete"], "Delete one saved persona"),
        (["export"], "Write every saved persona as JSON, JSONL, CSV, Markdown cards (md) or system prompts"),
        (["edit"], "Open one persona's fields as JSON in $VISUAL"),
        (["refine"], "Send one persona and an instruction"),
        (["models"], "List the models of the server"),
        (["org"], "Add, edit, list, show and delete organizations"),
        (["generate"], "Generate personas."),
    ],
)
def test_each_command_has_a_description_exit_codes_and_environment(
    capsys: pytest.CaptureFixture[str], command: list[str], says: str
) -> None:
    text = help_of(capsys, *command)
    assert says in " ".join(text.split())
    assert "exit codes:" in text
    for line in ("  0    done", "  1    the work failed", "  2    invalid input or usage"):
        assert line in text
    assert "PERSONA_TUI_DATA_DIR" in text and "PERSONA_TUI_CONFIG" in text


@pytest.mark.parametrize("command", ["models", "generate"])
def test_commands_that_reach_a_model_name_its_environment(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = help_of(capsys, command)
    assert "OPENAI_API_KEY" in text and "OPENAI_BASE_URL" in text


def test_generate_names_the_exit_code_of_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    assert "130  interrupted by Ctrl-C" in help_of(capsys, "generate")
