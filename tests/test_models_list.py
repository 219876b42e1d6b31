"""Listing a server's models: the real openai client against the loopback server, and `persona-tui models`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.providers import NoModelList, make_provider, server_models
from persona_tui.engine.providers.base import ModelEntry
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.engine.providers.openai_compatible import PROVIDER, OpenAIProvider
from tests.fake_openai import MODELS_CREATED, FakeOpenAIServer
from tests.helpers import ScriptedProvider

SECRET = "sk-test-very-secret-key-1234567890"


def provider_for(base_url: str, model: str = "qwen3:8b", api_key: str | None = None) -> OpenAIProvider:
    return OpenAIProvider(model=model, api_key=api_key, base_url=base_url, connect_timeout=2.0, read_timeout=5.0)


async def listed(provider: OpenAIProvider) -> list[ModelEntry]:
    try:
        return await provider.list_models()
    finally:
        await provider.aclose()


async def failure(provider: OpenAIProvider) -> GenerationError:
    with pytest.raises(GenerationError) as caught:
        await listed(provider)
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----- the loopback server -----


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_loopback_server_lists_models_like_openai(server: FakeOpenAIServer) -> None:
    status, body = fetch(server.base_url + "/models")
    assert status == 200 and body["object"] == "list"
    data = body["data"]
    assert isinstance(data, list)
    assert [m["id"] for m in data] == ["gpt-4o-mini", "llama3.2:3b", "qwen3:8b"]
    assert all(m["object"] == "model" and m["created"] == MODELS_CREATED and m["owned_by"] for m in data)
    server.models = ["a"]
    assert fetch(server.base_url + "/models")[1]["data"] == [
        {"id": "a", "object": "model", "created": MODELS_CREATED, "owned_by": "library"}
    ]
    server.models = []
    assert fetch(server.base_url + "/models")[1]["data"] == []
    server.fail_models(503, '{"error": {"message": "busy"}}')
    assert fetch(server.base_url + "/models") == (503, {"error": {"message": "busy"}})
    assert [r["path"] for r in server.requests] == ["/v1/models"] * 4


def test_the_model_list_takes_no_chat_scenario_and_other_paths_still_404(server: FakeOpenAIServer) -> None:
    assert fetch(server.base_url + "/nothing")[0] == 404
    assert fetch(server.base_url + "/models", "POST")[0] == 404
    assert server._next == 0  # no chat scenario was used up


# ----- the provider -----


@pytest.mark.asyncio
async def test_openai_provider_lists_the_servers_models(server: FakeOpenAIServer) -> None:
    server.models = ["qwen3:8b", {"id": "lm-studio-model", "object": "model", "owned_by": "organization_owner"}]
    entries = await listed(provider_for(server.base_url))
    assert entries == [
        ModelEntry("qwen3:8b", "library", datetime.fromtimestamp(MODELS_CREATED, UTC)),
        ModelEntry("lm-studio-model", "organization_owner", None),
    ]
    assert server.requests[-1]["method"] == "GET" and server.requests[-1]["path"] == "/v1/models"


@pytest.mark.asyncio
async def test_odd_entries_are_skipped_or_read_leniently(server: FakeOpenAIServer) -> None:
    server.models = [{"id": ""}, {"id": 7}, {"no": "id"}, {"id": "ok", "created": "yesterday", "owned_by": 3}]
    assert await listed(provider_for(server.base_url)) == [ModelEntry("ok")]


@pytest.mark.asyncio
async def test_the_key_is_sent_and_never_quoted_back(server: FakeOpenAIServer) -> None:
    server.fail_models(401, json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}"}}))
    error = await failure(provider_for(server.base_url, api_key=SECRET))
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert error.kind is FailureKind.AUTH and SECRET not in error.message + error.hint
    assert "OPENAI_API_KEY" in error.hint


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (500, FailureKind.SERVER_ERROR, "had a server error (500)"),
        (403, FailureKind.FORBIDDEN, "refused to list its models (403)"),
        (404, FailureKind.NOT_FOUND, "has no list of models at /v1/models (404)"),
    ],
)
async def test_a_refused_list_is_one_sentence_and_a_hint(
    server: FakeOpenAIServer, status: int, kind: FailureKind, words: str
) -> None:
    server.fail_models(status)
    error = await failure(provider_for(server.base_url))
    assert error.kind is kind and words in error.message
    assert "\n" not in error.message and error.hint  # one line; a server's own words are quoted whole


@pytest.mark.asyncio
async def test_a_base_url_without_v1_is_named_in_the_hint(server: FakeOpenAIServer) -> None:
    error = await failure(provider_for(server.base_url.removesuffix("/v1")))
    assert error.kind is FailureKind.NOT_FOUND and "at /models (404)" in error.message
    assert "ends in /v1" in error.hint


@pytest.mark.asyncio
async def test_a_page_instead_of_a_list_is_explained(server: FakeOpenAIServer) -> None:
    server.fail_models(200, "<html><body>router login</body></html>", content_type="text/html")
    error = await failure(provider_for(server.base_url))
    assert "answered, but not with a list of models" in error.message and "/v1" in error.hint


@pytest.mark.asyncio
async def test_connection_refused_names_the_host_and_the_base_url_variable() -> None:
    port = closed_port()
    error = await failure(provider_for(f"http://127.0.0.1:{port}/v1"))
    assert error.kind is FailureKind.CONNECTION
    assert error.message == f"Could not connect to 127.0.0.1:{port}."
    assert "OPENAI_BASE_URL" in error.hint


def test_capabilities_declare_who_can_list() -> None:
    assert PROVIDER.capabilities.list_models is True
    assert not hasattr(OfflineProvider(), "list_models")


@pytest.mark.asyncio
async def test_server_models_sorts_dedupes_and_refuses_the_offline_generator(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.models = ["b", "A", "b", "c"]
    settings = Settings(data_dir=tmp_path, provider="openai", base_url=server.base_url, model="b")
    provider = make_provider(settings)
    try:
        assert [e.id for e in await server_models(provider, settings)] == ["A", "b", "c"]
    finally:
        await provider.aclose()
    offline = Settings(data_dir=tmp_path, provider="offline")
    with pytest.raises(NoModelList) as caught:
        await server_models(make_provider(offline), offline)
    assert caught.value.message == "The offline sample generator has no models to choose from."
    assert "OPENAI_BASE_URL" in caught.value.hint
    with pytest.raises(NoModelList, match=r"cannot list the models of script\.local"):
        await server_models(ScriptedProvider([]), offline)


# ----- `persona-tui models` -----


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    clean.update(PERSONA_TUI_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"), COLUMNS="100")
    return clean


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=60
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_lists_the_models_in_a_table_and_marks_the_current_one(
    server: FakeOpenAIServer, env: dict[str, str]
) -> None:
    env["OPENAI_BASE_URL"] = server.base_url
    result = cli(env, "models", "--model", "qwen3:8b")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "2024-05-06" in line]
    assert len(rows) == 3
    assert [row for row in rows if "*" in row] == [r for r in rows if "qwen3:8b" in r]
    assert "library" in rows[0] and "3 model(s) at 127.0.0.1:" in result.stdout
    assert "* the current model (qwen3:8b)" in result.stdout and "ctrl+l" in result.stdout
    no_traceback(result)


def test_cli_json_is_an_array_with_the_current_model(server: FakeOpenAIServer, env: dict[str, str]) -> None:
    env.update(OPENAI_BASE_URL=server.base_url, PERSONA_TUI_MODEL="llama3.2:3b")
    result = cli(env, "models", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [m["id"] for m in listed] == ["gpt-4o-mini", "llama3.2:3b", "qwen3:8b"]
    assert [m["current"] for m in listed] == [False, True, False]
    assert listed[0] == {
        "id": "gpt-4o-mini",
        "owned_by": "library",
        "created": "2024-05-06T12:53:20Z",
        "current": False,
    }


def test_cli_says_when_the_current_model_is_not_served(server: FakeOpenAIServer, env: dict[str, str]) -> None:
    env["OPENAI_BASE_URL"] = server.base_url
    result = cli(env, "models", "--model", "mistral")
    assert result.returncode == 0
    assert "The current model, mistral, is not among them." in result.stdout and "*" not in result.stdout


def test_cli_draws_model_ids_literally(server: FakeOpenAIServer, env: dict[str, str]) -> None:
    server.models = ["[bold]x[/bold]\x1b[2Jy"]
    env["OPENAI_BASE_URL"] = server.base_url
    result = cli(env, "models")
    assert result.returncode == 0
    assert "[bold]x[/bold]y" in result.stdout and "\x1b" not in result.stdout


def test_cli_offline_exits_2_with_a_sentence_and_a_hint(env: dict[str, str]) -> None:
    result = cli(env, "models")
    assert result.returncode == 2
    assert "The offline sample generator has no models to choose from." in result.stderr
    assert "Hint: Set OPENAI_API_KEY" in result.stderr and result.stdout == ""
    no_traceback(result)


def test_cli_unreachable_server_exits_1(env: dict[str, str]) -> None:
    port = closed_port()
    result = cli(env, "models", "--base-url", f"http://127.0.0.1:{port}/v1", "--json")
    assert result.returncode == 1
    assert f"Could not connect to 127.0.0.1:{port}." in result.stderr and "OPENAI_BASE_URL" in result.stderr
    assert result.stdout == ""
    no_traceback(result)


def test_cli_refused_list_exits_1(server: FakeOpenAIServer, env: dict[str, str]) -> None:
    server.fail_models(500)
    env["OPENAI_BASE_URL"] = server.base_url
    result = cli(env, "models")
    assert result.returncode == 1 and "had a server error (500)" in result.stderr and "Hint:" in result.stderr
    no_traceback(result)
