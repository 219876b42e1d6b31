"""What real servers send and refuse, through the real openai client and a loopback server.

Each case is a dialect of a real server (see docs/SERVERS.md): reasoning in a
field or in ``<think>`` tags, a refused temperature or response format, a
refused schema keyword or ``stream_options``, odd chunks, errors inside a
stream that began with HTTP 200.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.engine.providers.adapt import Format, ServerNotes, step_for, takes_only_default_temperature
from persona_tui.engine.providers.openai_compatible import OpenAIProvider
from persona_tui.engine.providers.parts import AnswerPart, ReasoningPart
from persona_tui.engine.providers.think import ThinkSplitter
from persona_tui.models import GenerationRequest, Persona, strict_json_schema
from persona_tui.storage import SERVERS_FILE, NotesFile, PersonaStore
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.helpers import persona_json

pytestmark = pytest.mark.asyncio
SCHEMA = strict_json_schema(Persona)


def provider_for(server: FakeOpenAIServer, tmp_path: Path, model: str = "qwen3:8b", **kw: object) -> OpenAIProvider:
    return OpenAIProvider(
        model=model,
        api_key=None,
        base_url=server.base_url,
        connect_timeout=2.0,
        read_timeout=10.0,
        notes_file=NotesFile.in_folder(tmp_path, SERVERS_FILE),
        **kw,  # type: ignore[arg-type]
    )


async def run(provider: OpenAIProvider, tmp_path: Path, **settings: object) -> list[ev.Event]:
    values: dict[str, object] = {
        "population_plan": False,  # scripted answers are fixed: test_plan_pipeline holds answers to slots
        "regenerate_duplicates": False,  # and their stories alike: only the names differ
        "data_dir": tmp_path,
        "heartbeat_seconds": 0.1,
        "slow_seconds": 30.0,
        "first_token_timeout": 3.0,
        "idle_timeout": 3.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.02,
    }
    values.update(settings)
    try:
        return [
            e
            async for e in generate(
                GenerationRequest.create("field nurses in rural Kenya"),
                provider=provider,
                store=PersonaStore(tmp_path / "personas"),
                settings=Settings(**values),  # type: ignore[arg-type]
                estimates=EstimateBook(None),
                rng=random.Random(0),
            )
        ]
    finally:
        await provider.aclose()


def saved(events: list[ev.Event]) -> ev.PersonaSaved:
    found = [e for e in events if isinstance(e, ev.PersonaSaved)]
    assert len(found) == 1, [e for e in events if isinstance(e, ev.Failed)]
    return found[0]


def steps(events: list[ev.Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, ev.Retrying) and e.adapted]


def refusal(message: str, param: str | None = None, code: str = "unsupported_value") -> Scenario:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return Scenario(status=400, error_body=json.dumps(body))


# ----- <think> inside the content -----


def split(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    parts = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    answer = "".join(p.text for p in parts if isinstance(p, AnswerPart))
    thought = "".join(p.text for p in parts if isinstance(p, ReasoningPart))
    return answer, thought


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
async def test_think_blocks_are_taken_out_of_the_answer_whatever_the_chunking(size: int) -> None:
    text = "<think>The user wants {a nurse}. Kenya.</think>\n" + persona_json()
    answer, thought = split([text[i : i + size] for i in range(0, len(text), size)])
    assert answer == persona_json()
    assert thought == "The user wants {a nurse}. Kenya."


async def test_a_lone_closing_tag_makes_all_before_it_reasoning() -> None:
    """Templates that open the think block in the prompt stream only its end."""
    reasoning = "Okay, so I need a persona. Let me think about rural Kenya and what a nurse there does all day."
    answer, thought = split([reasoning[:50], reasoning[50:], "</think>\n\n", persona_json()])
    assert thought == reasoning and answer == persona_json()


async def test_an_answer_without_tags_is_untouched() -> None:
    assert split([persona_json()[:10], persona_json()[10:]]) == (persona_json(), "")


async def test_think_tags_from_a_real_server_are_shown_as_thinking(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content="<think>Who lives in Kisumu? A nurse {maybe}.</think>" + persona_json()))
    events = await run(provider_for(server, tmp_path), tmp_path)
    thought = "".join(e.text for e in events if isinstance(e, ev.ReasoningDelta))
    assert thought == "Who lives in Kisumu? A nurse {maybe}."
    assert saved(events).record.persona.name == "Amina Otieno"


# ----- refused parameters and response formats -----


async def test_reasoning_families_are_known() -> None:
    for model in ("gpt-5", "gpt-5-mini", "o3", "o4-mini", "openai/gpt-5-nano", "o1-pro"):
        assert takes_only_default_temperature(model), model
    for model in ("gpt-4o-mini", "gpt-4.1", "qwen3:8b", "llama3.2", "deepseek-r1"):
        assert not takes_only_default_temperature(model), model


async def test_a_refused_temperature_is_left_out_told_and_remembered(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        refusal(
            "Unsupported value: 'temperature' does not support 0.9 with this model. "
            "Only the default (1) value is supported.",
            param="temperature",
        ),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path, model="house-reasoner"), tmp_path)
    assert saved(events)
    assert steps(events) == ["house-reasoner takes only its default temperature; sent without it."]
    assert not [e for e in events if isinstance(e, ev.ServerNotice)], "said once, as it happened"
    first, second = (r["body"] for r in server.requests[-2:])
    assert first["temperature"] == 0.9 and "temperature" not in second
    # The next run goes straight to what works, and says why.
    server.script(Scenario(content=persona_json("Bo Lindqvist")))
    again = await run(provider_for(server, tmp_path, model="house-reasoner"), tmp_path)
    assert saved(again) and not steps(again)
    assert "temperature" not in server.requests[-1]["body"]
    notices = [e.text for e in again if isinstance(e, ev.ServerNotice)]
    assert notices and "sent without temperature" in notices[0]


async def test_openai_reasoning_models_are_sent_no_temperature(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json(), first_token_delay=0.2))
    events = await run(provider_for(server, tmp_path, model="gpt-5-mini"), tmp_path)
    assert saved(events)
    assert "temperature" not in server.requests[-1]["body"]
    thinking = [e for e in events if isinstance(e, ev.StageStarted) and e.stage is ev.Stage.THINKING]
    assert [t.detail for t in thinking] == ["hidden by the model"]


async def test_hidden_thinking_longer_than_the_first_token_timeout_is_waited_for(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.script(Scenario(content=persona_json(), first_token_delay=1.0))
    events = await run(provider_for(server, tmp_path, model="o4-mini"), tmp_path, first_token_timeout=0.5)
    assert saved(events) and not [e for e in events if isinstance(e, ev.Retrying)]


async def test_the_structured_output_ladder(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        refusal("Invalid schema for response_format 'persona': 'minItems' is not permitted.", "response_format"),
        refusal("This response_format type is unavailable now", "response_format", "invalid_request_error"),
        refusal("'response_format.type' must be 'text'", "response_format", "invalid_request_error"),
        Scenario(content="Here you go:\n```json\n" + persona_json() + "\n```"),
    )
    events = await run(provider_for(server, tmp_path, model="old-model"), tmp_path, max_attempts=1)
    assert saved(events)
    host = server.base_url.split("//")[1].split("/")[0]
    assert steps(events) == [
        f"{host} refused the schema keyword minItems; sent without it.",
        f'{host} refused structured outputs (json_schema) ("This response_format type is unavailable now"); '
        "asking through JSON mode (json_object) instead.",
        f"{host} refused JSON mode (json_object) (\"'response_format.type' must be 'text'\"); "
        "asking through a plain prompt instead.",
    ]
    schema_sent, _, object_sent, plain_sent = (r["body"] for r in server.requests[-4:])
    assert "minItems" in json.dumps(schema_sent["response_format"])
    assert object_sent["response_format"] == {"type": "json_object"}
    assert "response_format" not in plain_sent
    assert "JSON schema" in plain_sent["messages"][0]["content"] and '"quote"' in plain_sent["messages"][0]["content"]


async def test_refused_stream_options_are_left_out(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        refusal("Unrecognized request argument supplied: stream_options", None, "invalid_request_error"),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert saved(events) and len(steps(events)) == 1
    assert server.requests[-2]["body"]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in server.requests[-1]["body"]


async def test_usage_is_asked_for_and_real_counts_win(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json(), chunk_chars=2, reasoning_tokens=0))
    done = saved(await run(provider_for(server, tmp_path), tmp_path))
    usage = done.record.usage
    assert usage is not None and usage.completion_tokens == len(persona_json()) // 2 + (len(persona_json()) % 2)
    assert done.tokens == usage.completion_tokens == done.record.tokens


async def test_a_400_that_is_not_about_an_option_ends_with_its_cause(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(refusal("This model's maximum context length is 8192 tokens.", None, "context_length_exceeded"))
    failed = [e for e in await run(provider_for(server, tmp_path), tmp_path) if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and failed[0].kind is FailureKind.BAD_REQUEST
    assert "maximum context length is 8192 tokens" in failed[0].message
    assert "larger context window" in failed[0].hint


async def test_an_unknown_model_answered_with_400_is_named_as_such(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """LiteLLM answers an unknown model name with 400, not 404."""
    server.script(
        refusal("Invalid model name passed in model=gpt-6. Call `/v1/models` to view available models.", None, "400")
    )
    failed = [e for e in await run(provider_for(server, tmp_path), tmp_path) if isinstance(e, ev.Failed)]
    assert failed[0].kind is FailureKind.NOT_FOUND
    assert "Call `/v1/models` to view available models." in failed[0].message
    assert "persona-tui models" in failed[0].hint


async def test_notes_that_make_no_sense_are_ignored() -> None:
    notes = ServerNotes.from_json({"dropped": ["temperature", "rm -rf"], "format": "telepathy", "schema_drops": [3]})
    assert notes.dropped == {"temperature"} and notes.format is Format.SCHEMA and not notes.schema_drops
    assert step_for("Internal error", None, ServerNotes(), SCHEMA) is None


# ----- odd chunks and errors inside a 200 stream -----


async def test_odd_but_legal_chunks_are_survived(server: FakeOpenAIServer, tmp_path: Path) -> None:
    odd = [
        ": OPENROUTER PROCESSING",
        'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":null,"finish_reason":null}]}',
        'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}',
        'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"","content":""},"finish_reason":null}],"obfuscation":"abc","service_tier":"default","timings":{"predicted_ms":1}}',
    ]
    server.script(Scenario(content=persona_json(), raw_events=odd))
    assert saved(await run(provider_for(server, tmp_path), tmp_path))


async def test_an_error_inside_a_200_stream_is_quoted_and_retried(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        Scenario(content=persona_json()[:40], error_event={"message": "Upstream model overloaded", "code": 502}),
        Scenario(content=persona_json()),
    )
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert saved(events)
    retries = [e for e in events if isinstance(e, ev.Retrying) and not e.adapted]
    assert len(retries) == 1 and '"Upstream model overloaded"' in retries[0].reason


async def test_openrouter_finish_reason_error_is_its_own_message(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(
        Scenario(content=persona_json()[:40], finish_error={"message": "Provider returned error", "code": 400})
    )
    failed = [
        e for e in await run(provider_for(server, tmp_path), tmp_path, max_attempts=1) if isinstance(e, ev.Failed)
    ]
    assert len(failed) == 1 and '"Provider returned error"' in failed[0].message


async def test_a_temperature_left_to_the_model_is_not_sent(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content=persona_json()))
    assert saved(await run(provider_for(server, tmp_path, temperature=None), tmp_path))
    assert "temperature" not in server.requests[-1]["body"]


async def test_what_was_learned_before_is_said_in_our_words_and_is_no_sign_of_life(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    NotesFile.in_folder(tmp_path, SERVERS_FILE).path.write_text(
        json.dumps({f"{server.base_url.split('//')[1].split('/')[0]}/old-model": {"dropped": ["temperature"]}})
    )
    server.script(Scenario(content=persona_json(), first_token_delay=0.3))
    events = await run(provider_for(server, tmp_path, model="old-model"), tmp_path)
    notice = next(e for e in events if isinstance(e, ev.ServerNotice))
    assert not notice.from_server and "sent without temperature" in notice.text
    first = next(e for e in events if isinstance(e, ev.FirstToken))
    assert first.seconds >= 0.25, "the provider's own notice is not the server's first token"


# ----- found in review: parallel refusals, look-alike 400s, limits -----


async def test_parallel_streams_meeting_one_refusal_step_down_once(server: FakeOpenAIServer, tmp_path: Path) -> None:
    refused = refusal("This response_format type is unavailable now", None, "invalid_request_error")
    refused.first_token_delay = 0.3  # all three requests are out before the first refusal comes back
    people = [Scenario(content=persona_json(name)) for name in ("Ana Souza", "Bo Lindqvist", "Chen Wei")]
    server.script(refused, refused, refused, *people)
    provider = provider_for(server, tmp_path, model="old-model")
    await provider.notes()  # read before the batch, as on the app's second generation
    values = {"data_dir": tmp_path, "heartbeat_seconds": 0.1, "retry_base_delay": 0.01, "concurrency": 3}
    values["population_plan"] = values["regenerate_duplicates"] = False
    try:
        events = [
            e
            async for e in generate(
                GenerationRequest.create("field nurses in rural Kenya", 3),
                provider=provider,
                store=PersonaStore(tmp_path / "personas"),
                settings=Settings(**values),  # type: ignore[arg-type]
                estimates=EstimateBook(None),
                rng=random.Random(0),
            )
        ]
    finally:
        await provider.aclose()
    assert not [e for e in events if isinstance(e, ev.Failed)]
    assert len([e for e in events if isinstance(e, ev.PersonaSaved)]) == 3
    formats = [r["body"].get("response_format", {}).get("type") for r in server.requests]
    assert formats.count("json_schema") == 3 and None not in formats, "one step down (json_object), not two"
    saved_notes = json.loads(NotesFile.in_folder(tmp_path, SERVERS_FILE).path.read_text())
    assert next(iter(saved_notes.values()))["format"] == "object"


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130532 "
            "tokens (including 212 in the response_format schemas.).",
            "messages",
        ),
        ("temperature and top_p should not both be set", None),
    ],
)
async def test_a_400_that_only_mentions_an_option_is_not_a_step(message: str, param: str | None) -> None:
    sent = frozenset({"stream_options"})  # no temperature was sent
    assert step_for(message, param, ServerNotes(), SCHEMA, sent) is None


async def test_hidden_thinking_is_not_cut_by_the_clients_own_timeout(server: FakeOpenAIServer, tmp_path: Path) -> None:
    from persona_tui.engine.providers.openai_compatible import PROVIDER

    settings = Settings(
        data_dir=tmp_path, base_url=server.base_url, model="o4-mini", provider="openai",
        first_token_timeout=0.6, idle_timeout=0.4, thinking_timeout=30.0, heartbeat_seconds=0.1,
    )  # fmt: skip
    provider = PROVIDER.build(
        PROVIDER.options.model_validate({"model": "o4-mini", "base_url": server.base_url}), settings
    )
    assert isinstance(provider, OpenAIProvider)
    server.script(Scenario(content=persona_json(), first_token_delay=1.2))
    events = await run(provider, tmp_path, first_token_timeout=0.6, idle_timeout=0.4, thinking_timeout=30.0)
    assert saved(events)


async def test_a_data_line_that_is_not_json_is_a_server_fault_not_a_bug(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.script(Scenario(content=persona_json(), raw_events=["data: keep-alive"]), Scenario(content=persona_json()))
    events = await run(provider_for(server, tmp_path), tmp_path)
    assert saved(events)
    retries = [e for e in events if isinstance(e, ev.Retrying)]
    assert retries and "could not read" in retries[0].reason
    assert not [e for e in events if isinstance(e, ev.Failed)]
