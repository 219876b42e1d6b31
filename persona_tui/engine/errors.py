"""Failures the engine understands, each with one sentence and a hint."""

from __future__ import annotations


class GenerationError(Exception):
    """A failure explained for the user.

    ``kind`` is a stable word scripts can match on; ``retryable`` says whether
    trying the same request again may help; ``retry_after`` carries a server's
    Retry-After in seconds when it gave one.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        hint: str = "",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"GenerationError({self.kind!r}, {self.message!r})"
