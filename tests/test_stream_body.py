"""The stream path reads the SSE body itself: what the client's typed stream did, it still does."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_tui.engine import events as ev
from persona_tui.engine.providers.openai_compatible import _Ending, _ErrorEvent
from persona_tui.engine.providers.parts import AnswerPart, ReasoningPart, UsagePart
from persona_tui.engine.providers.think import ThinkSplitter
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_json
from tests.test_dialects import provider_for, run, saved


@pytest.mark.asyncio
async def test_an_error_event_given_as_text_is_unreadable_and_retried(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        Scenario(content=persona_json()[:30], raw_events=['data: {"error": "upstream gone"}']),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert saved(events)
    retries = [e for e in events if isinstance(e, ev.Retrying)]
    assert len(retries) == 1 and "could not read" in retries[0].reason


@pytest.mark.asyncio
async def test_a_named_error_event_is_quoted(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        Scenario(content=persona_json()[:30], raw_events=['event: error\ndata: {"error": {"message": "Overloaded"}}']),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert saved(events)
    retries = [e for e in events if isinstance(e, ev.Retrying)]
    assert len(retries) == 1 and '"Overloaded"' in retries[0].reason


def test_chunk_fields_are_read_from_plain_dicts() -> None:
    ending = _Ending(ThinkSplitter())
    assert ending.parts_of(b'{"choices":[{"delta":{"reasoning":"hm","content":"{"},"finish_reason":null}]}') == [
        ReasoningPart("hm"),
        AnswerPart("{"),
    ]
    assert ending.parts_of(b'{"choices":[{"delta":null}],"usage":null}') == []
    (usage,) = ending.parts_of(
        b'{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,'
        b'"completion_tokens_details":{"reasoning_tokens":4},"cost":0.1}}'
    )
    assert isinstance(usage, UsagePart) and (usage.usage.prompt_tokens, usage.usage.reasoning_tokens) == (5, 4)
    (odd,) = ending.parts_of(b'{"choices":[],"usage":"n/a"}')
    assert isinstance(odd, UsagePart) and odd.usage.completion_tokens == 0
    ending.parts_of(b'{"choices":[{"delta":{},"finish_reason":"error","error":{"message":"Provider returned error"}}]}')
    assert (
        ending.finish_reason == "error"
        and ending.error is not None
        and ending.error.message == "Provider returned error"
    )
    with pytest.raises(_ErrorEvent):
        ending.parts_of(b'{"error":{"message":"x"}}')
    for bad in (b"keep-alive", b"", b"5", b"[]"):
        with pytest.raises(ValueError):
            ending.parts_of(bad)
