"""`persona-tui ask` and `persona-tui interview` as a script or a person at a plain terminal would use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persona_tui.models import Turn
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.test_cli import cli, no_traceback


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


def made(env: dict[str, str], count: int = 3) -> list[dict[str, object]]:
    result = cli(env, "--provider", "offline", "--seed", "3", "generate", "nurses in Kenya", "-n", str(count), "--json")
    assert result.returncode == 0, result.stderr
    records: list[dict[str, object]] = json.loads(result.stdout)
    return records


def transcript(env: dict[str, str], persona_id: str) -> list[Turn]:
    path = Path(env["PERSONA_TUI_DATA_DIR"]) / "transcripts" / f"{persona_id}.jsonl"
    return [Turn.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


def test_ask_offline_answers_every_persona_as_json_and_saves_the_group(env: dict[str, str]) -> None:
    records = made(env)
    ids = [str(r["id"])[:8] for r in records]
    result = cli(env, "--provider", "offline", "ask", *ids, "What frustrates you at work?", "--json")
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [a["persona_id"] for a in answers] == [r["id"] for r in records]
    for answer, record in zip(answers, records, strict=True):
        persona = record["persona"]
        assert isinstance(persona, dict)
        assert any(str(f).lower() in answer["answer"] for f in persona["frustrations"])
    assert "not AI" in result.stderr and "3 of 3 answered" in result.stderr
    [group] = (Path(env["PERSONA_TUI_DATA_DIR"]) / "groups").glob("group-*.json")
    assert "What frustrates you at work?" in group.read_text()
    follow = cli(
        env, "--provider", "offline", "ask", "--group", group.stem[-32:][:8], "--to", ids[1], "And your goals?"
    )
    assert follow.returncode == 0, follow.stderr
    assert str(records[1]["persona"]["name"]) in follow.stdout  # type: ignore[index]
    assert str(records[0]["persona"]["name"]) not in follow.stdout  # type: ignore[index]
    markdown = cli(env, "--provider", "offline", "ask", "--filter", "nurse", "How do you use apps?", "--markdown")
    assert markdown.returncode == 0 and markdown.stdout.startswith("# Focus group")
    assert markdown.stdout.count("### ") == 3


def test_ask_with_nobody_to_ask_is_a_usage_error(env: dict[str, str]) -> None:
    made(env, 1)
    nobody = cli(env, "ask", "What?")
    assert nobody.returncode == 2 and "No persona to ask" in nobody.stderr
    unmatched = cli(env, "ask", "--filter", "astronaut on mars", "What?")
    assert unmatched.returncode == 2 and "No persona matches" in unmatched.stderr
    no_traceback(unmatched)


def test_ask_against_a_server_that_rejects_the_key_exits_1_in_one_sentence(
    env: dict[str, str], server: FakeOpenAIServer
) -> None:
    [record] = made(env, 1)
    server.script(Scenario(status=401))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-talk-secret-111"}
    result = cli(env, "ask", str(record["id"]), "Hello?", "--json")
    assert result.returncode == 1
    assert "The API key was rejected" in result.stderr
    assert json.loads(result.stdout)[0]["error"]
    assert "sk-talk-secret-111" not in result.stderr + result.stdout
    no_traceback(result)


def test_ask_streams_from_a_server(env: dict[str, str], server: FakeOpenAIServer) -> None:
    records = made(env, 2)
    server.script(Scenario(content="Mostly the paperwork, honestly.", token_delay=0.01))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "PERSONA_TUI_MODEL": "llama3.2"}
    result = cli(env, "ask", *(str(r["id"]) for r in records), "What is hard?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Mostly the paperwork, honestly.") == 2
    assert "llama3.2 at 127.0.0.1" in result.stderr and "2 of 2 answered" in result.stderr


def test_interview_reads_questions_from_a_pipe_and_goes_on_next_time(env: dict[str, str]) -> None:
    [record] = made(env, 1)
    persona_id = str(record["id"])
    questions = "What frustrates you?\nWhat are your goals?\nAre you an AI?\n"
    result = subprocess.run(
        [sys.executable, "-m", "persona_tui", "--provider", "offline", "interview", persona_id[:8]],
        input=questions,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    name = str(record["persona"]["name"])  # type: ignore[index]
    assert result.stdout.count(f"{name}: ") == 3
    assert "not AI" in result.stdout
    turns = transcript(env, persona_id)
    assert [t.question for t in turns] == questions.splitlines()
    again = subprocess.run(
        [sys.executable, "-m", "persona_tui", "--provider", "offline", "interview", persona_id[:8]],
        input="\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and "3 earlier turn(s) kept" in again.stderr
    markdown = cli(env, "interview", persona_id[:8], "--markdown")
    assert markdown.stdout.startswith(f"# Interview with {name}") and "## 3. Are you an AI?" in markdown.stdout


def test_ctrl_c_stops_an_answer_and_the_interview_goes_on(env: dict[str, str]) -> None:
    [record] = made(env, 1)
    persona_id = str(record["id"])
    slow = {**env, "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "persona_tui", "--provider", "offline", "interview", persona_id],
        env=slow,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write("What frustrates you most?\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the answer has begun streaming
        line = proc.stderr.readline()
        if "Calling model" in line or not line:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    _, err = proc.communicate("How old are you?\n", timeout=60)
    assert proc.returncode == 0, err
    turns = transcript(env, persona_id)
    assert [(t.question, t.stopped) for t in turns] == [
        ("What frustrates you most?", True),
        ("How old are you?", False),
    ]
    assert turns[0].answer.startswith("Hon") and not turns[0].answer.endswith('"')  # what arrived, cut short
    assert "Stopped after" in err and "what arrived is kept" in err
    assert "Traceback" not in err


def test_interview_against_a_server_sends_the_history_and_survives_a_restart(
    env: dict[str, str], server: FakeOpenAIServer
) -> None:
    [record] = made(env, 1)
    server.script(Scenario(content="Answer one."), Scenario(content="Answer two."), Scenario(content="Answer three."))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "PERSONA_TUI_MODEL": "llama3.2"}
    run = [sys.executable, "-m", "persona_tui", "interview", str(record["id"])[:8]]
    first = subprocess.run(run, input="One?\nTwo?\n", env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(run, input="Three?\n", env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "2 earlier turn(s) kept" in again.stderr
    last = [r["body"] for r in server.requests if r["method"] == "POST"][-1]["messages"]
    assert [m["content"] for m in last[1:]] == ["One?", "Answer one.", "Two?", "Answer two.", "Three?"]
    assert [t.answer for t in transcript(env, str(record["id"]))] == ["Answer one.", "Answer two.", "Answer three."]
