"""What an OpenAI-compatible server's errors mean, in one sentence and a hint that follows the cause.

A server's own words are quoted (after any copy of the key is removed, on one
line, long enough to keep its advice), because they often say exactly what to
do. The hint then follows the cause the status and the words point to: a key,
a model name, a quota, a context window, a parameter or a response format.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

from persona_tui.engine.errors import FailureKind, GenerationError

SERVER_TEXT_MAX = 600
"""Characters of a server's message quoted: enough for its advice, not a page of HTML."""
KEY_ENV_VAR = "OPENAI_API_KEY"


@dataclass(frozen=True, slots=True)
class ServerError:
    """An error as the server put it: status (0 inside a stream), message, code or type, parameter."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None

    @classmethod
    def from_body(cls, status: int, body: object) -> ServerError:
        """Read OpenAI's shape (``{"error": {"message", "code" or "type", "param"}}``) and the plain ones some
        servers use (LM Studio: ``{"error": "text"}``; others: the text alone)."""
        inner = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(inner, str):  # a gateway's HTML error page says nothing worth quoting
            return cls(status, "" if inner.lstrip().startswith("<") else inner)
        if not isinstance(inner, dict):
            return cls(status, "")
        message = inner.get("message")
        code = inner.get("code") or inner.get("type")
        param = inner.get("param")
        return cls(
            status,
            message if isinstance(message, str) else "",
            str(code) if code not in (None, "") else None,
            param if isinstance(param, str) else None,
        )

    def says(self, *words: str) -> bool:
        text = f"{self.message} {self.code or ''}".lower()
        return any(word in text for word in words)


def clean(text: str, secret: str) -> str:
    """Server text fit to quote: no key, one line, bounded."""
    if secret:
        text = text.replace(secret, "[key]")
    text = " ".join(text.split())
    return text if len(text) <= SERVER_TEXT_MAX else text[: SERVER_TEXT_MAX - 1] + "…"


def quoted(error: ServerError, secret: str) -> str:
    text = clean(error.message, secret)
    return f': "{text}"' if text else "."


def explain_status(
    error: ServerError, *, where: str, model: str, secret: str, retry_after: float | None
) -> GenerationError:
    """A failed HTTP answer (4xx or 5xx), explained by its cause."""
    said = quoted(error, secret)
    if error.status == 401 or error.says("api key", "api_key", "invalid_api_key", "authentication", "no connected db"):
        return GenerationError(
            FailureKind.AUTH,
            f"The API key was rejected by {where}" + ("." if error.status == 401 else said),
            f"Set {KEY_ENV_VAR} to a valid key, or run with --provider offline.",
        )
    if error.status == 403:
        return GenerationError(
            FailureKind.FORBIDDEN,
            f"This API key has no access to {model} at {where}{said}",
            "Check the key's project and permissions, or choose another model with --model.",
        )
    if error.status == 429 or error.says("insufficient_quota", "rate limit", "rate_limit"):
        return _too_many(error, where, said, retry_after)
    if error.status >= 500:
        return GenerationError(
            FailureKind.SERVER_ERROR,
            f"{where} had a server error ({error.status}){said}",
            "This is usually temporary; try again in a moment.",
            retryable=True,
        )
    return _refused(error, where=where, model=model, said=said)


def _too_many(error: ServerError, where: str, said: str, retry_after: float | None) -> GenerationError:
    if error.says("insufficient_quota", "quota", "billing", "credit"):
        return GenerationError(
            FailureKind.QUOTA,
            f"The account behind this key has no quota left at {where}{said}",
            "Check the plan and billing, or run with --provider offline.",
        )
    return GenerationError(
        FailureKind.RATE_LIMITED,
        f"Rate limited by {where}.",
        "Wait a moment, or lower the request rate.",
        retryable=True,
        retry_after=retry_after,
    )


def _refused(error: ServerError, *, where: str, model: str, said: str) -> GenerationError:
    """A 4xx that is not about the key, the quota or the rate: the request itself."""
    if error.status == 404 or error.says(
        "model_not_found", "does not exist", "not found", "no such model", "invalid model", "unknown model"
    ):
        return GenerationError(
            FailureKind.NOT_FOUND,
            f"The model {model} was not found at {where}{said}",
            "Check the model name (--model or PERSONA_TUI_MODEL; `persona-tui models` lists them) and the base URL.",
        )
    if error.says(
        "context_length", "context length", "context window", "maximum context", "too many tokens", "context size"
    ):
        return GenerationError(
            FailureKind.BAD_REQUEST,
            f"The request is longer than {model} can take at {where}{said}",
            "Shorten the description or the organization's notes, or choose a model with a larger context window.",
        )
    return GenerationError(
        FailureKind.BAD_REQUEST,
        f"{where} refused the request ({error.status}){said}",
        "The server's words above say what it refused; check the model name and the server's documentation.",
    )


def explain_stream_error(error: ServerError, *, where: str, secret: str) -> GenerationError:
    """An error the server put inside a stream that had begun well (HTTP 200): its own words, retried if transient."""
    code = error.code or ""
    client_side = code.isdigit() and 400 <= int(code) < 500 and int(code) not in (408, 429)
    message = clean(error.message, secret) or "no reason given"
    return GenerationError(
        FailureKind.SERVER_ERROR,
        f'{where} reported an error in the middle of the answer: "{message}"',
        "This is usually temporary; try again in a moment." if not client_side else "Check the request and the model.",
        retryable=not client_side,
    )


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
