"""Typed stream parts: reasoning, usage and notices, through the pipeline and through the real openai client."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.engine.providers.openai_compatible import OpenAIProvider
from persona_tui.engine.providers.parts import HiddenReasoning, NoticePart, ReasoningPart, UsagePart
from persona_tui.models import GenerationRequest, PersonaRecord, Usage
from persona_tui.storage import PersonaStore
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import ScriptedProvider, Step, persona_json, tokens_of

pytestmark = pytest.mark.asyncio

THOUGHTS = ["The user wants", " a field nurse.", " Kenya, rural,", " mid-career."]


async def run(provider: object, tmp_path: Path, **settings: object) -> list[ev.Event]:
    values: dict[str, object] = {
        "population_plan": False,  # scripted answers are fixed: test_plan_pipeline holds answers to slots
        "regenerate_duplicates": False,  # and their stories alike: only the names differ
        "data_dir": tmp_path,
        "heartbeat_seconds": 0.05,
        "slow_seconds": 30.0,
        "first_token_timeout": 5.0,
        "idle_timeout": 5.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.02,
    }
    values.update(settings)
    return [
        event
        async for event in generate(
            GenerationRequest.create("field nurses in rural Kenya"),
            provider=provider,  # type: ignore[arg-type]
            store=PersonaStore(tmp_path / "personas"),
            settings=Settings(**values),  # type: ignore[arg-type]
            estimates=EstimateBook(None),
            rng=random.Random(0),
        )
    ]


def stages(events: list[ev.Event]) -> list[str]:
    return [
        f"{'+' if isinstance(e, ev.StageStarted) else '-'}{e.stage.value}"
        for e in events
        if isinstance(e, ev.StageStarted | ev.StageFinished)
        and e.stage in (ev.Stage.CALLING, ev.Stage.THINKING, ev.Stage.STREAMING)
    ]


def saved(events: list[ev.Event]) -> ev.PersonaSaved:
    found = [e for e in events if isinstance(e, ev.PersonaSaved)]
    assert len(found) == 1, [e for e in events if isinstance(e, ev.Failed)]
    return found[0]


async def test_reasoning_opens_a_thinking_stage_before_the_answer(tmp_path: Path) -> None:
    pieces = [ReasoningPart(t) for t in THOUGHTS] + tokens_of(persona_json())
    events = await run(ScriptedProvider([Step(pieces=pieces, delay=0.002)]), tmp_path)
    assert stages(events) == ["+calling", "-calling", "+thinking", "-thinking", "+streaming", "-streaming"]
    thoughts = [e for e in events if isinstance(e, ev.ReasoningDelta)]
    assert "".join(e.text for e in thoughts) == "".join(THOUGHTS)
    assert thoughts[-1].tokens == len(THOUGHTS)
    answer = "".join(e.text for e in events if isinstance(e, ev.TokenDelta))
    assert answer == persona_json()  # reasoning never leaks into the answer
    assert saved(events).record.persona.name == "Amina Otieno"


async def test_a_model_that_does_not_think_has_no_thinking_stage(tmp_path: Path) -> None:
    events = await run(ScriptedProvider([Step(pieces=tokens_of(persona_json()))]), tmp_path)
    assert stages(events) == ["+calling", "-calling", "+streaming", "-streaming"]
    assert not [e for e in events if isinstance(e, ev.ReasoningDelta)]


@pytest.mark.parametrize("thinks_aloud", [True, False])
async def test_reasoning_is_a_sign_of_life_for_the_watchdog(tmp_path: Path, thinks_aloud: bool) -> None:
    """0.6 s before the answer against a 0.25 s first-token limit: reasoning keeps it alive, silence does not."""
    thinking = [ReasoningPart(f"step {i}. ") for i in range(6)] if thinks_aloud else []
    step = Step(pieces=[*thinking, persona_json()], first_delay=0.1, delay=0.1)
    if not thinks_aloud:
        step = Step(pieces=tokens_of(persona_json()), first_delay=0.6)
    events = await run(ScriptedProvider([step]), tmp_path, first_token_timeout=0.25, idle_timeout=0.25, max_attempts=1)
    if thinks_aloud:
        assert saved(events)
        assert not [e for e in events if isinstance(e, ev.Failed | ev.Retrying)]
    else:
        failed = [e for e in events if isinstance(e, ev.Failed)]
        assert [f.kind for f in failed] == [FailureKind.STALLED]


async def test_hidden_reasoning_is_named_and_counted(tmp_path: Path) -> None:
    pieces = [HiddenReasoning(), HiddenReasoning(tokens=120), *tokens_of(persona_json())]
    events = await run(ScriptedProvider([Step(pieces=pieces, delay=0.002)]), tmp_path)
    started = [e for e in events if isinstance(e, ev.StageStarted) and e.stage is ev.Stage.THINKING]
    assert [s.detail for s in started] == ["hidden by the model"]
    assert max(e.tokens for e in events if isinstance(e, ev.ReasoningDelta)) == 120
    assert all(e.text == "" for e in events if isinstance(e, ev.ReasoningDelta))


async def test_usage_is_reported_and_kept_in_the_record_over_every_attempt(tmp_path: Path) -> None:
    dropped = GenerationError(FailureKind.INCOMPLETE, "The stream ended early.", "Try again.", retryable=True)
    first = Usage(prompt_tokens=500, completion_tokens=40, reasoning_tokens=10)
    second = Usage(prompt_tokens=500, completion_tokens=300, reasoning_tokens=20)
    provider = ScriptedProvider(
        [
            Step(pieces=[UsagePart(first), *tokens_of(persona_json())[:5]], error=dropped),
            Step(pieces=[*tokens_of(persona_json()), UsagePart(second)]),
        ]
    )
    events = await run(provider, tmp_path)
    assert [e.usage for e in events if isinstance(e, ev.UsageReported)] == [first, second]
    total = Usage(prompt_tokens=1000, completion_tokens=340, reasoning_tokens=30)
    done = saved(events)
    assert done.usage == total and done.record.usage == total
    on_disk = PersonaRecord.model_validate_json(done.path.read_bytes())
    assert on_disk.usage == total


async def test_a_record_without_usage_says_none(tmp_path: Path) -> None:
    done = saved(await run(ScriptedProvider([Step(pieces=tokens_of(persona_json()))]), tmp_path))
    assert done.record.usage is None and done.usage is None


async def test_a_server_notice_becomes_an_event(tmp_path: Path) -> None:
    pieces = [NoticePart("Model will be retired on 2027-01-01."), *tokens_of(persona_json())]
    events = await run(ScriptedProvider([Step(pieces=pieces)]), tmp_path)
    assert [e.text for e in events if isinstance(e, ev.ServerNotice)] == ["Model will be retired on 2027-01-01."]
    assert saved(events)


# ----- through the real openai client and a loopback server -----


def real(server: FakeOpenAIServer) -> OpenAIProvider:
    return OpenAIProvider(
        model="qwen3:8b", api_key=None, base_url=server.base_url, connect_timeout=2.0, read_timeout=10.0
    )


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
async def test_reasoning_fields_of_real_servers_are_streamed_as_thinking(
    server: FakeOpenAIServer, tmp_path: Path, key: str
) -> None:
    """llama.cpp and DeepSeek send ``reasoning_content``; vLLM and Ollama send ``reasoning``."""
    server.script(
        Scenario(content=persona_json(), reasoning=THOUGHTS, reasoning_key=key, usage=True, reasoning_tokens=4)
    )
    provider = real(server)
    try:
        events = await run(provider, tmp_path)
    finally:
        await provider.aclose()
    assert stages(events) == ["+calling", "-calling", "+thinking", "-thinking", "+streaming", "-streaming"]
    assert "".join(e.text for e in events if isinstance(e, ev.ReasoningDelta)) == "".join(THOUGHTS)
    record = saved(events).record
    assert record.usage is not None and record.usage.reasoning_tokens == 4 and record.usage.prompt_tokens > 0
