"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API.

Test double for the *wire*: the official ``openai`` client talks to it over a
loopback TCP socket, so SSE framing, chunked transfer encoding, status codes,
headers and connection handling are all exercised for real.  Stdlib only.

The server runs ``http.server.ThreadingHTTPServer`` in a daemon thread, one
thread per connection, so it is independent of whatever event loop the client
under test uses.

Usage::

    with FakeOpenAIServer() as server:
        server.script(Scenario(content='{"name": "Ada"}', token_delay=0.01))
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        ...

Scenario semantics (streaming, ``"stream": true``):

* headers and the role chunk (``delta = {"role": "assistant", "content": ""}``)
  are written immediately, like OpenAI does;
* before content chunk ``i`` (0-based): if ``i == stall_after`` the response
  stalls (until the client hangs up, the server stops, or ``stall_seconds``
  pass, after which it *resumes*); then if ``i == cut_after`` the connection
  is closed abruptly (mid chunked body: no finish chunk, no ``[DONE]``, no
  terminating zero-length chunk); then it waits ``first_token_delay`` (for
  ``i == 0``) or ``token_delay`` and writes the chunk.  ``i`` may equal the
  number of chunks, i.e. stall/cut after all content but before the finish
  chunk.  ``stall_after == cut_after`` therefore means "stall, then cut".
* ``reasoning`` deltas, if any, go out first, each in the field named by
  ``reasoning_key`` with ``content`` null, as reasoning servers send them;
* ``raw_events`` lines go out as they are (a chunk with ``delta: null``, an
  Azure prompt-filter chunk, an SSE comment), for the dialects of real servers;
* ``error_event`` ends the stream with a data event holding an error object
  (what OpenAI, vLLM and OpenRouter send when a stream fails after HTTP 200);
  ``finish_error`` ends it with OpenRouter's ``finish_reason: "error"``;
* then a chunk with an empty delta and ``finish_reason``, an optional usage
  chunk (``choices: []``; sent if ``Scenario.usage`` or the request asked via
  ``stream_options.include_usage``), ``data: [DONE]`` and the end of the
  chunked body.  The connection stays keep-alive.

Non-streaming requests get a full ``chat.completion`` JSON after waiting
``first_token_delay + token_delay * (n_chunks - 1)``; ``stall_after`` makes
it wait ``stall_seconds`` first, ``cut_after`` closes the connection without
any response.

Error scenarios (``status != 200``) wait ``first_token_delay``, then answer with ``error_body`` (default: an
OpenAI-style ``{"error": {...}}`` JSON, or a small HTML page if
``content_type`` is ``text/html``), ``Content-Length`` and ``Scenario.headers``.

``GET /v1/models`` answers an OpenAI-style list (``{"object": "list", "data":
[{"id", "object": "model", "created", "owned_by"}]}``) built from
``server.models``: ids as strings, or dicts sent as they are (leave out
``created`` or ``owned_by`` to mimic LM Studio and llama.cpp). By default it
lists gpt-4o-mini, llama3.2:3b and qwen3:8b. ``server.fail_models(status, body)`` makes it fail
like an error scenario (``content_type="text/html"`` for a page); a ``status``
of 200 with a ``body`` answers that body instead of a list. It never consumes
a chat scenario.

Any other path than these two gets a 404 JSON error (and is recorded in
``requests`` but does not consume a scenario).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "Scenario"]

CHAT_PATH = "/v1/chat/completions"
_POLL_STEP = 0.005  # seconds; granularity of interruptible sleeps


@dataclass
class Scenario:
    content: str = ""  # the assistant text to stream (usually persona JSON)
    status: int = 200  # non-200 -> error response, no stream
    error_body: str | None = None  # body for errors; default OpenAI-style JSON
    content_type: str | None = None  # e.g. "text/html" for an HTML error page
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "1"}
    first_token_delay: float = 0.0  # seconds before the first content chunk
    token_delay: float = 0.0  # seconds between chunks
    chunk_chars: int = 4  # how content is cut into chunks; or provide `chunks`
    chunks: list[str] | None = None  # explicit chunks, overrides chunk_chars
    stall_after: int | None = None  # after N content chunks, stop sending and wait
    stall_seconds: float = 30.0
    cut_after: int | None = None  # after N content chunks, close the connection abruptly
    finish_reason: str = "stop"  # "length" etc.
    refusal: str | None = None  # stream delta.refusal chunks instead of content
    usage: bool = False  # send a final usage chunk
    reasoning: list[str] = field(default_factory=list)  # reasoning deltas streamed before any content
    reasoning_key: str = "reasoning_content"  # llama.cpp / DeepSeek; vLLM and Ollama use "reasoning"
    reasoning_delay: float = 0.0  # seconds before each reasoning delta
    reasoning_tokens: int = 0  # reported in usage.completion_tokens_details (hidden reasoning, like OpenAI's)
    raw_events: list[str] = field(default_factory=list)  # SSE lines sent verbatim after the role chunk (dialects)
    error_event: dict[str, Any] | None = None  # after the content: a data event {"error": ...} instead of a finish
    finish_error: dict[str, Any] | None = None  # OpenRouter: finish_reason "error" with this error on the choice
    # ----- servers13 (tests/test_servers.py): dialect knobs -----
    usage_extra: dict[str, Any] = field(
        default_factory=dict
    )  # keys merged into the usage object (DeepSeek, OpenRouter)

    def pieces(self) -> list[str]:
        """The deltas to send, in order (refusal text if ``refusal`` is set)."""
        if self.chunks is not None:
            return list(self.chunks)
        text = self.refusal if self.refusal is not None else self.content
        step = max(1, self.chunk_chars)
        return [text[i : i + step] for i in range(0, len(text), step)]


# --------------------------------------------------------------------------
# internals


class _Abort(Exception):
    """Unwind the current response (client gone, server stopping, or cut)."""


_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: test. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: (
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def _error_json(status: int, message: str | None = None) -> str:
    default = _DEFAULT_ERRORS.get(status)
    if default is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        default = (phrase, "server_error" if status >= 500 else "invalid_request_error", None)
    msg, typ, code = default
    return json.dumps({"error": {"message": message or msg, "type": typ, "param": None, "code": code}})


def _html_error(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Never print tracebacks: client hang-ups are expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # TCP_NODELAY: each chunk leaves immediately
    server: _Server

    # ---- plumbing ---------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.fake._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.fake._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeOpenAIServer:
        return self.server.fake

    def _client_gone(self, timeout: float = 0.0) -> bool:
        """True if the peer closed (or reset) the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], timeout)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        try:
            data = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if data:
            # Unexpected bytes (e.g. a pipelined request): not a hang-up.  Sleep so
            # the readable socket does not turn this into a busy loop.
            time.sleep(timeout)
            return False
        return True

    def _check(self) -> None:
        if self.fake._stopping.is_set():
            raise _Abort
        if self._client_gone():
            self.fake._note_disconnect()
            raise _Abort

    def _sleep(self, seconds: float) -> None:
        """Sleep, but notice a hang-up or server stop within ~_POLL_STEP."""
        deadline = time.monotonic() + seconds
        while True:
            if self.fake._stopping.is_set():
                raise _Abort
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._client_gone(min(remaining, _POLL_STEP)):
                self.fake._note_disconnect()
                raise _Abort

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            self.fake._note_disconnect()
            raise _Abort from exc
        except OSError as exc:
            raise _Abort from exc

    def _write_chunk(self, data: bytes) -> None:
        self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_simple(self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        raw = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._write(raw)

    # ---- routing ----------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _route(self) -> None:
        raw = self._read_body()
        try:
            body: Any = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = raw.decode("utf-8", "replace"), True
        path = self.path.split("?", 1)[0]
        self.fake._record(
            {
                "method": self.command,
                "path": path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        try:
            if _answer_models(self, path):  # GET /v1/models: see the block at the end of this file
                return
            if self.command != "POST" or path != CHAT_PATH:
                msg = f"Invalid URL ({self.command} {path})"
                self._send_simple(404, _error_json(404, msg), "application/json")
                return
            if bad_json or not isinstance(body, dict):
                self._send_simple(
                    400, _error_json(400, "We could not parse the JSON body of your request."), "application/json"
                )
                return
            routed = self.fake.route(body) if self.fake.route is not None else None
            self._chat(body, routed or self.fake._next_scenario())
        except _Abort:
            self._hang_up()

    do_POST = _route
    do_GET = _route
    do_PUT = _route
    do_PATCH = _route
    do_DELETE = _route

    # ---- chat completions -------------------------------------------------

    def _chat(self, body: dict[str, Any], sc: Scenario) -> None:
        if sc.status != 200:
            self._sleep(sc.first_token_delay)  # an error can be slow to come too
            ctype = sc.content_type or "application/json"
            if sc.error_body is not None:
                text = sc.error_body
            elif "html" in ctype:
                text = _html_error(sc.status)
            else:
                text = _error_json(sc.status)
            self._send_simple(sc.status, text, ctype, sc.headers)
            return
        if body.get("stream"):
            self._stream(body, sc)
        else:
            self._complete(body, sc)

    def _usage(self, body: dict[str, Any], n_chunks: int, sc: Scenario) -> dict[str, Any]:
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [] if isinstance(m, dict))
        prompt_tokens = max(1, prompt_chars // 4)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": n_chunks,
            "total_tokens": prompt_tokens + n_chunks,
            "completion_tokens_details": {"reasoning_tokens": sc.reasoning_tokens},
        }

    def _stream(self, body: dict[str, Any], sc: Scenario) -> None:
        pieces = sc.pieces()
        model = str(body.get("model", "gpt-fake"))
        want_usage = sc.usage or bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            obj = dict(base)
            obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            if want_usage:
                obj["usage"] = None
            return b"data: " + _dumps(obj) + b"\n\n"

        key = "refusal" if sc.refusal is not None else "content"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in sc.headers.items():
            self.send_header(name, value)
        self.end_headers()  # the headers are flushed here

        if key == "refusal":
            self._write_chunk(chunk({"role": "assistant", "content": None, "refusal": ""}))
        else:
            self._write_chunk(chunk({"role": "assistant", "content": "", "refusal": None}))

        for line in sc.raw_events:
            self._write_chunk(line.encode("utf-8") + b"\n\n")

        for thought in sc.reasoning:
            self._sleep(sc.reasoning_delay)
            self._check()
            self._write_chunk(chunk({"content": None, sc.reasoning_key: thought}))

        for i in range(len(pieces) + 1):
            if i == sc.stall_after:
                self._sleep(sc.stall_seconds)
            if i == sc.cut_after:
                raise _Abort  # -> _hang_up(): connection closed mid-body
            if i == len(pieces):
                break
            self._sleep(sc.first_token_delay if i == 0 else sc.token_delay)
            self._check()
            self._write_chunk(chunk({key: pieces[i]}))
            self.fake._count_chunk()

        usage = self._usage(body, len(pieces), sc) if want_usage else None
        # ----- servers13 (tests/test_servers.py): dialect knobs -----
        if usage is not None and sc.usage_extra:
            usage = {**usage, **sc.usage_extra}
        self._end_stream(sc, base, chunk({}, sc.finish_reason), usage)

    def _end_stream(self, sc: Scenario, base: dict[str, Any], finish: bytes, usage: dict[str, Any] | None) -> None:
        """The stream's last events: a finish (and usage), or an error in one of the shapes servers use."""
        if sc.error_event is not None:
            self._write_chunk(b"data: " + _dumps({"error": sc.error_event}) + b"\n\n")
        elif sc.finish_error is not None:
            obj = dict(base)
            obj["choices"] = [{"index": 0, "delta": {}, "finish_reason": "error", "error": sc.finish_error}]
            self._write_chunk(b"data: " + _dumps(obj) + b"\n\n")
        else:
            self._write_chunk(finish)
            if usage is not None:
                obj = dict(base)
                obj["choices"] = []
                obj["usage"] = usage
                self._write_chunk(b"data: " + _dumps(obj) + b"\n\n")
        self._write_chunk(b"data: [DONE]\n\n")
        self._write(b"0\r\n\r\n")

    def _complete(self, body: dict[str, Any], sc: Scenario) -> None:
        pieces = sc.pieces()
        if sc.stall_after is not None:
            self._sleep(sc.stall_seconds)
        if sc.cut_after is not None:
            raise _Abort
        self._sleep(sc.first_token_delay + sc.token_delay * max(0, len(pieces) - 1))
        self._check()
        text = "".join(pieces)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if sc.refusal is not None:
            message["refusal"] = text
        else:
            message["content"] = text
        resp = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "gpt-fake")),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": sc.finish_reason}],
            "usage": self._usage(body, len(pieces), sc),
            "system_fingerprint": "fp_fake",
        }
        self._send_simple(200, json.dumps(resp, ensure_ascii=False), "application/json", sc.headers)


# --------------------------------------------------------------------------
# public API


class FakeOpenAIServer:
    """Loopback OpenAI chat-completions server with scripted scenarios."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._scenarios: list[Scenario] = [Scenario()]
        self._next = 0
        self._chunks = 0
        self._conns: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[dict[str, Any]] = []
        self.disconnects: list[float] = []
        self.route: Callable[[dict[str, Any]], Scenario | None] | None = None
        """Picks a chat request's scenario from its body (parallel requests arrive in any order); None: the script's."""
        self.base_url = ""

    # ---- lifecycle ----

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        port = httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # stalled/sleeping responses abort within ~_POLL_STEP
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wake handlers blocked reading a keep-alive request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- scripting & inspection ----

    def script(self, *scenarios: Scenario) -> None:
        """Each chat request takes the next scenario; the last one repeats."""
        if not scenarios:
            raise ValueError("script() needs at least one Scenario")
        with self._lock:
            self._scenarios = list(scenarios)
            self._next = 0

    def wait_disconnect(self, timeout: float, count: int = 1) -> bool:
        """Block until at least ``count`` client hang-ups were noticed."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: len(self.disconnects) >= count, timeout)

    def chunks_sent(self) -> int:
        """Streamed content (or refusal) chunks written, in total."""
        with self._lock:
            return self._chunks

    # ---- called from handler threads ----

    def _next_scenario(self) -> Scenario:
        with self._lock:
            sc = self._scenarios[min(self._next, len(self._scenarios) - 1)]
            self._next += 1
            return sc

    def _record(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(request)

    def _note_disconnect(self) -> None:
        now = time.monotonic()
        if self._stopping.is_set():
            return  # our own stop() closed the socket: not a client hang-up
        with self._disconnected:
            self.disconnects.append(now)
            self._disconnected.notify_all()

    def _count_chunk(self, n: int = 1) -> None:
        with self._lock:
            self._chunks += n

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    # ---- GET /v1/models: the model list (issue 13, item 6) ----------------

    models: list[str | dict[str, Any]] | tuple[str, ...] = ("gpt-4o-mini", "llama3.2:3b", "qwen3:8b")
    """What ``GET /v1/models`` lists, in this order: ids, or whole entries as dicts (an empty list lists none)."""
    models_failure: Scenario | None = None
    """Set by :meth:`fail_models`: the answer to give instead of the list."""

    def fail_models(self, status: int, body: str | None = None, *, content_type: str | None = None) -> None:
        """Make ``GET /v1/models`` answer ``status`` with ``body`` (default: an OpenAI-style error, or a list at 200)."""
        self.models_failure = Scenario(status=status, error_body=body, content_type=content_type)


MODELS_PATH = "/v1/models"
MODELS_CREATED = 1_715_000_000  # 2024-05-06 UTC: a fixed date, so tables and snapshots do not move


def _model_entry(model: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    return {"id": model, "object": "model", "created": MODELS_CREATED, "owned_by": "library"}


def _answer_models(handler: _Handler, path: str) -> bool:
    """Answer ``GET /v1/models`` (True), or leave the request to the chat route (False)."""
    if handler.command != "GET" or path != MODELS_PATH:
        return False
    fake = handler.fake
    failure = fake.models_failure
    if failure is not None and failure.status != 200:
        ctype = failure.content_type or "application/json"
        if failure.error_body is not None:
            text = failure.error_body
        else:
            text = _html_error(failure.status) if "html" in ctype else _error_json(failure.status)
        handler._send_simple(failure.status, text, ctype, failure.headers)
        return True
    if failure is not None and failure.error_body is not None:
        handler._send_simple(200, failure.error_body, failure.content_type or "application/json")
        return True
    listed = [_model_entry(m) for m in fake.models]
    handler._send_simple(200, json.dumps({"object": "list", "data": listed}), "application/json")
    return True
