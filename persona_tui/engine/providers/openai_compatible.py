"""The real model path: the official openai client against OpenAI or any compatible server.

The answer is streamed with a strict ``json_schema`` response format, so the
user sees tokens as they come and the result validates against
:class:`~persona_tui.models.Persona`. Retries are the pipeline's (so
each one can be shown), never the client's: ``max_retries=0``.

Every failure is turned into a :class:`GenerationError` with our own sentence;
a server's text is only quoted after any copy of the API key is removed.

``openai`` takes about 300 ms to import, so it is imported, and the client
built, on first use (or ahead of it by :meth:`OpenAIProvider.prepare`, which
the app runs in a thread once its first screen is up): the app's first frame
never waits for it.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from persona_tui.config import DEFAULT_MODEL, Settings, SettingsError
from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.providers.base import Capabilities, PromptSpec, ProviderInfo
from persona_tui.engine.providers.parts import AnswerPart, ReasoningPart, StreamPart, UsagePart
from persona_tui.models import Usage

if TYPE_CHECKING:
    import openai

OPENAI_HOST = "api.openai.com"
SERVER_TEXT_MAX = 200
KEY_ENV_VAR = "OPENAI_API_KEY"
SETUP_HINT = f"Set {KEY_ENV_VAR} (or OPENAI_BASE_URL for a local server) to use a real model."


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
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self._secret = api_key or ""
        self._timeouts = (read_timeout, connect_timeout)
        self._client: openai.AsyncOpenAI | None = None
        self._building = threading.Lock()

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

    @property
    def endpoint(self) -> str:
        if not self.base_url:
            return OPENAI_HOST
        parts = urlsplit(self.base_url)
        return parts.netloc.rsplit("@", 1)[-1] or self.base_url

    @property
    def label(self) -> str:
        return f"{self.model} at {self.endpoint}"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        client = self._get_client()
        import openai  # imported by _get_client; this only binds the name

        ending = _Ending()
        try:
            stream = await client.chat.completions.create(
                model=self.model,
                messages=cast(Any, spec.messages),
                stream=True,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "persona", "strict": True, "schema": spec.schema},
                },
                temperature=openai.omit if self.temperature is None else self.temperature,
                stream_options={"include_usage": True} if self.base_url is None else openai.omit,
            )
            async with stream:
                async for chunk in stream:
                    for part in ending.parts_of(chunk):
                        yield part
        except openai.APIError as exc:
            raise self._explain(exc) from None
        self._check_ending(ending)

    def _check_ending(self, ending: _Ending) -> None:
        """A stream that ended without a clean ``stop`` is explained: refused, cut at a limit, filtered or dropped."""
        if ending.refusal:
            raise GenerationError(
                FailureKind.REFUSAL,
                f"The model refused to write this persona: {self._clean(''.join(ending.refusal))}",
                "Reword the description and try again.",
            )
        if ending.finish_reason == "length":
            raise GenerationError(
                FailureKind.LENGTH,
                "The model stopped at its length limit before the persona was complete.",
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

    def _clean(self, text: str) -> str:
        """Server text fit to quote: no key, one line, bounded."""
        if self._secret:
            text = text.replace(self._secret, "[key]")
        text = " ".join(text.split())
        return text if len(text) <= SERVER_TEXT_MAX else text[: SERVER_TEXT_MAX - 1] + "…"

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
        if not isinstance(exc, openai.APIStatusError):
            return GenerationError(
                FailureKind.SERVER_ERROR,
                f"{where} sent an answer the client could not read.",
                "Try again; if it persists, check that the server is OpenAI-compatible.",
                retryable=True,
            )
        status = exc.status_code
        server_text = self._clean(_server_message(exc))
        if status == 401:
            return GenerationError(
                FailureKind.AUTH,
                f"The API key was rejected by {where}.",
                f"Set {KEY_ENV_VAR} to a valid key, or run with --provider offline.",
            )
        if status == 403:
            return GenerationError(
                FailureKind.FORBIDDEN,
                f"This API key has no access to {self.model} at {where}.",
                "Check the key's project and permissions, or choose another model with --model.",
            )
        if status == 404:
            return GenerationError(
                FailureKind.NOT_FOUND,
                f"The model {self.model} was not found at {where}.",
                "Check the model name (--model or PERSONA_TUI_MODEL) and the base URL.",
            )
        if status == 429:
            if _error_code(exc) == "insufficient_quota":
                return GenerationError(
                    FailureKind.QUOTA,
                    f"The account behind this key has no quota left at {where}.",
                    "Check the plan and billing, or run with --provider offline.",
                )
            return GenerationError(
                FailureKind.RATE_LIMITED,
                f"Rate limited by {where}.",
                "Wait a moment, or lower the request rate.",
                retryable=True,
                retry_after=retry_after_seconds(exc.response.headers.get("retry-after")),
            )
        if status >= 500:
            return GenerationError(
                FailureKind.SERVER_ERROR,
                f"{where} had a server error ({status}).",
                "This is usually temporary; try again in a moment.",
                retryable=True,
            )
        detail = f": {server_text}" if server_text else "."
        return GenerationError(
            FailureKind.BAD_REQUEST,
            f"{where} refused the request ({status}){detail}",
            "Check that the model supports structured outputs (json_schema), or try another model.",
        )


class _Ending:
    """What a stream says about how it ends, gathered chunk by chunk while its parts go out."""

    def __init__(self) -> None:
        self.refusal: list[str] = []
        self.finish_reason: str | None = None

    def parts_of(self, chunk: Any) -> list[StreamPart]:
        parts: list[StreamPart] = []
        if chunk.usage is not None:
            parts.append(UsagePart(_usage(chunk.usage)))
        for choice in chunk.choices:
            delta = choice.delta
            if delta.refusal:
                self.refusal.append(delta.refusal)
            reasoning = _reasoning_text(delta)
            if reasoning:
                parts.append(ReasoningPart(reasoning))
            if delta.content:
                parts.append(AnswerPart(delta.content))
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return parts


def _reasoning_text(delta: Any) -> str:
    """Reasoning streamed beside the answer: ``reasoning_content`` (llama.cpp, DeepSeek), ``reasoning`` (vLLM, Ollama).

    The client keeps fields it does not know as extra attributes of the delta.
    """
    for key in ("reasoning_content", "reasoning"):
        value = getattr(delta, key, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "completion_tokens_details", None)
    reasoning = getattr(details, "reasoning_tokens", None) or 0
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        reasoning_tokens=reasoning,
    )


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return ""


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            code = inner.get("code") or inner.get("type")
            return str(code) if code else None
    return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header, given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:
        return None
    return max(seconds, 0.0)


class OpenAIOptions(BaseModel):
    """The openai provider's options (settings of the same names)."""

    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    base_url: str | None = None
    """Any OpenAI-compatible server; None means OpenAI itself."""
    temperature: float | None = 0.9


def _build(options: BaseModel, settings: Settings) -> OpenAIProvider:
    assert isinstance(options, OpenAIOptions)
    if not (settings.api_key or options.base_url):
        raise SettingsError("The openai provider needs a key or a server. " + SETUP_HINT)
    return OpenAIProvider(
        model=options.model,
        api_key=settings.api_key,
        base_url=options.base_url,
        connect_timeout=settings.connect_timeout,
        read_timeout=max(settings.first_token_timeout, settings.idle_timeout) + 5.0,
        temperature=options.temperature,
    )


PROVIDER = ProviderInfo(
    name="openai",
    title="OpenAI, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio)",
    build=_build,
    options=OpenAIOptions,
    key_env_var=KEY_ENV_VAR,
    capabilities=Capabilities(json_schema=True, reasoning=True),
    setup_hint=SETUP_HINT,
    ready=lambda settings: bool(settings.api_key or settings.base_url),
    auto_rank=10,
)
"""Registered in ``pyproject.toml`` under the ``persona_tui.providers`` entry points."""
