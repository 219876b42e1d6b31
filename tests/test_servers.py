"""Real servers' wire formats, replayed on the loopback server and read through the real openai client.

Each test reproduces what one server sends, from its source or documentation
(docs/SERVERS.md cites them), where tests/test_dialects.py covers the shape
only in general: Ollama's ``reasoning`` chunks, llama.cpp's ``reasoning_content``
with ``timings`` and its error objects, vLLM's error event, DeepSeek's usage,
Groq's parsed reasoning, Azure's content filter, OpenRouter's reasoning and
comment lines, LM Studio's string errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind
from persona_tui.storage import SERVERS_FILE, NotesFile
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_json, tokens_of
from tests.test_dialects import provider_for, run, saved

pytestmark = pytest.mark.asyncio
THOUGHTS = ["Okay, field nurses", " in rural Kenya.", " Mid-career, drives a lot."]


def failed(events: list[ev.Event]) -> ev.Failed:
    found = [e for e in events if isinstance(e, ev.Failed)]
    assert len(found) == 1, events
    return found[0]


def thought(events: list[ev.Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ev.ReasoningDelta))


def answer(events: list[ev.Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ev.TokenDelta))


def sse(obj: dict[str, Any]) -> str:
    return "data: " + json.dumps(obj, separators=(",", ":"))


def chunk(delta: dict[str, Any] | None, model: str, **top: Any) -> str:
    """One chat.completion.chunk as most servers frame it, with any extra top-level keys."""
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return sse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [choice],
            **top,
        }
    )


# ----- Ollama (/v1) -----


async def test_ollama_reasoning_chunks_as_its_source_emits_them(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """openai/openai.go ToChunk: every delta repeats role and content (empty while thinking) beside ``reasoning``."""

    def ollama(content: str, reasoning: str = "") -> str:
        delta: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning:  # `json:"reasoning,omitempty"`
            delta["reasoning"] = reasoning
        return chunk(delta, "qwen3:8b", system_fingerprint="fp_ollama")

    events_out = [ollama("", t) for t in THOUGHTS] + [ollama(piece) for piece in tokens_of(persona_json(), 9)]
    server.script(Scenario(raw_events=events_out))
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert thought(events) == "".join(THOUGHTS)
    assert answer(events) == persona_json()
    assert saved(events).record.persona.name == "Amina Otieno"


# ----- llama.cpp llama-server -----


def llamacpp(delta: dict[str, Any], n: int) -> str:
    """tools/server: deltas from the message diff; ``timings`` on the last chunk of each batch."""
    timings = {"cache_n": 0, "prompt_n": 12, "prompt_ms": 30.1, "predicted_n": n, "predicted_ms": 9.5 * n}
    return chunk(delta, "gpt-oss-20b", system_fingerprint="b6000-abc", timings=timings)


async def test_llamacpp_reasoning_content_with_timings(server: FakeOpenAIServer, tmp_path: Path) -> None:
    lines = [llamacpp({"role": "assistant", "content": None}, 1)]
    lines += [llamacpp({"reasoning_content": t}, i + 2) for i, t in enumerate(THOUGHTS)]
    lines += [llamacpp({"content": piece}, i + 5) for i, piece in enumerate(tokens_of(persona_json(), 7))]
    server.script(Scenario(raw_events=lines, usage=True))
    events = await run(provider_for(server, tmp_path, model="gpt-oss-20b"), tmp_path)
    assert thought(events) == "".join(THOUGHTS)
    record = saved(events).record
    assert record.persona.name == "Amina Otieno" and record.usage is not None


async def test_llamacpp_error_inside_the_stream_has_an_integer_code(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """server.cpp: ``data: {"error": format_error_response(...)}``; the code is the HTTP status as a number."""
    server.script(
        Scenario(
            content=persona_json()[:30],
            error_event={"code": 500, "message": "Compute error.", "type": "server_error"},
        ),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert saved(events)
    retries = [e for e in events if isinstance(e, ev.Retrying) and not e.adapted]
    assert len(retries) == 1 and '"Compute error."' in retries[0].reason


async def test_llamacpp_context_overflow_is_named_as_one(server: FakeOpenAIServer, tmp_path: Path) -> None:
    body = {
        "error": {
            "code": 400,
            "message": "request (9120 tokens) exceeds the available context size (8192 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 9120,
            "n_ctx": 8192,
        }
    }
    server.script(Scenario(status=400, error_body=json.dumps(body)))
    failure = failed(await run(provider_for(server, tmp_path), tmp_path))
    assert "exceeds the available context size" in failure.message
    assert "larger context window" in failure.hint


# ----- vLLM -----


async def test_vllm_error_event_for_a_bad_request_is_not_retried(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """serving_engine.create_streaming_error_response: ``{"error": {message, type, param, code: 400}}``."""
    server.script(
        Scenario(
            content=persona_json()[:20],
            error_event={
                "message": "The decoder prompt is longer than the maximum model length.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
        ),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path), tmp_path)
    failure = failed(events)
    assert '"The decoder prompt is longer than the maximum model length."' in failure.message
    assert failure.hint == "Check the request and the model."
    assert not [e for e in events if isinstance(e, ev.Retrying)]
    assert len(server.requests) == 1


# ----- DeepSeek -----


async def test_deepseek_reasoning_content_keepalives_and_usage(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """``reasoning_content`` beside ``content``, ``: keep-alive`` comments while queued, cache counts in usage."""
    server.script(
        Scenario(
            content=persona_json(),
            raw_events=[": keep-alive", ": keep-alive"],
            reasoning=THOUGHTS,
            reasoning_key="reasoning_content",
            reasoning_tokens=41,
            usage_extra={"prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 96},
        )
    )
    events = await run(provider_for(server, tmp_path, model="deepseek-reasoner"), tmp_path)
    assert thought(events) == "".join(THOUGHTS)
    usage = saved(events).record.usage
    assert usage is not None and usage.reasoning_tokens == 41 and usage.prompt_tokens > 0
    assert server.requests[0]["body"]["temperature"] == 0.9  # accepted and ignored by deepseek-reasoner


# ----- Groq -----


async def test_groq_parsed_reasoning_and_x_groq(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """reasoning_format=parsed (the default with JSON mode): ``reasoning`` in the delta; Groq adds ``x_groq``."""
    lines = [chunk({"reasoning": t}, "qwen/qwen3-32b", x_groq={"id": "req_01"}) for t in THOUGHTS]
    server.script(Scenario(content=persona_json(), raw_events=lines))
    events = await run(provider_for(server, tmp_path, model="qwen/qwen3-32b"), tmp_path)
    assert thought(events) == "".join(THOUGHTS)
    assert saved(events)


# ----- Azure OpenAI -----


async def test_azure_prompt_filter_chunk_then_content_filter_finish(server: FakeOpenAIServer, tmp_path: Path) -> None:
    prompt_filter = sse(
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}
            ],
        }
    )
    server.script(Scenario(content=persona_json()[:40], raw_events=[prompt_filter], finish_reason="content_filter"))
    failure = failed(await run(provider_for(server, tmp_path, model="gpt-4o-mini"), tmp_path, max_attempts=1))
    assert failure.kind is FailureKind.CONTENT_FILTER
    assert "content filter" in failure.message


# ----- OpenRouter -----


async def test_openrouter_reasoning_comments_and_cost(server: FakeOpenAIServer, tmp_path: Path) -> None:
    lines = [": OPENROUTER PROCESSING", ": OPENROUTER PROCESSING"]
    lines += [
        chunk(
            {
                "role": "assistant",
                "content": "",
                "reasoning": t,
                "reasoning_details": [{"type": "reasoning.text", "text": t}],
            },
            "deepseek/deepseek-r1",
            provider="DeepInfra",
        )
        for t in THOUGHTS
    ]
    server.script(Scenario(content=persona_json(), raw_events=lines, reasoning_tokens=12, usage_extra={"cost": 0.0004}))
    events = await run(provider_for(server, tmp_path, model="deepseek/deepseek-r1"), tmp_path)
    assert thought(events) == "".join(THOUGHTS)
    usage = saved(events).record.usage
    assert usage is not None and usage.reasoning_tokens == 12


# ----- LM Studio -----


async def test_lmstudio_string_error_refusing_json_object_steps_down(server: FakeOpenAIServer, tmp_path: Path) -> None:
    provider = provider_for(server, tmp_path, model="qwen3-8b")
    NotesFile.in_folder(tmp_path, SERVERS_FILE).path.write_text(
        json.dumps({f"{provider.endpoint}/qwen3-8b": {"dropped": [], "format": "object", "schema_drops": []}})
    )
    server.script(
        Scenario(
            status=400, error_body=json.dumps({"error": "'response_format.type' must be 'json_schema' or 'text'"})
        ),
        Scenario(content=persona_json()),
    )
    events = await run(provider, tmp_path, max_attempts=1)
    assert saved(events)
    assert "response_format" not in server.requests[-1]["body"]
