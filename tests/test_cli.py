"""The headless CLI as a script would use it: real processes, exit codes, stdout JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persona_tui.models import PersonaRecord
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_json


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    clean.update(
        PERSONA_TUI_DATA_DIR=str(tmp_path / "data"),
        PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND="0",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        COLUMNS="120",
    )
    return clean


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def persona_files(env: dict[str, str]) -> list[Path]:
    folder = Path(env["PERSONA_TUI_DATA_DIR"]) / "personas"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def test_generate_offline_json_writes_files(env: dict[str, str]) -> None:
    result = cli(env, "generate", "field nurses in rural Kenya aged 40 to 60", "-n", "3", "--json")
    assert result.returncode == 0, result.stderr
    records = [PersonaRecord.model_validate(r) for r in json.loads(result.stdout)]
    assert len(records) == 3
    assert len({r.persona.name for r in records}) == 3
    assert all(r.provider == "offline" and 40 <= r.persona.age <= 60 for r in records)
    assert all("Kenya" in r.persona.location for r in records)
    files = persona_files(env)
    assert len(files) == 3
    assert {PersonaRecord.model_validate_json(f.read_bytes()).id for f in files} == {r.id for r in records}
    assert "offline sample generator (not AI)" in result.stderr
    assert result.stderr.count("✔ [") == 3 and "3 of 3 saved" in result.stderr
    no_traceback(result)


def test_generate_one_shows_every_stage(env: dict[str, str]) -> None:
    result = cli(env, "generate", "bakers in Lisbon")
    assert result.returncode == 0
    for line in (
        "Preparing request",
        "Building prompt",
        "Request sent to offline-sample",
        "First token after",
        "Calling model",
        "Streaming tokens",
        "Validating persona",
        "Saving",
        "Saved ",
    ):
        assert line in result.stderr, line


def test_generate_streams_from_base_url(env: dict[str, str], server: FakeOpenAIServer) -> None:
    server.script(Scenario(content=persona_json(), first_token_delay=0.1))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "PERSONA_TUI_MODEL": "llama3.2"}
    result = cli(env, "generate", "nurses", "--json")
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["provider"] == "openai" and record["model"] == "llama3.2"
    assert server.requests[0]["body"]["model"] == "llama3.2"
    assert "llama3.2 at 127.0.0.1" in result.stderr


def test_generate_failure_exits_1_with_one_sentence(env: dict[str, str], server: FakeOpenAIServer) -> None:
    server.script(Scenario(status=401))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-cli-secret-000"}
    result = cli(env, "generate", "nurses", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == []
    assert "The API key was rejected" in result.stderr
    assert "--provider offline" in result.stderr
    assert "sk-cli-secret-000" not in result.stderr + result.stdout
    assert persona_files(env) == []
    no_traceback(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "   "], "description is empty"),
        (["generate", "nurses", "-n", "0"], "1 to 10,000"),
        (["generate", "nurses", "-n", "10001"], "1 to 10,000"),
        (["generate", "x" * 4001], "at most 4,000"),
        (["generate", "nurses", "--provider", "magic"], "invalid choice"),
        (["generate"], "required"),
    ],
)
def test_invalid_input_exits_2_before_any_call(env: dict[str, str], args: list[str], message: str) -> None:
    result = cli(env, *args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert persona_files(env) == []
    no_traceback(result)


def test_bad_setting_exits_2(env: dict[str, str]) -> None:
    result = cli({**env, "PERSONA_TUI_SLOW_SECONDS": "soon"}, "generate", "nurses")
    assert result.returncode == 2
    assert "PERSONA_TUI_SLOW_SECONDS" in result.stderr
    no_traceback(result)


def test_openai_provider_without_key_or_server_exits_2(env: dict[str, str]) -> None:
    result = cli(env, "generate", "nurses", "--provider", "openai")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr


def test_ctrl_c_keeps_saved_personas_and_lists_them(env: dict[str, str]) -> None:
    env = {**env, "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "400"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "persona_tui", "generate", "teachers in Lyon", "-n", "5", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(persona_files(env)) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    listed = {r["id"] for r in json.loads(out)}
    on_disk = {PersonaRecord.model_validate_json(f.read_bytes()).id for f in persona_files(env)}
    assert listed == on_disk
    assert 1 <= len(listed) < 5
    assert "Cancelled after" in err and f"{len(listed)} of 5 saved" in err
    folder = Path(env["PERSONA_TUI_DATA_DIR"]) / "personas"
    assert not list(folder.glob(".tmp-*")), "no temporary file may be left"
    assert "Traceback" not in err


def test_list_show_delete_export(env: dict[str, str]) -> None:
    assert cli(env, "generate", "small business owners in Ohio", "-n", "2").returncode == 0
    listing = cli(env, "list", "--json")
    records = json.loads(listing.stdout)
    assert len(records) == 2
    first = records[0]["id"]

    table = cli(env, "list")
    assert table.returncode == 0 and records[0]["persona"]["name"] in table.stdout

    shown = cli(env, "show", first[:6])
    assert shown.returncode == 0
    assert records[0]["persona"]["quote"] in " ".join(shown.stdout.split())
    assert json.loads(cli(env, "show", first, "--json").stdout)["id"] == first

    missing = cli(env, "show", "ffff0000")
    assert missing.returncode == 1 and "No persona" in missing.stderr

    jsonl = cli(env, "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in jsonl] == [r["id"] for r in records]
    rows = list(csv.DictReader(io.StringIO(cli(env, "export", "--format", "csv").stdout)))
    assert [row["id"] for row in rows] == [r["id"] for r in records]
    assert rows[0]["quote"] == records[0]["persona"]["quote"]

    target = Path(env["PERSONA_TUI_DATA_DIR"]).parent / "out.json"
    assert cli(env, "export", "-o", str(target)).returncode == 0
    assert len(json.loads(target.read_text())) == 2

    deleted = cli(env, "delete", first)
    assert deleted.returncode == 0
    assert [r["id"] for r in json.loads(cli(env, "list", "--json").stdout)] == [records[1]["id"]]


def test_list_reports_corrupt_files_and_goes_on(env: dict[str, str]) -> None:
    assert cli(env, "generate", "nurses").returncode == 0
    bad = Path(env["PERSONA_TUI_DATA_DIR"]) / "personas" / "broken.json"
    bad.write_text("{not json")
    result = cli(env, "list", "--json")
    assert result.returncode == 0
    assert len(json.loads(result.stdout)) == 1
    assert "broken.json" in result.stderr and "not valid JSON" in result.stderr
    assert bad.read_text() == "{not json"


@pytest.mark.parametrize("command", [[], ["generate"], ["list"], ["show"], ["delete"], ["export"]])
def test_help_everywhere(env: dict[str, str], command: list[str]) -> None:
    result = cli(env, *command, "--help")
    assert result.returncode == 0 and "usage: persona-tui" in result.stdout


def test_version(env: dict[str, str]) -> None:
    from persona_tui import __version__

    result = cli(env, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"persona-tui {__version__}"
