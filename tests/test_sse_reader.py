"""The stream path's own SSE reader frames a body exactly as the openai client's decoder does.

Each body is fed whole, cut at every byte, and byte by byte; the events (up to ``[DONE]``) must be the
ones the client's ``SSEDecoder`` finds in the same bytes.
"""

from __future__ import annotations

import pytest
from openai._streaming import SSEDecoder

from persona_tui.engine.providers.sse import SSEReader

CHUNK = b'{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}'

BODIES = {
    "plain": b"data: " + CHUNK + b"\n\ndata: " + CHUNK + b"\n\ndata: [DONE]\n\n",
    "crlf": b"data: " + CHUNK + b"\r\n\r\ndata: [DONE]\r\n\r\n",
    "cr only": b"data: " + CHUNK + b"\r\rdata: x\r\r",
    "comments": b": OPENROUTER PROCESSING\n\n: keep-alive\n\ndata: " + CHUNK + b"\n\n",
    "no space after colon": b"data:" + CHUNK + b"\n\n",
    "two spaces": b"data:  " + CHUNK + b"\n\n",
    "multi-line data": b'data: {"a":\ndata: 1}\n\n',
    "event field": b"event: message\ndata: " + CHUNK + b"\n\n",
    "event without data": b"event: ping\n\ndata: " + CHUNK + b"\n\n",
    "empty event name": b"event:\n\ndata: " + CHUNK + b"\n\n",
    "empty data": b"data:\n\ndata\n\n",
    "id then blanks": b"id: 7\ndata: " + CHUNK + b"\n\n\n\n",
    "empty id": b"id:\n\ndata: 1\n\n",
    "retry": b"retry: 1000\n\nretry: soon\n\ndata: 1\n\n",
    "unknown field": b"foo: bar\n\ndata: 1\n\n",
    "cut event": b"data: " + CHUNK + b"\n\ndata: " + CHUNK + b"\n",
    "after done": b"data: [DONE]\n\ndata: " + CHUNK + b"\n\n",
    "not json": b"data: keep-alive\n\n",
    "unicode": 'data: {"content":"é😀—"}\n\n'.encode(),
}


def client_events(pieces: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for sse in SSEDecoder().iter_bytes(iter(pieces)):
        if sse.data.startswith("[DONE]"):
            break
        out.append(sse.data.encode("utf-8"))
    return out


def our_events(pieces: list[bytes]) -> tuple[list[bytes], bool]:
    reader = SSEReader()
    out: list[bytes] = []
    for piece in pieces:
        out += reader.feed(piece)
    return out, reader.done


def cuts(body: bytes) -> list[list[bytes]]:
    ways = [[body], [body[i : i + 1] for i in range(len(body))]]
    ways += [[body[:i], body[i:]] for i in range(1, len(body))]
    return ways


@pytest.mark.parametrize("name", list(BODIES))
def test_events_are_the_clients_however_the_body_is_cut(name: str) -> None:
    body = BODIES[name]
    expected = client_events([body])
    for pieces in cuts(body):
        assert our_events(pieces)[0] == expected, pieces


def test_done_ends_the_events() -> None:
    reader = SSEReader()
    assert reader.feed(b"data: 1\n\ndata: [DONE]\n\ndata: 2\n\n") == [b"1"]
    assert reader.done and reader.feed(b"data: 3\n\n") == []
