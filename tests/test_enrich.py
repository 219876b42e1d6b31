"""Organizations and web enrichment: stages that inform the prompt and can never fail a generation."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.enrich import EnrichmentSkipped, build_query, search_sources
from persona_tui.engine.pipeline import generate
from persona_tui.models import GenerationRequest, Organization, PersonaRecord
from persona_tui.storage import OrganizationStore, PersonaStore, StoreError
from tests.fake_exa import FakeExaServer, SearchScript
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import ScriptedProvider, ok_step, persona_json

EXA_SECRET = "exa-secret-key-abcdef123456"
OPENAI_SECRET = "sk-openai-secret-key-999888777"


@pytest.fixture
def exa() -> Iterator[FakeExaServer]:
    with FakeExaServer() as server:
        yield server


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# ----- the search itself, through the real exa-py client -----


@pytest.mark.asyncio
async def test_search_returns_titles_urls_and_excerpts(exa: FakeExaServer) -> None:
    sources = await search_sources("clinic managers", api_key=EXA_SECRET, base_url=exa.base_url, timeout=3, results=3)
    assert [s.url for s in sources] == [f"https://example.org/clinics/{i}" for i in (1, 2, 3)]
    assert sources[0].title == "Rural clinic staffing report 1" and "staffing gaps" in sources[0].excerpt
    request = exa.requests[0]
    assert request["path"] == "/search" and request["headers"]["x-api-key"] == EXA_SECRET
    assert request["body"]["query"] == "clinic managers" and request["body"]["numResults"] == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (SearchScript(status=401), "Exa answered 401: the key was rejected"),
        (SearchScript(status=429), "Exa answered 429: rate limited"),
        (SearchScript(status=503), "Exa had a server error (503)"),
        (SearchScript(results=[]), "the search found nothing"),
        (SearchScript(results=[{"id": "x", "url": "javascript:alert(1)", "title": "bad"}]), "the search found nothing"),
    ],
)
async def test_search_failures_become_short_reasons(exa: FakeExaServer, script: SearchScript, reason: str) -> None:
    exa.script = script
    with pytest.raises(EnrichmentSkipped) as info:
        await search_sources("q", api_key=EXA_SECRET, base_url=exa.base_url, timeout=3, results=3)
    assert info.value.reason == reason
    assert EXA_SECRET not in info.value.reason


@pytest.mark.asyncio
async def test_search_without_key_or_server(exa: FakeExaServer) -> None:
    with pytest.raises(EnrichmentSkipped, match="EXA_API_KEY is not set"):
        await search_sources("q", api_key=None, base_url=exa.base_url, timeout=3, results=3)
    assert exa.requests == [], "no key, no request"
    with pytest.raises(EnrichmentSkipped, match="the search failed"):
        await search_sources("q", api_key=EXA_SECRET, base_url=closed_port_url(), timeout=3, results=3)


@pytest.mark.asyncio
async def test_search_timeout_is_its_own_limit(exa: FakeExaServer) -> None:
    exa.script = SearchScript(delay=3)
    started = time.monotonic()
    with pytest.raises(EnrichmentSkipped, match=r"did not answer within 0\.5 s"):
        await search_sources("q", api_key=EXA_SECRET, base_url=exa.base_url, timeout=0.5, results=3)
    assert time.monotonic() - started < 1.5


def test_query_uses_description_and_organization() -> None:
    org = Organization(name="Acme Health", industry="healthcare", product="telehealth app", region="Kenya")
    query = build_query(GenerationRequest.create("clinic managers"), org)
    assert query == "clinic managers healthcare telehealth app Kenya"


# ----- organizations -----


@pytest.mark.asyncio
async def test_organization_store_round_trip(tmp_path: Path) -> None:
    store = OrganizationStore(tmp_path)
    acme = Organization(name="Acme Health", product="telehealth app")
    path = await store.save(acme)
    assert path.parent == tmp_path and not list(tmp_path.glob(".tmp-*"))
    assert (await store.get("acme HEALTH")) == acme
    with pytest.raises(StoreError, match="already exists"):
        await store.save(Organization(name="ACME health"))
    renamed = acme.model_copy(update={"name": "Acme Care"})
    await store.save(renamed, replacing=acme)
    orgs, problems = await store.load_all()
    assert [o.name for o in orgs] == ["Acme Care"] and problems == []
    (tmp_path / "junk.json").write_text("[1]")
    orgs, problems = await store.load_all()
    assert len(orgs) == 1 and problems[0].reason == "is not a persona-tui organization"
    await store.delete("acme care")
    with pytest.raises(StoreError, match="No organization is named"):
        await store.get("Acme Care")


# ----- the pipeline's stages -----


async def run_pipeline(
    tmp_path: Path, request: GenerationRequest, exa_url: str, *, cancel: asyncio.Event | None = None, **kw: object
) -> tuple[list[ev.Event], ScriptedProvider]:
    provider = ScriptedProvider([ok_step()])
    values: dict[str, object] = {"enrich_timeout": 1.0, **kw}
    settings = Settings(data_dir=tmp_path, exa_base_url=exa_url, exa_api_key=EXA_SECRET, **values)  # type: ignore[arg-type]
    events: list[ev.Event] = []
    async for event in generate(
        request,
        provider=provider,
        store=PersonaStore(settings.personas_dir),
        settings=settings,
        organizations=OrganizationStore(settings.organizations_dir),
        cancel=cancel,
    ):
        events.append(event)
        if cancel is not None and isinstance(event, ev.StageStarted) and event.stage is ev.Stage.ENRICHING:
            cancel.set()
    return events, provider


@pytest.mark.asyncio
async def test_org_and_enrichment_reach_the_prompt_and_the_record(tmp_path: Path, exa: FakeExaServer) -> None:
    await OrganizationStore(tmp_path / "organizations").save(Organization(name="Acme Health", product="telehealth app"))
    request = GenerationRequest.create("clinic managers", organization="acme health", enrich=True)
    events, provider = await run_pipeline(tmp_path, request, exa.base_url)
    finished = {e.stage: e for e in events if isinstance(e, ev.StageFinished)}
    assert finished[ev.Stage.ORGANIZATION].note == "Acme Health"
    assert finished[ev.Stage.ENRICHING].note == "3 source(s)"
    prompt = provider.calls[0].messages[-1]["content"]
    assert "Organization: Acme Health" in prompt and "Product: telehealth app" in prompt
    assert "https://example.org/clinics/2" in prompt and "staffing gaps" in prompt
    saved = next(e for e in events if isinstance(e, ev.PersonaSaved))
    on_disk = PersonaRecord.model_validate_json(saved.path.read_bytes())
    assert on_disk.request.organization == "Acme Health" and on_disk.request.organization_id
    assert [s.url for s in on_disk.sources] == [f"https://example.org/clinics/{i}" for i in (1, 2, 3)]


@pytest.mark.asyncio
async def test_enrichment_down_is_skipped_and_the_persona_still_saved(tmp_path: Path) -> None:
    request = GenerationRequest.create("clinic managers", enrich=True)
    events, _ = await run_pipeline(tmp_path, request, closed_port_url())
    skipped = [e for e in events if isinstance(e, ev.StageSkipped) and e.stage is ev.Stage.ENRICHING]
    assert skipped and skipped[0].reason.startswith("the search failed")
    assert any(isinstance(e, ev.PersonaSaved) for e in events)
    assert events[-1].summary.ok  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_unknown_organization_is_skipped_not_fatal(tmp_path: Path, exa: FakeExaServer) -> None:
    request = GenerationRequest.create("clinic managers", organization="Nobody Inc")
    events, _ = await run_pipeline(tmp_path, request, exa.base_url)
    skipped = next(e for e in events if isinstance(e, ev.StageSkipped) and e.stage is ev.Stage.ORGANIZATION)
    assert "No organization is named 'Nobody Inc'" in skipped.reason
    assert any(isinstance(e, ev.PersonaSaved) for e in events)


@pytest.mark.asyncio
async def test_cancel_during_enrichment(tmp_path: Path, exa: FakeExaServer) -> None:
    exa.script = SearchScript(delay=5)
    started = time.monotonic()
    events, provider = await run_pipeline(
        tmp_path, GenerationRequest.create("x", enrich=True), exa.base_url, cancel=asyncio.Event(), enrich_timeout=8.0
    )
    assert time.monotonic() - started < 1.5
    assert isinstance(events[-2], ev.Cancelled) and events[-1].summary.cancelled  # type: ignore[union-attr]
    assert provider.calls == []
    assert not (tmp_path / "personas").exists() or not list((tmp_path / "personas").iterdir())


# ----- the CLI, end to end -----


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_", "EXA_"))}
    clean.update(PERSONA_TUI_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"), COLUMNS="120")
    return clean


def test_org_commands(env: dict[str, str]) -> None:
    assert cli(env, "org", "add", "Acme Health", "--product", "telehealth app", "--region", "Kenya").returncode == 0
    again = cli(env, "org", "add", "acme health")
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = json.loads(cli(env, "org", "list", "--json").stdout)
    assert [o["name"] for o in listed] == ["Acme Health"]
    shown = cli(env, "org", "show", "ACME HEALTH")
    assert "Product: telehealth app" in shown.stdout and "Region: Kenya" in shown.stdout
    assert cli(env, "org", "edit", "Acme Health", "--audience", "clinic staff", "--rename", "Acme Care").returncode == 0
    assert "Audience: clinic staff" in cli(env, "org", "show", "Acme Care").stdout
    blank = cli(env, "org", "add", "   ")
    assert blank.returncode == 2 and "name" in blank.stderr
    assert cli(env, "org", "delete", "acme care").returncode == 0
    missing = cli(env, "org", "show", "Acme Care")
    assert missing.returncode == 1 and "No organization is named" in missing.stderr


def test_generate_with_org_and_enrich_end_to_end(env: dict[str, str], exa: FakeExaServer) -> None:
    with FakeOpenAIServer() as model:
        model.script(Scenario(content=persona_json()))
        env = {
            **env,
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": OPENAI_SECRET,
            "EXA_API_KEY": EXA_SECRET,
            "PERSONA_TUI_EXA_BASE_URL": exa.base_url,
        }
        assert cli(env, "org", "add", "Acme Health", "--product", "telehealth app").returncode == 0
        result = cli(env, "generate", "clinic managers", "--org", "Acme Health", "--enrich", "--json")
    assert result.returncode == 0, result.stderr
    assert "Loading organization context" in result.stderr and "Acme Health" in result.stderr
    assert "Fetching real-world context" in result.stderr and "3 source(s)" in result.stderr
    [record] = json.loads(result.stdout)
    assert record["request"]["organization"] == "Acme Health"
    assert len(record["sources"]) == 3
    assert "telehealth app" in model.requests[0]["body"]["messages"][-1]["content"]
    listed = json.loads(cli(env, "list", "--json", "--org", "acme health").stdout)
    assert [r["id"] for r in listed] == [record["id"]]
    # Keys never reach a file or an output.
    everything = result.stdout + result.stderr
    for path in Path(env["PERSONA_TUI_DATA_DIR"]).rglob("*"):
        if path.is_file():
            everything += path.read_text(errors="replace")
    assert EXA_SECRET not in everything and OPENAI_SECRET not in everything


def test_generate_with_search_down_still_saves(env: dict[str, str]) -> None:
    env = {
        **env,
        "EXA_API_KEY": EXA_SECRET,
        "PERSONA_TUI_EXA_BASE_URL": closed_port_url(),
        "PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND": "0",
    }
    result = cli(env, "generate", "clinic managers", "--enrich", "--json")
    assert result.returncode == 0, result.stderr
    assert "Fetching real-world context" in result.stderr and "skipped: the search failed" in result.stderr
    assert len(json.loads(result.stdout)) == 1
    assert EXA_SECRET not in result.stderr


def test_generate_with_unknown_org_is_a_usage_error(env: dict[str, str]) -> None:
    result = cli(env, "generate", "clinic managers", "--org", "Nobody")
    assert result.returncode == 2 and "No organization is named 'Nobody'" in result.stderr
