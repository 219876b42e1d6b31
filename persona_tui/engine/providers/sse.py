"""Server-Sent Events read straight from the bytes of a streamed HTTP body.

The stream path reads the chat-completions body itself (through the official
client's ``with_streaming_response``, which still makes the request and raises
its errors) instead of the client's typed stream, which builds a pydantic
object per chunk: that costs ten times the read itself. This reader keeps the
client's framing exactly (the WHATWG event-stream rules as its decoder applies
them): lines end in LF, CR or CRLF (a CRLF cut between two reads included);
``data:`` lines of one event are joined with a line break; comments (``:
keep-alive``, ``: OPENROUTER PROCESSING``) are skipped; a blank line ends an
event, which is sent on if it has data, a named ``event:``, a ``retry:`` or
ever an ``id:``; an event cut off by the end of the body is dropped; ``[DONE]``
ends the stream. Each event's data goes out as bytes, for a JSON parser that
reads bytes.
"""

from __future__ import annotations

__all__ = ["DONE", "SSEReader"]

DONE = b"[DONE]"


class SSEReader:
    """Feed it the body as it arrives; it returns the data of each complete event."""

    __slots__ = ("_cr", "_data", "_event", "_last_id", "_rest", "_retry", "done")

    def __init__(self) -> None:
        self._rest = b""
        self._cr = False
        """The last piece ended in CR: a LF that starts the next one is the rest of a CRLF."""
        self._data: list[bytes] = []
        self._event = False
        """A named ``event:`` (or a ``retry:``) was given for the event being read."""
        self._retry = False
        self._last_id = False
        """An ``id:`` is set: from then on every blank line sends an event (as the client's decoder does)."""
        self.done = False
        """``[DONE]`` came: the stream's events are over (the rest of the body is not read as events)."""

    def feed(self, raw: bytes) -> list[bytes]:
        """The data of the events this piece of the body completes (nothing once ``done``)."""
        if self.done:
            return []
        if self._cr and raw:
            self._cr = False
            if raw[0] == 10:
                raw = raw[1:]
        buf = self._rest + raw if self._rest else raw
        if b"\r" in buf:
            self._cr = buf.endswith(b"\r")
            lines = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            self._rest = lines.pop()
        else:
            lines = buf.split(b"\n")
            self._rest = lines.pop()
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if data or self._event or self._retry or self._last_id:
                    if self._dispatch(out):
                        break
                    data = self._data
            elif line[0] != 58:  # not a comment (":")
                self._field(line)
        return out

    def _dispatch(self, out: list[bytes]) -> bool:
        """Ends the event being read; True when it was ``[DONE]``."""
        data = self._data
        value = data[0] if len(data) == 1 else b"\n".join(data)
        self._data = []
        self._event = self._retry = False
        if value.startswith(DONE):
            self.done = True
            return True
        out.append(value)
        return False

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = bool(value)
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = bool(value)
        elif name == b"retry":
            self._retry = self._retry or _is_int(value)
        elif name == b"data":  # a bare ``data`` line: an empty line of data
            self._data.append(value)
        # any other field is ignored, as the event-stream rules say


def _is_int(value: bytes) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True
