"""The real openai client, through the whole pipeline, against a loopback server."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.pipeline import generate
from persona_tui.engine.providers.openai_compatible import OpenAIProvider, retry_after_seconds
from persona_tui.models import GenerationRequest
from persona_tui.storage import PersonaStore
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_json

SECRET = "sk-test-very-secret-key-1234567890"


def make_provider(base_url: str, *, api_key: str | None = SECRET, model: str = "gpt-4o-mini") -> OpenAIProvider:
    return OpenAIProvider(model=model, api_key=api_key, base_url=base_url, connect_timeout=2.0, read_timeout=10.0)


async def run(
    provider: OpenAIProvider,
    tmp_path: Path,
    *,
    cancel: asyncio.Event | None = None,
    cancel_when: type | None = None,
    **overrides: object,
) -> list[ev.Event]:
    values: dict[str, object] = {
        "population_plan": False,  # scripted answers are fixed: test_plan_pipeline holds answers to slots
        "regenerate_duplicates": False,  # and their stories alike: only the names differ
        "data_dir": tmp_path,
        "heartbeat_seconds": 0.1,
        "slow_seconds": 0.25,
        "first_token_timeout": 3.0,
        "idle_timeout": 3.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
    }
    values.update(overrides)
    events: list[ev.Event] = []
    try:
        async for event in generate(
            GenerationRequest.create("field nurses in rural Kenya aged 40 to 60"),
            provider=provider,
            store=PersonaStore(tmp_path / "personas"),
            settings=Settings(**values),  # type: ignore[arg-type]
            cancel=cancel,
            rng=random.Random(0),
        ):
            events.append(event)
            if cancel is not None and cancel_when is not None and isinstance(event, cancel_when):
                cancel.set()
    finally:
        await provider.aclose()
    return events


def saved_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "personas"
    return sorted(folder.iterdir()) if folder.exists() else []


def only_failure(events: list[ev.Event]) -> ev.Failed:
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1, failed
    return failed[0]


def all_text(events: list[ev.Event]) -> str:
    return "\n".join(repr(e) for e in events)


@pytest.mark.asyncio
async def test_normal_stream_saves_a_validated_persona(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json(), chunk_chars=3))
    events = await run(make_provider(server.base_url), tmp_path)
    saved = [e for e in events if isinstance(e, ev.PersonaSaved)]
    assert len(saved) == 1
    assert saved[0].record.persona.name == "Amina Otieno"
    assert saved[0].record.provider == "openai" and saved[0].record.model == "gpt-4o-mini"
    deltas = [e for e in events if isinstance(e, ev.TokenDelta)]
    assert "".join(d.text for d in deltas) == persona_json()
    assert len(saved_files(tmp_path)) == 1

    body = server.requests[0]["body"]
    assert body["model"] == "gpt-4o-mini" and body["stream"] is True
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert "field nurses in rural Kenya" in body["messages"][-1]["content"]
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"


@pytest.mark.asyncio
async def test_base_url_alone_needs_no_key(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json()))
    events = await run(make_provider(server.base_url, api_key=None), tmp_path)
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


@pytest.mark.asyncio
async def test_slow_first_token_gives_heartbeats_and_a_slow_warning(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json(), first_token_delay=0.6))
    events = await run(make_provider(server.base_url), tmp_path)
    assert sum(isinstance(e, ev.Heartbeat) for e in events) >= 4
    assert sum(isinstance(e, ev.SlowWarning) for e in events) == 1
    first = next(e for e in events if isinstance(e, ev.FirstToken))
    assert first.seconds >= 0.55
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


@pytest.mark.asyncio
async def test_429_with_retry_after_then_success(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(status=429, headers={"Retry-After": "0.3"}), Scenario(content=persona_json()))
    started = time.monotonic()
    events = await run(make_provider(server.base_url), tmp_path)
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert retry.delay == pytest.approx(0.3, abs=0.01)
    assert retry.attempt == 2 and "Rate limited" in retry.reason
    assert time.monotonic() - started >= 0.3
    assert len(server.requests) == 2
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


@pytest.mark.asyncio
async def test_401_is_explained_without_the_key(server: FakeOpenAIServer, tmp_path: Path) -> None:
    body = json.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {SECRET}.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
    )
    server.script(Scenario(status=401, error_body=body))
    events = await run(make_provider(server.base_url), tmp_path)
    failed = only_failure(events)
    assert failed.kind == "auth"
    assert failed.message == f"The API key was rejected by {server.base_url.split('//')[1].split('/')[0]}."
    assert "OPENAI_API_KEY" in failed.hint and "--provider offline" in failed.hint
    assert len(server.requests) == 1, "a rejected key is not retried"
    assert SECRET not in all_text(events)
    assert saved_files(tmp_path) == []


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "kind"), [(403, "forbidden"), (404, "not_found"), (400, "bad_request")])
async def test_other_client_errors(server: FakeOpenAIServer, tmp_path: Path, status: int, kind: str) -> None:
    server.script(Scenario(status=status))
    failed = only_failure(await run(make_provider(server.base_url), tmp_path))
    assert failed.kind == kind and failed.hint
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_500_is_retried_then_succeeds(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(status=500), Scenario(status=503), Scenario(content=persona_json()))
    events = await run(make_provider(server.base_url), tmp_path)
    assert [e.attempt for e in events if isinstance(e, ev.Retrying)] == [2, 3]
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


@pytest.mark.asyncio
async def test_html_error_page_gives_one_sentence(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(status=502, content_type="text/html"))
    failed = only_failure(await run(make_provider(server.base_url), tmp_path, max_attempts=2))
    assert failed.kind == "server_error"
    assert "(502)" in failed.message and "<" not in failed.message
    assert len(server.requests) == 2


@pytest.mark.asyncio
async def test_stall_mid_stream_closes_connection_and_retries(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json(), stall_after=5, stall_seconds=10), Scenario(content=persona_json()))
    events = await run(make_provider(server.base_url), tmp_path, idle_timeout=0.3)
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert "next token" in retry.reason
    assert server.wait_disconnect(2.0)
    assert any(isinstance(e, ev.PersonaSaved) for e in events)
    assert len(saved_files(tmp_path)) == 1


@pytest.mark.asyncio
async def test_stream_cut_short_is_retried_and_reported(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json(), cut_after=10))
    events = await run(make_provider(server.base_url), tmp_path, max_attempts=2)
    failed = only_failure(events)
    assert failed.kind in {"incomplete", "connection"}
    assert len(server.requests) == 2
    assert saved_files(tmp_path) == []


@pytest.mark.asyncio
async def test_malformed_json_names_the_problem(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content='{"name": "Amina", "age": 47,, }'))
    failed = only_failure(await run(make_provider(server.base_url), tmp_path))
    assert failed.kind == "invalid_output"
    assert "not valid JSON" in failed.message
    assert saved_files(tmp_path) == []


@pytest.mark.asyncio
async def test_prose_and_fences_around_json_are_read_past(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=f"Here you go:\n```json\n{persona_json()}\n```\nEnjoy!"))
    events = await run(make_provider(server.base_url), tmp_path)
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


@pytest.mark.asyncio
async def test_refusal_is_reported_as_a_refusal(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(refusal="I can't help with that request."))
    failed = only_failure(await run(make_provider(server.base_url), tmp_path))
    assert failed.kind == "refusal"
    assert "I can't help with that request." in failed.message
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_length_finish_reason(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json()[:80], finish_reason="length"))
    failed = only_failure(await run(make_provider(server.base_url), tmp_path))
    assert failed.kind == "length"


@pytest.mark.asyncio
async def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    failed = only_failure(await run(make_provider(f"http://127.0.0.1:{port}/v1"), tmp_path, max_attempts=2))
    assert failed.kind == "connection"
    assert f"127.0.0.1:{port}" in failed.message
    assert "OPENAI_BASE_URL" in failed.hint


@pytest.mark.asyncio
@pytest.mark.parametrize("when", [ev.Heartbeat, ev.TokenDelta])
async def test_cancel_closes_the_http_stream(server: FakeOpenAIServer, tmp_path: Path, when: type) -> None:
    server.script(Scenario(content=persona_json(), first_token_delay=0.3, token_delay=0.05))
    cancel = asyncio.Event()
    events = await run(make_provider(server.base_url), tmp_path, cancel=cancel, cancel_when=when)
    assert isinstance(events[-2], ev.Cancelled)
    assert len(server.requests) == 1
    assert server.wait_disconnect(1.0), "the server must see the connection closed"
    assert saved_files(tmp_path) == []


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-4") == 0.0
    when = retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    assert when == pytest.approx(10.0)


def test_label_and_endpoint() -> None:
    assert make_provider("http://user:pw@localhost:11434/v1", model="llama3").label == "llama3 at localhost:11434"
    provider = OpenAIProvider(model="gpt-4o-mini", api_key=SECRET, base_url=None)
    assert provider.endpoint == "api.openai.com"
    assert SECRET not in repr(provider.__dict__.get("label", "")) and provider.is_ai


@pytest.mark.asyncio
async def test_exhausted_quota_is_not_retried(server: FakeOpenAIServer, tmp_path: Path) -> None:
    body = json.dumps(
        {
            "error": {
                "message": "You exceeded your current quota.",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        }
    )
    server.script(Scenario(status=429, error_body=body))
    failed = only_failure(await run(make_provider(server.base_url), tmp_path))
    assert failed.kind == "quota" and "no quota left" in failed.message
    assert len(server.requests) == 1
