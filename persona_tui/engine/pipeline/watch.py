"""Reading one provider stream under a watchdog.

A task moves the provider's parts into a queue; :func:`watch` takes from it
everything that has arrived at once (a fast stream costs one step per burst,
not one per token) and wakes up at the time its caller names even when
nothing arrives, so heartbeats, slow warnings and timeouts need no timer of
their own. Whatever happens, the stream is closed on the way out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from persona_tui.engine.providers.parts import StreamPart

READ_SLICE = 0.004
"""Longest time (seconds) the stream reader keeps the event loop while data keeps arriving."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Parts that arrived since the last step, in order."""

    parts: list[StreamPart]


@dataclass(frozen=True, slots=True)
class Tick:
    """The wake-up time passed with nothing new."""


class _Mark:
    """What the queue carries besides parts: an end, a failure, or the user's cancel (one class test per item)."""

    __slots__ = ()


class Stopped(_Mark):
    """The user cancelled: the stream is being closed."""

    __slots__ = ()


class _End(_Mark):
    """The stream finished."""

    __slots__ = ()


END = _End()


class _Failure(_Mark):
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


_CANCELLED = Stopped()
Item = StreamPart | _End | _Failure | Stopped


async def read_into(stream: AsyncGenerator[StreamPart, None], inbox: asyncio.Queue[Item]) -> None:
    """Move the provider's parts into ``inbox``, then an end mark or the error; close the stream on the way out.

    When the network has buffered a burst, the client parses chunk after chunk
    without ever waiting, so nothing else on the event loop runs: a screen that
    fell behind once would fall further behind with every larger burst. The
    reader steps aside every :data:`READ_SLICE` seconds.
    """
    try:
        slice_end = time.perf_counter() + READ_SLICE
        async for part in stream:
            inbox.put_nowait(part)
            if time.perf_counter() >= slice_end:
                await asyncio.sleep(0)
                slice_end = time.perf_counter() + READ_SLICE
        inbox.put_nowait(END)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # handed to the pipeline, which explains or re-raises it
        inbox.put_nowait(_Failure(exc))
    finally:
        await stream.aclose()


async def _signal_cancel(cancel: asyncio.Event, inbox: asyncio.Queue[Item]) -> None:
    await cancel.wait()
    inbox.put_nowait(_CANCELLED)


async def watch(
    stream: AsyncGenerator[StreamPart, None],
    *,
    cancel: asyncio.Event | None,
    wake_at: Callable[[], float],
    clock: Callable[[], float],
) -> AsyncGenerator[Chunk | Tick | Stopped, None]:
    """Yield what arrives as :class:`Chunk`, a :class:`Tick` at each ``wake_at()``, :class:`Stopped` on cancel.

    Ends when the stream ends. A failure of the stream is raised after the
    parts that came before it have been yielded, so they are shown first.
    Close the iterator (``contextlib.aclosing``) to stop early: the reader is
    cancelled and the stream closed before it returns.
    """
    inbox: asyncio.Queue[Item] = asyncio.Queue()
    tasks = [asyncio.create_task(read_into(stream, inbox))]
    if cancel is not None:
        tasks.append(asyncio.create_task(_signal_cancel(cancel, inbox)))
    try:
        while True:
            arrived: list[Item] = []
            if inbox.empty():
                try:
                    async with asyncio.timeout(max(wake_at() - clock(), 0.0)):
                        arrived.append(await inbox.get())  # cancel-safe: a timed-out get takes nothing
                except TimeoutError:
                    yield Tick()
                    continue
            while not inbox.empty():
                arrived.append(inbox.get_nowait())
            parts, last = _split(arrived)
            if isinstance(last, Stopped):
                yield last
                return
            if parts:
                yield Chunk(parts)
            if isinstance(last, _Failure):
                raise last.error
            if last is END:
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


def _split(items: list[Item]) -> tuple[list[StreamPart], Item | None]:
    """The parts before the first end mark, and that mark (None if the stream goes on)."""
    parts: list[StreamPart] = []
    for item in items:
        if isinstance(item, _Mark):
            return parts, item
        parts.append(item)
    return parts, None
