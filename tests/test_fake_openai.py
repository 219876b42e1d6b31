"""Prove the loopback OpenAI double against the REAL ``openai`` client."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

try:  # works whether or not tests/ is a package / the repo root is on sys.path
    from tests.fake_openai import FakeOpenAIServer, Scenario
except ModuleNotFoundError:  # pragma: no cover - rootdir-less "prepend" import mode
    from fake_openai import FakeOpenAIServer, Scenario  # type: ignore[no-redef,import-not-found,unused-ignore]

MODEL = "gpt-4o-mini"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You generate personas as JSON."},
    {"role": "user", "content": "One persona, please."},
]
PERSONA = json.dumps({"name": "Zoë Okafor", "age": 34, "job": "Lighthouse keeper 🗼", "bio": "Quiet, precise."})


def make_client(server: FakeOpenAIServer, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0, **kw)


async def stream_chat(client: openai.AsyncOpenAI, **kw: Any) -> Any:
    return await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, **kw)


async def collect(client: openai.AsyncOpenAI, **kw: Any) -> list[Any]:
    stream = await stream_chat(client, **kw)
    return [chunk async for chunk in stream]


def joined(chunks: list[Any], attr: str = "content") -> str:
    return "".join(getattr(c.choices[0].delta, attr) or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


# --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_joins_to_content_with_finish_stop(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content=PERSONA, chunk_chars=3))
    async with make_client(server) as client:
        chunks = await collect(client)

    assert joined(chunks) == PERSONA
    assert json.loads(joined(chunks))["name"] == "Zoë Okafor"
    assert finish_reasons(chunks) == ["stop"]
    first, last = chunks[0], chunks[-1]
    assert first.object == "chat.completion.chunk"
    assert first.id.startswith("chatcmpl-")
    assert first.model == MODEL
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert last.choices[0].finish_reason == "stop"
    assert last.choices[0].delta.content is None
    assert len({c.id for c in chunks}) == 1
    # role chunk + one chunk per 3 chars + finish chunk
    n_content = -(-len(PERSONA) // 3)
    assert len(chunks) == n_content + 2
    assert server.chunks_sent() == n_content


@pytest.mark.asyncio
async def test_explicit_chunks_and_usage_chunk(server: FakeOpenAIServer) -> None:
    server.script(Scenario(chunks=['{"name"', ': "Ada"', "}"], usage=True))
    async with make_client(server) as client:
        chunks = await collect(client)

    assert [c.choices[0].delta.content for c in chunks[1:4]] == ['{"name"', ': "Ada"', "}"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert finish_reasons(chunks) == ["stop"]


@pytest.mark.asyncio
async def test_first_token_delay_is_observed(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content="hello world", first_token_delay=0.3, token_delay=0.02))
    async with make_client(server) as client:
        t0 = time.monotonic()
        stream = await stream_chat(client)
        t_headers = time.monotonic() - t0
        arrivals: list[tuple[float, Any]] = [(time.monotonic() - t0, c) async for c in stream]

    assert t_headers < 0.2  # headers are not held back by the delay
    role_t, role = arrivals[0]
    assert role.choices[0].delta.role == "assistant"
    assert role_t < 0.2  # role chunk goes out with the headers, like OpenAI
    first_content_t = arrivals[1][0]
    assert first_content_t >= 0.3
    assert first_content_t < 1.0
    # token_delay paces the later chunks: 3 content chunks -> 2 gaps of 0.02 s
    assert arrivals[-1][0] >= 0.3 + 2 * 0.02
    assert joined([c for _, c in arrivals]) == "hello world"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "exc_type", "code"),
    [
        (401, openai.AuthenticationError, "invalid_api_key"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, None),
    ],
)
async def test_error_status_raises_matching_exception(
    server: FakeOpenAIServer, status: int, exc_type: type[openai.APIStatusError], code: str | None
) -> None:
    server.script(Scenario(status=status, headers={"Retry-After": "1"}))
    async with make_client(server) as client:
        with pytest.raises(exc_type) as info:
            await stream_chat(client)

    err = info.value
    assert err.status_code == status
    assert err.response.headers["retry-after"] == "1"
    assert err.response.headers["content-type"] == "application/json"
    assert isinstance(err.body, dict)
    assert err.body["code"] == code
    assert err.body["message"]
    assert err.request_id and err.request_id.startswith("req_")
    assert len(server.requests) == 1  # max_retries=0: exactly one attempt
    assert server.chunks_sent() == 0


@pytest.mark.asyncio
async def test_error_with_custom_body(server: FakeOpenAIServer) -> None:
    body = json.dumps({"error": {"message": "quota gone", "type": "insufficient_quota", "code": "insufficient_quota"}})
    server.script(Scenario(status=429, error_body=body))
    async with make_client(server) as client:
        with pytest.raises(openai.RateLimitError) as info:
            await stream_chat(client)
    assert info.value.code == "insufficient_quota"
    assert "quota gone" in info.value.message


@pytest.mark.asyncio
async def test_html_502_raises_api_status_error(server: FakeOpenAIServer) -> None:
    server.script(Scenario(status=502, content_type="text/html"))
    async with make_client(server) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await stream_chat(client)

    err = info.value
    assert err.status_code == 502
    # >= 500 maps to InternalServerError, a subclass of APIStatusError
    assert type(err) is openai.InternalServerError
    assert err.response.headers["content-type"].startswith("text/html")
    assert isinstance(err.body, str)
    assert "502 Bad Gateway" in err.body


@pytest.mark.asyncio
async def test_cut_stream_raises_api_connection_error(server: FakeOpenAIServer) -> None:
    """A connection dropped mid (chunked) body: the client RAISES, it does not just end.

    The content received before the cut is delivered first; then iteration raises
    ``APIConnectionError`` caused by httpx2's ``RemoteProtocolError`` ("incomplete
    chunked read").  No chunk carries a finish_reason.
    """
    server.script(Scenario(content="abcdefghijkl", cut_after=2))
    received: list[Any] = []
    async with make_client(server) as client:
        stream = await stream_chat(client)
        with pytest.raises(openai.APIConnectionError) as info:
            async for chunk in stream:
                received.append(chunk)

    assert not isinstance(info.value, openai.APITimeoutError)
    assert "incomplete chunked read" in str(info.value.__cause__)
    assert joined(received) == "abcdefgh"
    assert finish_reasons(received) == []
    assert server.chunks_sent() == 2


@pytest.mark.asyncio
async def test_stall_then_cancel_is_noticed_as_disconnect(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content=PERSONA, stall_after=2, stall_seconds=10))
    received: list[Any] = []
    async with make_client(server) as client:

        async def consume() -> None:
            async for chunk in await stream_chat(client):
                received.append(chunk)

        task = asyncio.create_task(consume())
        deadline = time.monotonic() + 2
        while len(received) < 3 and time.monotonic() < deadline:  # role + 2 content chunks
            await asyncio.sleep(0.005)
        assert len(received) == 3
        await asyncio.sleep(0.05)  # truly stalled: nothing more arrives
        assert len(received) == 3

        t_cancel = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(server.wait_disconnect, 1.0)

    latency_ms = (server.disconnects[0] - t_cancel) * 1000
    print(f"\n[fake-openai] disconnect noticed {latency_ms:.2f} ms after task.cancel()")
    assert latency_ms < 500
    assert server.chunks_sent() == 2


@pytest.mark.asyncio
async def test_cancel_during_first_token_delay_is_noticed(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content="abc", first_token_delay=10))
    async with make_client(server) as client:
        stream = await stream_chat(client)
        first = await stream.__anext__()
        assert first.choices[0].delta.role == "assistant"
        t_close = time.monotonic()
        await stream.close()
        assert await asyncio.to_thread(server.wait_disconnect, 1.0)
    assert server.disconnects[0] - t_close < 0.5
    assert server.chunks_sent() == 0


@pytest.mark.asyncio
async def test_stall_without_cancel_hits_client_read_timeout(server: FakeOpenAIServer) -> None:
    """On a stall the client just waits; only its read timeout ends it (APITimeoutError)."""
    server.script(Scenario(content="abcdefgh", stall_after=1, stall_seconds=10))
    received: list[Any] = []
    async with make_client(server, timeout=0.3) as client:
        stream = await stream_chat(client)
        t0 = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            async for chunk in stream:
                received.append(chunk)
        waited = time.monotonic() - t0
    assert joined(received) == "abcd"
    assert 0.25 <= waited < 2
    assert server.wait_disconnect(1.0)


@pytest.mark.asyncio
async def test_stall_resumes_after_stall_seconds(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content="abcdefgh", stall_after=1, stall_seconds=0.2))
    async with make_client(server) as client:
        t0 = time.monotonic()
        chunks = await collect(client)
    assert time.monotonic() - t0 >= 0.2
    assert joined(chunks) == "abcdefgh"
    assert finish_reasons(chunks) == ["stop"]
    assert server.disconnects == []


@pytest.mark.asyncio
async def test_refusal_arrives_as_delta_refusal(server: FakeOpenAIServer) -> None:
    text = "I'm sorry, I can't help with that."
    server.script(Scenario(refusal=text, chunk_chars=5))
    async with make_client(server) as client:
        chunks = await collect(client)

    assert joined(chunks, "refusal") == text
    assert joined(chunks, "content") == ""
    assert finish_reasons(chunks) == ["stop"]
    assert all(c.choices[0].delta.content is None for c in chunks[1:])


@pytest.mark.asyncio
async def test_finish_reason_length_arrives(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content='{"name": "Ada", "bio": "trunc', finish_reason="length"))
    async with make_client(server) as client:
        chunks = await collect(client)
    assert finish_reasons(chunks) == ["length"]
    assert joined(chunks).endswith("trunc")


@pytest.mark.asyncio
async def test_non_streaming_request(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content=PERSONA, headers={"x-ratelimit-remaining-requests": "99"}))
    async with make_client(server) as client:
        raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        completion = raw.parse()

    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == PERSONA
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert "stream" not in server.requests[0]["body"]


@pytest.mark.asyncio
async def test_recorded_request_has_model_messages_and_headers(server: FakeOpenAIServer) -> None:
    server.script(Scenario(content="ok"))
    async with make_client(server) as client:
        await collect(client, temperature=0.7)

    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == MODEL
    assert req["body"]["messages"] == MESSAGES
    assert req["body"]["stream"] is True
    assert req["body"]["temperature"] == 0.7
    assert req["headers"]["authorization"] == "Bearer test"
    assert req["headers"]["content-type"] == "application/json"


@pytest.mark.asyncio
async def test_script_sequence_last_scenario_repeats(server: FakeOpenAIServer) -> None:
    server.script(Scenario(status=429), Scenario(content="first"), Scenario(content="again"))
    async with make_client(server) as client:
        with pytest.raises(openai.RateLimitError):
            await stream_chat(client)
        results = [joined(await collect(client)) for _ in range(3)]
    assert results == ["first", "again", "again"]
    assert len(server.requests) == 4


@pytest.mark.asyncio
async def test_unknown_route_is_404_json(server: FakeOpenAIServer) -> None:
    async with make_client(server) as client:
        with pytest.raises(openai.NotFoundError) as info:
            await client.files.list()  # /v1/models answers a list (see test_models_list.py)
    assert "Invalid URL" in info.value.message
    assert server.requests[0]["path"] == "/v1/files"


def test_stop_does_not_hang_with_stalled_response() -> None:
    srv = FakeOpenAIServer().start()
    srv.script(Scenario(content="abcdefgh", stall_after=1, stall_seconds=30))
    host, port = srv.base_url.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": MODEL, "messages": MESSAGES, "stream": True}).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        deadline = time.monotonic() + 2
        while srv.chunks_sent() < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert srv.chunks_sent() == 1
        t0 = time.monotonic()
        srv.stop()
        assert time.monotonic() - t0 < 1.0
        assert srv.disconnects == []  # a server stop is not a client hang-up


@pytest.mark.asyncio
async def test_throughput_chunk_chars_1(server: FakeOpenAIServer) -> None:
    content = ("Persona JSON streamed one character per chunk. " * 100)[:4000]
    server.script(Scenario(content=content, chunk_chars=1))
    async with make_client(server) as client:
        stream = await stream_chat(client)
        t0 = time.perf_counter()
        n = 0
        parts: list[str] = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                n += 1
                parts.append(chunk.choices[0].delta.content)
        elapsed = time.perf_counter() - t0
    assert "".join(parts) == content
    assert n == len(content) == server.chunks_sent()
    print(f"\n[fake-openai] chunk_chars=1: {n} chunks in {elapsed * 1000:.0f} ms = {n / elapsed:,.0f} chunks/s")
