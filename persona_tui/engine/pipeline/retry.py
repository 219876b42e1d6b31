"""When to try again: backoff with jitter, the batch-wide rate-limit gate, and a cancellable pause.

A rate limit is the server's word about the whole key, not one stream, so it
closes a gate that every stream of the batch waits behind; streams then leave
the gate one by one instead of stampeding back together.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

RETRY_AFTER_MAX = 120.0
"""The longest Retry-After honoured, in seconds; a server asking for more is waited this long."""
GATE_STAGGER = 0.25
"""Seconds between streams leaving a closed rate-limit gate."""
STALL_RETRIES = 1
"""A server that went silent is tried once more, not max_attempts times: a dead one must end in about a minute."""


def backoff(failed_attempt: int, retry_after: float | None, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next attempt: the server's Retry-After when given, else exponential with jitter."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_MAX)
    delay = min(cap, base * 2 ** (failed_attempt - 1))
    return delay * (0.5 + rng.random() / 2)


@dataclass(slots=True)
class RateGate:
    """Shared by every stream of a batch: closed by a rate limit until the server's wait is over."""

    clock: Callable[[], float]
    until: float = 0.0
    slots: int = 0
    """Streams already queued behind the current closing."""

    def close(self, delay: float) -> None:
        now = self.clock()
        if self.until <= now:
            self.slots = 0  # a new closing: the queue starts again
        self.until = max(self.until, now + delay)

    def claim(self) -> float:
        """Seconds this stream must wait: its own slot, so streams leave one by one."""
        wait = self.until - self.clock()
        if wait <= 0:
            return 0.0
        self.slots += 1
        return wait + (self.slots - 1) * GATE_STAGGER


async def pause(delay: float, cancel: asyncio.Event | None) -> bool:
    """Wait ``delay`` seconds; True if the user cancelled meanwhile."""
    if cancel is None:
        await asyncio.sleep(delay)
        return False
    try:
        await asyncio.wait_for(cancel.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True
