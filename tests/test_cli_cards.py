"""The CLI's persona commands: edit in $EDITOR, refine (against the loopback server and offline), and
export as Markdown cards and system prompts, one document or one file per persona."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from persona_tui.models import PersonaRecord
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_dict
from tests.test_cli import cli, env, no_traceback, persona_files  # noqa: F401  (env is a fixture)


def one_persona(env: dict[str, str]) -> PersonaRecord:  # noqa: F811
    result = cli(env, "generate", "field nurses in rural Kenya", "--provider", "offline", "--seed", "7", "--json")
    assert result.returncode == 0, result.stderr
    return PersonaRecord.model_validate(json.loads(result.stdout)[0])


def stored(env: dict[str, str]) -> list[PersonaRecord]:  # noqa: F811
    return [PersonaRecord.model_validate_json(f.read_bytes()) for f in persona_files(env)]


def fake_editor(tmp_path: Path, script: str) -> str:
    """An $EDITOR: a Python script that changes the JSON file it is given."""
    path = tmp_path / "editor.py"
    path.write_text(
        f"#!{sys.executable}\nimport json, sys\npath = sys.argv[1]\ndata = json.load(open(path))\n{script}\n"
        "json.dump(data, open(path, 'w'))\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_edit_saves_a_valid_change_and_keeps_the_earlier_version(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    record = one_persona(env)
    editor = fake_editor(tmp_path, "data['age'] = 71\ndata['goals'] = ['Retire near the lake']")
    result = cli({**env, "EDITOR": editor}, "edit", record.id[:8])
    assert result.returncode == 0, result.stderr
    [saved] = stored(env)
    assert saved.id == record.id and saved.persona.age == 71 and saved.persona.goals == ["Retire near the lake"]
    assert saved.versions is not None and saved.versions[0].how == "edit"
    assert saved.versions[0].changed == ["age", "goals"] and saved.versions[0].persona == record.persona
    assert f"Saved {record.persona.name} (age, goals changed); version 2." in result.stderr


def test_an_invalid_edit_says_why_saves_nothing_and_keeps_the_text(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    record = one_persona(env)
    before = persona_files(env)[0].read_bytes()
    editor = fake_editor(tmp_path, "data['age'] = 300\ndata['quote'] = 'kept words'")
    result = cli({**env, "EDITOR": editor}, "edit", record.id[:8])
    assert result.returncode == 1
    no_traceback(result)
    assert "The edited persona is not valid: age must be at most 120; nothing was saved." in result.stderr
    assert persona_files(env)[0].read_bytes() == before
    kept = Path(result.stderr.split("Your text is kept in ")[1].split(":")[0])
    assert json.loads(kept.read_text())["quote"] == "kept words", "nothing the user typed is lost"
    assert f"--from {kept}" in result.stderr
    fixed = fake_editor(tmp_path, "data['age'] = 30")
    again = cli({**env, "VISUAL": fixed}, "edit", record.id[:8], "--from", str(kept))
    assert again.returncode == 0, again.stderr
    assert stored(env)[0].persona.quote == "kept words" and stored(env)[0].persona.age == 30


def test_edit_without_an_editor_says_how_to_set_one(env: dict[str, str]) -> None:  # noqa: F811
    record = one_persona(env)
    result = cli({**env, "EDITOR": "", "VISUAL": ""}, "edit", record.id[:8])
    assert result.returncode == 2
    assert "No editor is set: both $VISUAL and $EDITOR are empty." in result.stderr
    assert "EDITOR=nano" in result.stderr


def test_refine_against_the_server_streams_prints_the_changes_and_saves_with_yes(
    env: dict[str, str],  # noqa: F811
    server: FakeOpenAIServer,
) -> None:
    record = one_persona(env)
    revised = {**record.persona.model_dump(), "tech_savviness": "novice", "quote": "I do not trust the machine."}
    server.script(Scenario(content=json.dumps(revised), usage=True))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "PERSONA_TUI_MODEL": "llama3.2"}
    result = cli(env, "refine", record.id[:8], "more sceptical of AI", "--yes")
    assert result.returncode == 0, result.stderr
    prompt = server.requests[0]["body"]["messages"][1]["content"]
    assert "more sceptical of AI" in prompt and json.dumps(record.persona.name) in prompt
    assert "Streaming tokens" in result.stderr and "Saved" in result.stderr
    assert f"{record.persona.tech_savviness} → novice" in result.stdout
    assert "Quote" in result.stdout and "Name" not in result.stdout, "only the changed fields"
    [saved] = stored(env)
    assert saved.persona.tech_savviness == "novice" and saved.model == "llama3.2"
    assert saved.versions is not None and saved.versions[0].note == "more sceptical of AI"
    assert saved.versions[0].model == record.model


def test_refine_offline_without_a_terminal_prints_the_diff_and_saves_nothing(env: dict[str, str]) -> None:  # noqa: F811
    record = one_persona(env)
    before = persona_files(env)[0].read_bytes()
    result = cli(env, "refine", record.id[:8], "more sceptical of AI, lives alone", "--provider", "offline")
    assert result.returncode == 1
    no_traceback(result)
    assert "+ sceptical of AI" in result.stdout
    assert "Nothing was saved: there is no terminal to ask whether to keep the revision." in result.stderr
    assert "--yes" in result.stderr
    assert persona_files(env)[0].read_bytes() == before
    saved = cli(
        env, "refine", record.id[:8], "more sceptical of AI, lives alone", "--provider", "offline", "-y", "--json"
    )
    assert saved.returncode == 0, saved.stderr
    out = PersonaRecord.model_validate_json(saved.stdout)
    assert "sceptical of AI" in out.persona.personality_traits and "lives alone." in out.persona.background
    assert out.provider == "offline" and "not AI" in saved.stderr


@pytest.mark.parametrize("fmt", ["md", "prompt"])
def test_export_cards_one_document(env: dict[str, str], fmt: str) -> None:  # noqa: F811
    result = cli(env, "generate", "field nurses in rural Kenya", "-n", "2", "--provider", "offline", "--json")
    records = [PersonaRecord.model_validate(r) for r in json.loads(result.stdout)]
    out = cli(env, "export", "--format", fmt)
    assert out.returncode == 0, out.stderr
    for record in records:
        assert record.persona.name in out.stdout and record.persona.quote in out.stdout
    assert out.stdout.count("\n---\n") == 1
    if fmt == "md":
        assert out.stdout.count("\n## Frustrations\n") == 2 and out.stdout.startswith("# ")
    else:
        assert out.stdout.count("Do not say or suggest that you are an AI") == 2


def test_export_split_writes_one_file_per_persona(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    cli(env, "generate", "field nurses in rural Kenya", "-n", "3", "--provider", "offline")
    folder = tmp_path / "cards"
    result = cli(env, "export", "--format", "md", "--out", str(folder))
    assert result.returncode == 0, result.stderr
    files = sorted(folder.glob("*.md"))
    assert len(files) == 3 and all(f.read_text().startswith("# ") for f in files)
    assert "Exported 3 persona(s) to" in result.stderr
    refused = cli(env, "export", "--format", "csv", "--split", "--out", str(folder))
    assert refused.returncode == 2 and "--format md or --format prompt" in refused.stderr


def test_markdown_card_keeps_model_text_from_becoming_structure() -> None:
    from persona_tui.export import persona_markdown, persona_prompt
    from persona_tui.models import Persona, RequestInfo

    fields = persona_dict("# Not a heading", communication_style="- not a list\x1b[31m")
    record = PersonaRecord(
        provider="openai",
        model="m",
        request=RequestInfo(description="d"),
        generation_seconds=1,
        tokens=1,
        persona=Persona.model_validate(fields),
    )
    card = persona_markdown(record)
    assert card.startswith("# \\# Not a heading\n") and "\n\\- not a list\n" in card and "\x1b" not in card
    prompt = persona_prompt(record)
    assert prompt.startswith("You are # Not a heading") and "stay in character" in prompt.lower()
