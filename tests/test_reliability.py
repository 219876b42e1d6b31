"""Faults that the other test files do not cover: the disk, the folder, other processes, the clock.

Each test here is a row of docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.pipeline import generate
from persona_tui.models import GenerationRequest, PersonaRecord
from persona_tui.storage import TEMP_PREFIX, PersonaStore
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import ScriptedProvider, ok_step, persona_json

SECRET = "sk-reliability-secret-4242424242"


def fast(tmp_path: Path, **kw: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path, "retry_base_delay": 0.01, "retry_max_delay": 0.05}
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


async def collect(provider: ScriptedProvider, settings: Settings, count: int = 1) -> list[ev.Event]:
    store = PersonaStore(settings.personas_dir)
    return [
        e
        async for e in generate(
            GenerationRequest.create("nurses", count), provider=provider, store=store, settings=settings
        )
    ]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_", "EXA_"))}
    clean.update(
        PERSONA_TUI_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        PERSONA_TUI_RETRY_BASE_DELAY="0.05",
        PERSONA_TUI_RETRY_MAX_DELAY="0.1",
    )
    return clean


def cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


# ----- the disk and the folder -----


@pytest.mark.asyncio
async def test_disk_full_during_save_keeps_what_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import persona_tui.storage as storage

    settings = fast(tmp_path)
    first = await collect(ScriptedProvider([ok_step("Ana Souza")]), settings)
    [kept] = [e.path for e in first if isinstance(e, ev.PersonaSaved)]
    before = kept.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", full)
    events = await collect(ScriptedProvider([ok_step("Bo Lindqvist")]), settings)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "save" and "No space left on device" in failed.message
    assert "disk has space" in failed.hint
    assert kept.read_bytes() == before
    assert sorted(p.name for p in settings.personas_dir.iterdir()) == [kept.name], "no temporary file, no half file"


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["permission", "not_a_folder"])
async def test_unwritable_data_folder_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "permission":  # root ignores chmod, so the refusal is made where the file is opened
        import aiofiles

        real_open = aiofiles.open

        def refuse(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
            if "x" in mode or "w" in mode:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr("persona_tui.storage.aiofiles.open", refuse)
        settings = fast(tmp_path)
    else:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        settings = fast(blocker / "data")
    events = await collect(ScriptedProvider([ok_step()]), settings)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "save"
    # In our words: a file in the way is named as such (found before any request, issue 14).
    assert ("Permission denied" if how == "permission" else "is a file, not a folder") in failed.message
    assert "--data-dir" in failed.hint
    assert events[-1].summary.failed == 1  # type: ignore[union-attr]


def test_stale_temporary_files_are_swept_fresh_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    stale, fresh = folder / f"{TEMP_PREFIX}old.json", folder / f"{TEMP_PREFIX}new.json"
    stale.write_text("{half")
    fresh.write_text("{half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    result = PersonaStore(folder).load_all_sync()
    assert result.problems == [] and result.records == []
    assert not stale.exists() and fresh.exists()


# ----- other processes -----

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from persona_tui.models import Persona, PersonaRecord, RequestInfo
    from persona_tui.storage import PersonaStore
    sys.path.insert(0, {root!r})
    from tests.helpers import persona_dict

    async def main():
        store = PersonaStore({folder!r})
        i = 0
        while True:
            i += 1
            persona = Persona.model_validate(persona_dict(f"Writer {{i}}", background="x" * 3000))
            record = PersonaRecord(provider="t", model="t", request=RequestInfo(description="d"),
                                   generation_seconds=0, tokens=0, persona=persona)
            await store.save(record)
            print(i, flush=True)

    asyncio.run(main())
    """
)


def test_sigkill_during_saves_never_leaves_a_half_persona(tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    script = WRITER.format(root=str(Path(__file__).parent.parent), folder=str(folder))
    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.readline()  # it is saving now
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        result = PersonaStore(folder).load_all_sync()
        assert result.problems == [], result.problems
        named = [
            p for p in folder.glob("*.json") if not p.name.startswith(".")
        ]  # pathlib's glob also matches dot-files
        for path in named:
            PersonaRecord.model_validate_json(path.read_bytes())
        assert len(named) == len(result.records)
    assert kills == 12
    assert len(result.records) >= 12


def test_two_instances_writing_to_one_folder(env: dict[str, str]) -> None:
    env = {**env, "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "0"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "persona_tui", "generate", desc, "-n", "6", "--json"],
            env={**env, "PERSONA_TUI_SEED": str(seed)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, desc in ((1, "teachers in Lyon"), (2, "farmers in Kenya"))
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    saved = [r["id"] for out, _ in outputs for r in json.loads(out)]
    folder = Path(env["PERSONA_TUI_DATA_DIR"]) / "personas"
    result = PersonaStore(folder).load_all_sync()
    assert result.problems == []
    assert sorted(r.id for r in result.records) == sorted(saved) and len(saved) == 12


# ----- the network, through the real client -----


@pytest.mark.asyncio
async def test_429_without_retry_after_backs_off(server: FakeOpenAIServer, tmp_path: Path) -> None:
    from persona_tui.engine.providers.openai_compatible import OpenAIProvider

    server.script(Scenario(status=429), Scenario(content=persona_json()))
    provider = OpenAIProvider(model="m", api_key=SECRET, base_url=server.base_url)
    store = PersonaStore(tmp_path / "personas")
    settings = fast(tmp_path, retry_base_delay=0.2, retry_max_delay=1)
    events = [
        e async for e in generate(GenerationRequest.create("x"), provider=provider, store=store, settings=settings)
    ]
    await provider.aclose()
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert 0.1 <= retry.delay <= 0.2, "exponential backoff with jitter: base 0.2 s, halved at most"
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


def test_a_name_that_does_not_resolve(env: dict[str, str]) -> None:
    env = {**env, "OPENAI_BASE_URL": "http://no-such-host.invalid/v1", "PERSONA_TUI_MAX_ATTEMPTS": "2"}
    result = cli(env, "generate", "nurses")
    assert result.returncode == 1
    assert "Could not connect to no-such-host.invalid." in result.stderr
    assert "OPENAI_BASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_a_server_that_never_answers_ends_with_exit_1(env: dict[str, str], server: FakeOpenAIServer) -> None:
    # The defaults (30 s to the first token, one retry of a silent server) scaled down 30 times.
    server.script(Scenario(content=persona_json(), first_token_delay=60))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "PERSONA_TUI_FIRST_TOKEN_TIMEOUT": "1"}
    started = time.monotonic()
    result = cli(env, "generate", "nurses", "--json")
    took = time.monotonic() - started
    assert result.returncode == 1 and json.loads(result.stdout) == []
    assert "sent nothing for 1 s while waiting for the first token" in result.stderr
    assert len(server.requests) == 2 and took < 10


def test_model_text_cannot_reach_the_terminal_raw(env: dict[str, str], server: FakeOpenAIServer) -> None:
    hostile = persona_json("Eve \x1b]0;pwned\x07\x1b[2J Mallory", occupation="\x1b[31mAdmin\x1b[0m")
    server.script(Scenario(content=hostile))
    result = cli({**env, "OPENAI_BASE_URL": server.base_url}, "generate", "admins")
    assert result.returncode == 0
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "Saved Eve Mallory (47, Admin)" in result.stderr, "the sequences are removed, the words kept"


def test_the_key_never_appears_anywhere(env: dict[str, str], server: FakeOpenAIServer) -> None:
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}})
    server.script(Scenario(status=401, error_body=echo))
    env = {**env, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": SECRET}
    outputs = [
        cli(env, "generate", "nurses", "--json"),
        cli(env, "list", "--json"),
        cli(env, "export", "--format", "csv"),
    ]
    server.script(Scenario(status=400, error_body=echo))
    outputs.append(cli(env, "generate", "nurses"))
    text = "".join(o.stdout + o.stderr for o in outputs)
    # A 400 that speaks of the key is about the key: said so, and the server's words quoted with the key taken out.
    assert "The API key was rejected by" in text and "Incorrect API key provided:" in text and "[key]" in text
    for path in Path(env["PERSONA_TUI_DATA_DIR"]).rglob("*"):
        if path.is_file():
            text += path.read_text(errors="replace")
    assert SECRET not in text
    assert SECRET[-8:] not in text


@pytest.mark.asyncio
async def test_the_key_never_reaches_the_app(app_factory, server: FakeOpenAIServer) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Input

    from persona_tui.engine.providers.openai_compatible import OpenAIProvider
    from persona_tui.tui.widgets.generation_panel import GenerationPanel
    from persona_tui.tui.widgets.live_log import LiveLog

    echo = json.dumps({"error": {"message": f"Bad key {SECRET}", "code": "x"}})
    server.script(Scenario(status=400, error_body=echo))
    app = app_factory(OpenAIProvider(model="m", api_key=SECRET, base_url=server.base_url))
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        for _ in range(300):
            if not panel.running:
                break
            await asyncio.sleep(0.01)
        seen = "\n".join(app.query_one(LiveLog).lines) + "".join(n.message for n in app._notifications)
        seen += str(panel.render()) + app.sub_title
    assert "refused the request (400)" in seen
    assert SECRET not in seen


# ----- every network fault, through both front ends -----

FAULTS = {
    "401": (Scenario(status=401), "The API key was rejected by"),
    "403": (Scenario(status=403), "has no access to"),
    "404": (Scenario(status=404), "was not found at"),
    "quota": (
        Scenario(status=429, error_body=json.dumps({"error": {"message": "quota", "code": "insufficient_quota"}})),
        "has no quota left",
    ),
    "500": (Scenario(status=500), "had a server error (500)"),
    "html-502": (Scenario(status=502, content_type="text/html"), "had a server error (502)"),
    "cut": (Scenario(content=persona_json(), cut_after=5), "Could not connect to"),
    "length": (Scenario(content=persona_json()[:60], finish_reason="length"), "length limit"),
    "refusal": (Scenario(refusal="I can't help with that."), "The model refused to write this persona"),
    "malformed": (Scenario(content='{"name": 1,,}'), "not valid JSON"),
    "wrong-shape": (Scenario(content=persona_json(age="old")), "invalid field 'age'"),
    "too-large": (Scenario(content='{"name": "' + "x" * 45_000), "passed 40,000 characters"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_in_generate(env: dict[str, str], server: FakeOpenAIServer, fault: str) -> None:
    scenario, message = FAULTS[fault]
    server.script(scenario)
    env = {**env, "OPENAI_BASE_URL": server.base_url, "PERSONA_TUI_MAX_ATTEMPTS": "2", "COLUMNS": "200"}
    result = cli(env, "generate", "nurses", "--json")
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout) == []
    folder = Path(env["PERSONA_TUI_DATA_DIR"]) / "personas"
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_each_fault_in_the_app(app_factory, server: FakeOpenAIServer, fault: str) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Input

    from persona_tui.engine.providers.openai_compatible import OpenAIProvider
    from persona_tui.tui.widgets.generation_panel import GenerationPanel

    scenario, message = FAULTS[fault]
    server.script(scenario)
    app = app_factory(OpenAIProvider(model="m", api_key="k", base_url=server.base_url), max_attempts=2)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        panel = app.query_one(GenerationPanel)
        for _ in range(500):
            if not panel.running:
                break
            await asyncio.sleep(0.01)
        notes = [n for n in app._notifications if n.title == "Generation failed"]
        assert notes and message in notes[0].message
        assert message in str(panel.outcome)
        assert app.query_one("#description", Input).value == "nurses", "the request is kept for a retry"
        assert app.check_action("generate", ())
    assert list(app.store.root.iterdir()) == []
