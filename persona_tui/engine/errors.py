"""Failures the engine understands, each with one sentence and a hint.

Every failure has a :class:`FailureKind`: a stable word that scripts match on
(``--json`` output, exit codes, tests) and that carries the policy the batch
needs, such as whether the personas not yet started should still be tried.
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """What went wrong, in one stable word."""

    AUTH = "auth"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    REFUSAL = "refusal"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    INCOMPLETE = "incomplete"
    STALLED = "stalled"
    TOO_LARGE = "too_large"
    INVALID_OUTPUT = "invalid_output"
    DUPLICATE = "duplicate"
    SAVE = "save"
    INTERNAL = "internal"

    @property
    def stops_batch(self) -> bool:
        """Every persona of the batch would meet this failure: the ones not started are not started."""
        return self in _STOPS_BATCH


_STOPS_BATCH = frozenset(
    {
        FailureKind.AUTH,
        FailureKind.FORBIDDEN,
        FailureKind.NOT_FOUND,
        FailureKind.QUOTA,
        FailureKind.BAD_REQUEST,
        FailureKind.SAVE,
    }
)


class GenerationError(Exception):
    """A failure explained for the user.

    ``retryable`` says whether trying the same request again may help;
    ``retry_after`` carries a server's Retry-After in seconds when it gave one;
    ``adapted`` says the provider already changed its request to get past it.
    """

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        hint: str = "",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        adapted: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = FailureKind(kind)
        self.message = message
        self.hint = hint
        self.retryable = retryable
        self.retry_after = retry_after
        self.adapted = adapted
        """The provider changed its request to get past this (a refused parameter, a step down the
        structured-output ladder): the same request goes again at once, told as a step, not a fault."""

    def __repr__(self) -> str:
        return f"GenerationError({self.kind.value!r}, {self.message!r})"
