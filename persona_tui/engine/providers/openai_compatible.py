"""The real model path: the official openai client against OpenAI or any compatible server.

The answer is streamed, so the user sees tokens as they come; reasoning the
server streams beside the answer (``reasoning``, ``reasoning_content``, or
``<think>`` blocks inside it) is passed on as reasoning, and usage as usage.
Retries are the pipeline's (so each one can be shown), never the client's:
``max_retries=0``.

The client makes the request (``with_streaming_response``: its auth, headers,
timeouts, connection pool and status errors), but the body is read here
(:mod:`.sse`, then jiter into plain dicts): the client's typed stream builds a
pydantic chunk per token, ten times the cost of the read itself. What the
typed stream did is kept: ``[DONE]`` ends it and the rest of the body is read
so the connection is reused, an ``{"error": ...}`` event fails it, data that is
not JSON is unreadable, a timeout or a lost connection is raised as the
client's own error.

Servers differ in what they accept. The request starts from the strongest
form (strict ``json_schema``, a temperature, usage asked for) and steps down
one refusal at a time (:mod:`.adapt`), remembering per server and model in the
data dir what was refused, so the next run starts from what works.

Every failure is turned into a :class:`GenerationError` with our own sentence
(:mod:`.openai_errors`); a server's text is only quoted after any copy of the
API key is removed.

``openai`` takes about 300 ms to import, so it is imported, and the client
built, on first use (or ahead of it by :meth:`OpenAIProvider.prepare`, which
the app runs in a thread once its first screen is up): the app's first frame
never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from jiter import from_json
from pydantic import BaseModel, Field

from persona_tui.config import DEFAULT_MODEL, Settings, SettingsError
from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.providers.adapt import (
    OPTIONAL_PARAMS,
    Format,
    ServerNotes,
    Step,
    step_for,
    takes_only_default_temperature,
    without_keywords,
)
from persona_tui.engine.providers.base import Capabilities, ModelEntry, PromptSpec, ProviderInfo
from persona_tui.engine.providers.openai_errors import (
    KEY_ENV_VAR,
    ServerError,
    clean,
    explain_status,
    explain_stream_error,
    retry_after_seconds,
)
from persona_tui.engine.providers.parts import (
    AnswerPart,
    HiddenReasoning,
    NoticePart,
    ReasoningPart,
    StreamPart,
    UsagePart,
)
from persona_tui.engine.providers.sse import SSEReader
from persona_tui.engine.providers.think import ThinkSplitter
from persona_tui.models import Usage
from persona_tui.storage import SERVERS_FILE, NotesFile

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIProvider", "retry_after_seconds"]

log = logging.getLogger(__name__)

OPENAI_HOST = "api.openai.com"
SETUP_HINT = f"Set {KEY_ENV_VAR} (or OPENAI_BASE_URL for a local server) to use a real model."
SCHEMA_IN_PROMPT = "Reply with only a JSON object that matches this JSON schema:\n"


class OpenAIProvider:
    """Streams persona JSON from a chat-completions endpoint."""

    name = "openai"
    is_ai = True

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None,
        connect_timeout: float = 10.0,
        read_timeout: float = 90.0,
        temperature: float | None = 0.9,
        notes_file: NotesFile | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self._secret = api_key or ""
        self._timeouts = (read_timeout, connect_timeout)
        self._client: openai.AsyncOpenAI | None = None
        self._building = threading.Lock()
        self._notes_file = notes_file
        self._notes: ServerNotes | None = None
        self._told = False

    def prepare(self) -> None:
        """Import openai and build the client now (safe to run in a thread), so the first request does not wait."""
        self._get_client()

    def _get_client(self) -> openai.AsyncOpenAI:
        with self._building:
            if self._client is None:
                import openai

                read_timeout, connect_timeout = self._timeouts
                # A local server (Ollama, vLLM, llama.cpp) needs no key, but the client insists on one.
                self._client = openai.AsyncOpenAI(
                    api_key=self._secret or "no-key-needed",
                    base_url=self.base_url,
                    max_retries=0,
                    timeout=openai.Timeout(read_timeout, connect=connect_timeout),
                )
            return self._client

    def batch_client(self) -> openai.AsyncOpenAI:
        """The client, for the Batch API (files and batches)."""
        return self._get_client()

    def scrub(self, text: str) -> str:
        """A server's text, fit to quote (no key)."""
        return clean(text, self._secret)

    @property
    def endpoint(self) -> str:
        if not self.base_url:
            return OPENAI_HOST
        parts = urlsplit(self.base_url)
        return parts.netloc.rsplit("@", 1)[-1] or self.base_url

    @property
    def label(self) -> str:
        return f"{self.model} at {self.endpoint}"

    @property
    def thinks_hidden(self) -> bool:
        """OpenAI's reasoning models think before they answer and stream nothing meanwhile."""
        return takes_only_default_temperature(self.model)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    # ----- what the server accepts -----

    @property
    def _notes_key(self) -> str:
        return f"{self.endpoint}/{self.model}"

    async def notes(self) -> ServerNotes:
        """What this server refused before for this model (read once from the data dir)."""
        if self._notes is None:
            saved: dict[str, dict[str, Any]] = {}
            if self._notes_file is not None:
                saved = await asyncio.to_thread(self._notes_file.read)
            if self._notes is None:  # parallel streams read at once: the first to finish sets the one shared copy
                self._notes = ServerNotes.from_json(saved.get(self._notes_key, {}))
        return self._notes

    async def _remember(self, notes: ServerNotes) -> None:
        if self._notes_file is None:
            return
        try:
            saved = await asyncio.to_thread(self._notes_file.read)
            saved[self._notes_key] = notes.to_json()
            await self._notes_file.write(saved)
        except OSError as exc:  # only a shortcut for the next run: this one goes on
            log.warning("could not save what %s refused: %s", self.endpoint, exc)

    def _request(self, spec: PromptSpec, notes: ServerNotes) -> dict[str, Any]:
        import openai

        request: dict[str, Any] = {"model": self.model, "messages": spec.messages, "stream": True}
        if not spec.schema:  # a conversation: plain text, nothing to hold the answer to
            pass
        elif notes.format is Format.SCHEMA:
            schema = without_keywords(cast(dict[str, Any], spec.schema), notes.schema_drops)
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "persona", "strict": True, "schema": schema},
            }
        else:
            request["messages"] = _with_schema(spec)
            if notes.format is Format.OBJECT:
                request["response_format"] = {"type": "json_object"}
        sends_temperature = self.temperature is not None and not self.thinks_hidden
        if sends_temperature and "temperature" not in notes.dropped:
            request["temperature"] = self.temperature
        if "stream_options" not in notes.dropped:
            request["stream_options"] = {"include_usage": True}
        return {key: (openai.omit if value is None else value) for key, value in request.items()}

    # ----- the stream -----

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        """The parts of one answer, read from the raw SSE body.

        The client makes the request (auth, headers, timeouts, connection pool) and raises its errors for a
        failed status, as ever; the body is then read here, each event parsed by jiter into plain dicts, not
        into the client's pydantic chunks (which cost ten times the read itself). Leaving the ``async with``
        (the end, an error, or the consumer closing this generator on cancel) closes the HTTP response at once.
        """
        client = self._get_client()
        import openai  # imported by _get_client; this only binds the name

        notes = await self.notes()
        if not self._told and not notes.empty:
            self._told = True  # said once per run: the user knows why the request differs
            yield NoticePart(f"As {self.endpoint} taught before, {self.model} is {notes.summary()}.", from_server=False)
        ending = _Ending(ThinkSplitter(prose=not spec.schema))
        request = self._request(spec, notes)
        sent = ServerNotes.from_json(notes.to_json())  # what this request was built from
        try:
            async with client.chat.completions.with_streaming_response.create(**request) as response:
                if self.thinks_hidden:
                    yield HiddenReasoning()
                async with contextlib.aclosing(_parts_of_body(response.http_response, ending)) as body:
                    async for parts in body:
                        for part in parts:
                            yield part
        except openai.APIStatusError as exc:
            raise await self._refused(exc, spec, notes, sent, _optional_sent(request)) from None
        except openai.APIError as exc:
            raise self._explain(exc) from None
        except _ErrorEvent as event:  # ``data: {"error": ...}``: the server failed after HTTP 200
            raise self._stream_error(event.body) from None
        except ValueError:  # a data line that is not JSON (a proxy's keep-alive text): the stream cannot be read on
            raise self._unreadable() from None
        for part in ending.flush():
            yield part
        self._check_ending(ending, "persona" if spec.schema else "answer")

    async def _refused(
        self,
        exc: openai.APIStatusError,
        spec: PromptSpec,
        notes: ServerNotes,
        sent: ServerNotes,
        optional: frozenset[str],
    ) -> GenerationError:
        """A failed answer: a step down when the server refused something we can do without, else explained.

        Streams in parallel meet the same refusal: the step is judged against the request that was sent, and
        a stream whose refusal another stream has already answered just goes again with what works now.
        """
        error = ServerError.from_body(exc.status_code, exc.body)
        if exc.status_code in (400, 422):
            step = step_for(error.message, error.param, sent, cast(dict[str, Any], spec.schema), optional)
            if step is not None and notes.to_json() != sent.to_json():
                return GenerationError(
                    FailureKind.BAD_REQUEST,
                    f"Sent again the way {self.endpoint} now takes it.",
                    retryable=True,
                    adapted=True,
                )
            if step is not None:
                before = notes.format
                step.apply(notes)
                self._told = True  # learned in this run and said as it happened: no "as taught before" later
                await self._remember(notes)
                return GenerationError(
                    FailureKind.BAD_REQUEST,
                    self._step_sentence(step, before, error),
                    retryable=True,
                    adapted=True,
                )
        return explain_status(
            error,
            where=self.endpoint,
            model=self.model,
            secret=self._secret,
            retry_after=retry_after_seconds(exc.response.headers.get("retry-after")),
        )

    def _step_sentence(self, step: Step, before: Format, error: ServerError) -> str:
        if step.param == "temperature":
            return f"{self.model} takes only its default temperature; sent without it."
        if step.param:
            return f"{self.endpoint} refused {step.param}; sent without it."
        if step.keyword:
            return f"{self.endpoint} refused the schema keyword {step.keyword}; sent without it."
        assert step.format is not None
        why = clean(error.message, self._secret)
        reason = f' ("{why}")' if why else ""
        return f"{self.endpoint} refused {before.label}{reason}; asking through {step.format.label} instead."

    def _check_ending(self, ending: _Ending, what: str = "persona") -> None:
        """A stream that ended without a clean ``stop`` is explained: refused, cut at a limit, filtered or dropped."""
        if ending.error is not None:
            raise explain_stream_error(ending.error, where=self.endpoint, secret=self._secret)
        if ending.refusal:
            raise GenerationError(
                FailureKind.REFUSAL,
                f"The model refused to write this {what}: {clean(''.join(ending.refusal), self._secret)}",
                "Reword the description and try again.",
            )
        if ending.finish_reason == "length":
            raise GenerationError(
                FailureKind.LENGTH,
                f"The model stopped at its length limit before the {what} was complete.",
                "Try again, or use a model with a larger output limit.",
            )
        if ending.finish_reason == "content_filter":
            raise GenerationError(
                FailureKind.CONTENT_FILTER,
                "The model's content filter stopped the answer.",
                "Reword the description and try again.",
            )
        if ending.finish_reason is None:
            raise GenerationError(
                FailureKind.INCOMPLETE,
                f"The stream from {self.endpoint} ended before the model finished.",
                "This is usually a network or server hiccup; try again.",
                retryable=True,
            )

    def _explain(self, exc: openai.APIError) -> GenerationError:
        import openai

        where = self.endpoint
        if isinstance(exc, openai.APITimeoutError):
            return GenerationError(
                FailureKind.TIMEOUT,
                f"{where} did not answer in time.",
                "Check the network, or raise --connect-timeout / the read timeouts.",
                retryable=True,
            )
        if isinstance(exc, openai.APIConnectionError):
            return GenerationError(
                FailureKind.CONNECTION,
                f"Could not connect to {where}.",
                "Check the network, and that OPENAI_BASE_URL points at a running server.",
                retryable=True,
            )
        return self._stream_error(exc.body)

    def _stream_error(self, body: object) -> GenerationError:
        if isinstance(body, dict):  # an error object inside a stream that began with HTTP 200
            return explain_stream_error(ServerError.from_body(0, body), where=self.endpoint, secret=self._secret)
        return self._unreadable()

    def _unreadable(self) -> GenerationError:
        return GenerationError(
            FailureKind.SERVER_ERROR,
            f"{self.endpoint} sent an answer the client could not read.",
            "Try again; if it persists, check that the server is OpenAI-compatible.",
            retryable=True,
        )

    # ----- the server's models (GET /models), for `persona-tui models` and the app's picker -----

    LIST_TIMEOUT = 20.0
    """Seconds for the whole list: a list is small, and a user is waiting on it (a generation's read timeout is not)."""

    async def list_models(self) -> list[ModelEntry]:
        """The models the server serves, through the client's ``models.list()`` (every page).

        Every failure becomes one sentence and a hint: a server that cannot be reached
        names OPENAI_BASE_URL, one without a model list (404) most often means a base URL
        without its ``/v1``.
        """
        client = self._get_client()
        import openai  # imported by _get_client; this only binds the name

        timeout = openai.Timeout(self.LIST_TIMEOUT, connect=self._timeouts[1])
        try:
            return [entry for raw in [m async for m in client.models.list(timeout=timeout)] if (entry := _listed(raw))]
        except openai.APIStatusError as exc:
            raise self._list_refused(exc) from None
        except openai.APIConnectionError as exc:
            raise self._explain(exc) from None
        except (openai.APIError, TypeError, ValueError, AttributeError):  # a 200 that is not a model list
            raise GenerationError(
                FailureKind.SERVER_ERROR,
                f"{self.endpoint} answered, but not with a list of models.",
                "Check that OPENAI_BASE_URL is the server's OpenAI-compatible address (it usually ends in /v1).",
            ) from None

    def _list_refused(self, exc: openai.APIStatusError) -> GenerationError:
        error = ServerError.from_body(exc.status_code, exc.body)
        where = self.endpoint
        if exc.status_code == 404:
            path = urlsplit(self.base_url or "").path.rstrip("/")
            return GenerationError(
                FailureKind.NOT_FOUND,
                f"{where} has no list of models at {path}/models (404).",
                "Name the model with --model; this server may not list its models."
                if path.endswith("/v1")
                else "Check that the base URL (OPENAI_BASE_URL, --base-url) ends in /v1, like http://localhost:11434/v1.",
            )
        if exc.status_code in (401, 429) or exc.status_code >= 500:
            return explain_status(
                error,
                where=where,
                model=self.model,
                secret=self._secret,
                retry_after=retry_after_seconds(exc.response.headers.get("retry-after")),
            )
        said = clean(error.message, self._secret)
        return GenerationError(
            FailureKind.FORBIDDEN if exc.status_code == 403 else FailureKind.BAD_REQUEST,
            f"{where} refused to list its models ({exc.status_code})" + (f': "{said}"' if said else "."),
            f"Check {KEY_ENV_VAR} and OPENAI_BASE_URL, or give the model by name with --model.",
        )


def _listed(raw: Any) -> ModelEntry | None:
    """One entry of a model list, read leniently: servers leave out ``created`` or ``owned_by``, or send odd types."""
    model_id = getattr(raw, "id", None)
    if not isinstance(model_id, str) or not model_id.strip():
        return None
    owner = getattr(raw, "owned_by", None)
    created = getattr(raw, "created", None)
    when = None
    if isinstance(created, int | float) and not isinstance(created, bool) and 0 < created < 1e11:
        when = datetime.fromtimestamp(created, UTC)
    return ModelEntry(model_id, owner if isinstance(owner, str) and owner.strip() else None, when)


def _optional_sent(request: dict[str, Any]) -> frozenset[str]:
    """The optional parameters a request really carried (only those can be what a server refused)."""
    return frozenset(name for name in OPTIONAL_PARAMS if name in request)


def _with_schema(spec: PromptSpec) -> list[dict[str, str]]:
    """The messages with the schema told in the system message, for servers that cannot be given it."""
    messages = [dict(m) for m in spec.messages]
    told = SCHEMA_IN_PROMPT + json.dumps(spec.schema, separators=(",", ":"))
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{messages[0]['content']}\n\n{told}"
    else:
        messages.insert(0, {"role": "system", "content": told})
    return messages


class _ErrorEvent(Exception):
    """An event whose data is an error object (``{"error": ...}``), as the client's own stream raises it."""

    def __init__(self, body: object) -> None:
        super().__init__("error event")
        self.body = body


def _read_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """What reading the body can raise for a timeout, and for a lost connection, in the client's own terms."""
    try:  # openai 3 runs on httpx2 and says which exceptions it maps
        from openai._httpx2 import request_exceptions, timeout_exceptions
    except ImportError:  # pragma: no cover - openai 2 runs on httpx
        import httpx

        return (httpx.TimeoutException,), (httpx.RequestError,)
    return timeout_exceptions(), request_exceptions()


DRAIN_SECONDS = 0.1
"""How long the rest of a body after ``[DONE]`` is read for, so an HTTP/1.1 connection goes back to the pool."""


async def _drain(pieces: AsyncIterator[bytes], errors: tuple[type[BaseException], ...]) -> None:
    """Read what follows ``[DONE]`` (the end of the chunked body), as the client does, without waiting long."""
    with contextlib.suppress(TimeoutError, *errors):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in pieces:
                pass


async def _parts_of_body(body: Any, ending: _Ending) -> AsyncGenerator[list[StreamPart], None]:
    """The parts of each piece of a streamed body as it is read; a failed read raised as the client raises it."""
    import openai

    timeouts, failures = _read_errors()
    reader = SSEReader()
    pieces = body.aiter_bytes()
    try:
        async for raw in pieces:
            for data in reader.feed(raw):
                yield ending.parts_of(data)
            if reader.done:
                break
    except timeouts:
        raise openai.APITimeoutError(request=body.request) from None
    except failures:
        raise openai.APIConnectionError(request=body.request) from None
    if reader.done and body.http_version == "HTTP/1.1":
        await _drain(pieces, timeouts + failures)


class _Ending:
    """What a stream says about how it ends, gathered chunk by chunk while its parts go out."""

    def __init__(self, think: ThinkSplitter) -> None:
        self.think = think
        self.refusal: list[str] = []
        self.finish_reason: str | None = None
        self.error: ServerError | None = None

    def parts_of(self, data: bytes) -> list[StreamPart]:
        """The parts of one event's data; any shape a server sends (no choices, a null delta, extra keys) is fine.

        This runs once per token of every answer: jiter reads the bytes into plain dicts, and only the
        fields used are looked at. Data that is not JSON raises ValueError; an error object, _ErrorEvent.
        """
        chunk = from_json(data)
        if type(chunk) is not dict:
            raise ValueError("an event that is not a JSON object")
        parts: list[StreamPart] = []
        if chunk.get("error"):  # the client's stream raises for these too (before reading anything else)
            raise _ErrorEvent(chunk["error"])
        usage = chunk.get("usage")
        if usage is not None:
            parts.append(UsagePart(_usage(usage)))
        choices = chunk.get("choices")
        if choices and type(choices) is list:
            for choice in choices:
                if type(choice) is dict:
                    self._choice(choice, parts)
        return parts

    def _choice(self, choice: dict[str, Any], parts: list[StreamPart]) -> None:
        delta = choice.get("delta")
        if delta and type(delta) is dict:
            self._delta(delta, parts)
        if choice.get("finish_reason"):
            self._finish(choice)

    def _delta(self, delta: dict[str, Any], parts: list[StreamPart]) -> None:
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self.refusal.append(refusal)
        reasoning = _reasoning_text(delta)
        if reasoning:
            parts.append(ReasoningPart(reasoning))
        content = delta.get("content")
        if content and isinstance(content, str):
            if self.think.settled:
                parts.append(AnswerPart(content))
            else:
                parts += self.think.feed(content)

    def _finish(self, choice: dict[str, Any]) -> None:
        self.finish_reason = choice["finish_reason"]
        if self.finish_reason == "error":  # OpenRouter: the error rides on the choice
            self.error = ServerError.from_body(0, choice.get("error") or {})

    def flush(self) -> list[StreamPart]:
        return self.think.flush()


def _reasoning_text(delta: dict[str, Any]) -> str:
    """Reasoning streamed beside the answer: ``reasoning_content`` (llama.cpp, DeepSeek), ``reasoning`` (vLLM,
    Ollama)."""
    for key in ("reasoning_content", "reasoning"):
        value = delta.get(key)
        if value and isinstance(value, str):
            return value
    return ""


def _usage(usage: Any) -> Usage:
    """The usage object as sent (anything not an object counts nothing, as the client's typed stream read it)."""
    if type(usage) is not dict:
        usage = {}
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if type(details) is dict else None
    return Usage(
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=reasoning or 0,
    )


class OpenAIOptions(BaseModel):
    """The openai provider's options (settings of the same names)."""

    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    base_url: str | None = None
    """Any OpenAI-compatible server; None means OpenAI itself."""
    temperature: float | None = 0.9
    """None sends no temperature: the model's default."""


def _build(options: BaseModel, settings: Settings) -> OpenAIProvider:
    assert isinstance(options, OpenAIOptions)
    if not (settings.api_key or options.base_url):
        raise SettingsError("The openai provider needs a key or a server. " + SETUP_HINT)
    return OpenAIProvider(
        model=options.model,
        api_key=settings.api_key,
        base_url=options.base_url,
        connect_timeout=settings.connect_timeout,
        # The watchdog is the real limit; the client's own must never cut a model still thinking in hidden.
        read_timeout=max(settings.first_token_timeout, settings.idle_timeout, settings.thinking_timeout) + 5.0,
        temperature=options.temperature,
        notes_file=NotesFile.in_folder(settings.data_dir, SERVERS_FILE),
    )


PROVIDER = ProviderInfo(
    name="openai",
    title="OpenAI, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio)",
    build=_build,
    options=OpenAIOptions,
    key_env_var=KEY_ENV_VAR,
    capabilities=Capabilities(json_schema=True, reasoning=True, list_models=True),
    setup_hint=SETUP_HINT,
    ready=lambda settings: bool(settings.api_key or settings.base_url),
    auto_rank=10,
)
"""Registered in ``pyproject.toml`` under the ``persona_tui.providers`` entry points."""
