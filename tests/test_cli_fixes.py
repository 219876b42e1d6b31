"""Issue 14's headless defects, each through the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


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


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_an_unusable_data_folder_stops_generate_before_any_request(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing listens: a request would fail differently
    result = cli(env, "generate", "field nurses in rural Kenya")
    assert result.returncode == 2, result.stderr
    assert "cannot be used" in result.stderr and "is a file, not a folder" in result.stderr
    assert "--data-dir" in result.stderr
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr
    assert "Could not connect" not in result.stderr, "the folder is checked before the network"


def test_a_renamed_organization_keeps_its_personas(env: dict[str, str]) -> None:
    assert cli(env, "org", "add", "Acme", "--product", "telehealth").returncode == 0
    assert cli(env, "generate", "clinic managers", "-n", "2", "--org", "Acme").returncode == 0
    assert cli(env, "org", "edit", "Acme", "--rename", "Acme Health").returncode == 0
    result = cli(env, "list", "--org", "acme health", "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2


def test_listing_an_organization_that_does_not_exist_says_so(env: dict[str, str]) -> None:
    assert cli(env, "generate", "clinic managers").returncode == 0
    result = cli(env, "list", "--org", "Nonexistent")
    assert result.returncode == 2
    assert "No organization is named 'Nonexistent'" in result.stderr
    assert "No personas yet" not in result.stdout + result.stderr


def test_an_organization_without_personas_is_not_an_empty_store(env: dict[str, str]) -> None:
    assert cli(env, "generate", "clinic managers").returncode == 0
    assert cli(env, "org", "add", "Quiet Org").returncode == 0
    result = cli(env, "list", "--org", "Quiet Org")
    assert result.returncode == 0
    assert "No personas were made for Quiet Org (1 in all" in result.stdout


def test_times_are_local_and_say_their_zone(env: dict[str, str]) -> None:
    env["TZ"] = "Asia/Tokyo"
    assert cli(env, "generate", "clinic managers").returncode == 0
    listed = cli(env, "list")
    assert " JST" in listed.stdout, listed.stdout
    record_id = json.loads(cli(env, "list", "--json").stdout)[0]["id"]
    shown = cli(env, "show", record_id[:8])
    assert " JST" in shown.stdout and "+00:00" not in shown.stdout


def test_errors_read_in_our_words(env: dict[str, str], tmp_path: Path) -> None:
    blank = cli(env, "org", "add", "   ")
    assert blank.returncode == 2 and "The organization's name must not be empty." in blank.stderr
    assert "String should" not in blank.stderr
    assert cli(env, "generate", "clinic managers").returncode == 0
    folder = cli(env, "export", "-o", str(tmp_path))
    assert folder.returncode == 1 and "it is a folder" in folder.stderr and "personas.json" in folder.stderr
    assert "Errno" not in folder.stderr


def test_offline_on_purpose_is_not_told_to_set_a_key(env: dict[str, str]) -> None:
    chosen = cli(env, "generate", "clinic managers", "--provider", "offline")
    assert chosen.returncode == 0 and "OPENAI_API_KEY" not in chosen.stderr
    assert "offline sample generator (not AI)" in chosen.stderr
    by_default = cli(env, "generate", "clinic managers")
    assert "OPENAI_API_KEY" in by_default.stderr
