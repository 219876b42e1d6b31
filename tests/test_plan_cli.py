"""The plan and the report from the command line: --mix, --plan FILE, the plan shown before the run,
the report after it, and `persona-tui report` on the last run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from persona_tui.engine.plan import draw_plan, parse_mix
from persona_tui.models import GenerationRequest, PersonaRecord
from persona_tui.narrate import plan_lines
from tests import test_cli
from tests.test_cli import cli, no_traceback

env = test_cli.env  # the same fixture: a data folder and config of the test's own, offline at full speed

KENYA = "nurses in Kenya aged 30 to 60"


def test_generate_shows_the_plan_first_and_the_report_last(env: dict[str, str]) -> None:
    result = cli(env, "generate", KENYA, "-n", "12", "--seed", "3")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    plan_at, first_saved, report_at = (
        err.index("Population plan for 12"),
        err.index("Saved"),
        err.index("Diversity of 12"),
    )
    assert plan_at < first_saved < report_at
    assert "  places " in err and "Kenya" not in err[plan_at : err.index("  places")]  # towns listed, not the country
    assert "plan         12 of 12 held their slot" in err
    no_traceback(result)


def test_mix_shapes_the_batch(env: dict[str, str]) -> None:
    result = cli(
        env, "generate", "nurses", "-n", "10", "--mix", "ages 25-35; 60% she/her", "--mix", "tech novice:1", "--json"
    )
    assert result.returncode == 0, result.stderr
    records = [PersonaRecord.model_validate(r) for r in json.loads(result.stdout)]
    assert all(25 <= r.persona.age <= 35 for r in records)
    assert Counter(r.persona.pronouns for r in records)["she/her"] == 6
    assert {r.persona.tech_savviness for r in records} == {"novice"}
    assert all(r.request.mix is not None and r.request.mix.ages == (25, 35) for r in records)


def test_a_population_table_in_a_file(env: dict[str, str], tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[population]\nages = [40, 44]\nplaces = ["Mombasa"]\npin = { occupation = "Midwife" }\n')
    result = cli(env, "generate", "health workers", "-n", "3", "--plan", str(plan), "--json")
    assert result.returncode == 0, result.stderr
    records = [PersonaRecord.model_validate(r) for r in json.loads(result.stdout)]
    assert all(40 <= r.persona.age <= 44 and r.persona.location.startswith("Mombasa") for r in records)
    assert {r.persona.occupation for r in records} == {"Midwife"}


def test_bad_mix_and_bad_plan_files_are_usage_errors_with_one_sentence(env: dict[str, str], tmp_path: Path) -> None:
    result = cli(env, "generate", "nurses", "--mix", "ages 60-25")
    assert result.returncode == 2
    assert "the youngest age (60) is above the oldest (25)" in result.stderr
    empty = tmp_path / "empty.toml"
    empty.write_text("seed = 1\n")
    result = cli(env, "generate", "nurses", "--plan", str(empty))
    assert result.returncode == 2 and "has no [population] table" in result.stderr and "Hint:" in result.stderr
    result = cli(env, "generate", "nurses", "--plan", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "could not be read" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[population\n")
    result = cli(env, "generate", "nurses", "--plan", str(broken))
    assert result.returncode == 2 and "is not valid TOML" in result.stderr
    for result in (cli(env, "generate", "nurses", "--mix", "colour blue"),):
        no_traceback(result)
    assert not (Path(env["PERSONA_TUI_DATA_DIR"]) / "personas").exists(), "nothing was generated"


def test_report_on_the_last_run_in_words_and_json(env: dict[str, str]) -> None:
    assert cli(env, "generate", "teachers in Ohio", "-n", "5").returncode == 0
    assert cli(env, "generate", KENYA, "-n", "4").returncode == 0
    words = cli(env, "report")
    assert words.returncode == 0, words.stderr
    assert KENYA in words.stdout and "Diversity of 4 personas" in words.stdout
    data = json.loads(cli(env, "report", "--json").stdout)
    assert data["run"]["request"]["description"] == KENYA
    assert data["report"]["count"] == 4 and len(data["run"]["plan"]["slots"]) == 4
    first = json.loads(cli(env, "report", "--json").stdout)["run"]["id"]
    assert cli(env, "report", first[:6]).returncode == 0


def test_report_without_runs_says_how_to_make_one(env: dict[str, str]) -> None:
    result = cli(env, "report")
    assert result.returncode == 1
    assert "No run has been recorded yet." in result.stderr and "persona-tui generate" in result.stderr
    result = cli(env, "report", "ffff")
    assert result.returncode == 1 and "No run's id starts with 'ffff'" in result.stderr


def test_report_says_when_personas_of_the_run_were_deleted(env: dict[str, str]) -> None:
    out = cli(env, "generate", KENYA, "-n", "3", "--json")
    first = json.loads(out.stdout)[0]["id"]
    assert cli(env, "delete", first).returncode == 0
    words = cli(env, "report")
    assert "1 of its personas was deleted since" in words.stdout and "Diversity of 2 personas" in words.stdout


def test_plan_lines_count_each_dimension() -> None:
    plan = draw_plan(GenerationRequest.create(KENYA, 20, mix=parse_mix("pin communication_style=terse")), seed=5)
    lines = plan_lines(plan)
    assert lines[0].split()[0] == "ages" and "30s" in lines[0] and "50s" in lines[0]
    pronouns = next(line for line in lines if line.split()[0] == "pronouns")
    assert "she/her 10" in pronouns and "he/him 9" in pronouns
    assert any("pinned" in line and "communication_style = terse" in line for line in lines)
    single = plan_lines(draw_plan(GenerationRequest.create(KENYA, 1), seed=5))
    assert len(single) == 1 and single[0].split()[0] == "slot"


def test_a_run_prefix_must_be_long_enough_and_fit_one_run(env: dict[str, str]) -> None:
    assert cli(env, "generate", KENYA, "-n", "2").returncode == 0
    run_id = json.loads(cli(env, "report", "--json").stdout)["run"]["id"]
    short = cli(env, "report", run_id[:2])
    assert short.returncode == 2 and "A run id needs at least 4 characters" in short.stderr
    runs = Path(env["PERSONA_TUI_DATA_DIR"]) / "runs"
    original = next(runs.glob("*.json"))
    (runs / original.name.replace(run_id, run_id[:6] + "f" * 26)).write_bytes(original.read_bytes())
    both = cli(env, "report", run_id[:6])
    assert both.returncode == 2 and "2 runs have ids starting with" in both.stderr, both.stderr
