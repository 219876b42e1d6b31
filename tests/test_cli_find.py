"""Issue 17: the CLI's list and export find and sort as the app's / and s do."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from persona_tui.models import PersonaRecord
from tests.test_cli import cli
from tests.test_table17 import saved_store


def test_cli_list_and_export_find_and_sort(tmp_path: Path, sample_records: list[PersonaRecord]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    env.update(PERSONA_TUI_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"), COLUMNS="120")
    asyncio.run(saved_store(tmp_path / "data", sample_records))

    def names(*args: str) -> list[str]:
        result = cli(env, "list", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [r["persona"]["name"] for r in json.loads(result.stdout)]

    assert names() == ["Amina Otieno", "Bo Lindqvist", "Chen Wei"]
    assert names("--find", "HE/HIM") == ["Bo Lindqvist"], "any case, any field (the pronouns)"
    assert names("--find", "nurse kisumu") == ["Amina Otieno"], "every word"
    assert names("--sort", "age") == ["Chen Wei", "Bo Lindqvist", "Amina Otieno"]
    assert names("--sort", "age", "--reverse") == ["Amina Otieno", "Bo Lindqvist", "Chen Wei"]
    assert names("--sort", "created", "--reverse") == ["Chen Wei", "Bo Lindqvist", "Amina Otieno"], "oldest first"
    none = cli(env, "list", "--find", "zanzibar")
    assert none.returncode == 0 and "No persona has every word of 'zanzibar' (3 in all" in none.stdout
    exported = cli(env, "export", "--format", "jsonl", "--find", "they/them")
    assert [json.loads(line)["persona"]["name"] for line in exported.stdout.splitlines()] == ["Chen Wei"]
    bad = cli(env, "list", "--sort", "shoe size")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr
