"""The live log: timestamped stage messages with the model's tokens streamed inline.

Tokens are buffered and written in batches by :meth:`LiveLog.flush`, which the
app calls on its frame timer, so a thousand tokens a second cost a few dozen
widget writes. ``Log`` never parses markup, and every batch is stripped of
control and escape sequences first. The view follows the end only while the
user has not scrolled up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from textual.widgets import Log

from persona_tui.engine.text import strip_control

FLUSH_SECONDS = 0.1
"""How often queued model text is drawn. Each write that adds lines lays the whole screen out
again (the log's virtual size changes), so ten a second: smooth to read, cheap at any rate."""
FAST_FLUSH_SECONDS = 0.25
"""How often while the model is fast: past ~1,000 tokens a second nobody reads along, and fewer
redraws leave the time to the stream itself."""
FAST_CHARS = 400
"""More than this much text queued between two flushes means a fast stream."""
TOKEN_INDENT = "    "
MESSAGE_INDENT = " " * 10


def fold(text: str, width: int, indent: str) -> list[str]:
    """Break a message into lines of at most ``width`` cells, at spaces where possible."""
    lines: list[str] = []
    while len(text) > width:
        cut = text.rfind(" ", len(indent) + 1, width + 1)
        if cut <= len(indent):
            cut = width
        lines.append(text[:cut].rstrip())
        text = indent + text[cut:].lstrip()
    lines.append(text)
    return lines


class LiveLog(Log):
    """A log that can take model text at any rate."""

    DEFAULT_CSS = """
    LiveLog {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    """

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = datetime.now,
        max_lines: int | None = 5000,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, name=name, id=id, classes=classes)
        self.now = now
        self._pending: list[str] = []
        self._pending_chars = 0
        self._flushed_at = 0.0
        self._mid_line = False
        self._column = 0
        self._follow = True
        """Keep the newest line in view; only the reader scrolling up clears it."""
        self._backlog: list[str] | None = []
        """Messages written before the log knows its width; drawn on the first resize."""
        self.writes = 0
        """Widget writes so far; tests use it to prove tokens are batched."""

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Only a scroll changes this: a log that shrinks (the panel above grew) keeps following.
        self._follow = new >= self.max_scroll_y - 1

    def _following(self) -> bool:
        return self._follow

    def on_mount(self) -> None:
        self.set_interval(FLUSH_SECONDS, self._flush_due)

    def on_resize(self) -> None:
        if self._follow:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)
        if self._backlog is not None and self.scrollable_content_region.width > 0:
            backlog, self._backlog = self._backlog, None
            for line in backlog:
                self.message(line)

    def message(self, text: str) -> None:
        """A timestamped line (flushes any pending tokens first)."""
        if self._backlog is not None:
            self._backlog.append(text)
            return
        self.flush()
        stamp = self.now().strftime("%H:%M:%S")
        prefix = "\n" if self._mid_line else ""
        self._mid_line = False
        lines = fold(f"{stamp}  {strip_control(text, keep_newlines=False)}", self._fold_width(), MESSAGE_INDENT)
        self._write(prefix + "\n".join(lines) + "\n")

    def _fold_width(self) -> int:
        return max(self.scrollable_content_region.width - 1, 20)

    def tokens(self, text: str) -> None:
        """Queue model text; it is drawn at the next :meth:`flush`."""
        self._pending.append(text)
        self._pending_chars += len(text)

    def _flush_due(self) -> None:
        """The timer's flush: every tick, or every :data:`FAST_FLUSH_SECONDS` while text pours in."""
        if self._pending_chars > FAST_CHARS and time.monotonic() - self._flushed_at < FAST_FLUSH_SECONDS:
            return
        self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        text = strip_control("".join(self._pending))
        self._pending.clear()
        self._pending_chars = 0
        self._flushed_at = time.monotonic()
        if text:
            self._write(self._wrap(text))

    def _wrap(self, text: str) -> str:
        """Indent the token text and fold it at the log's width (a Log does not wrap)."""
        width = self._fold_width()
        out: list[str] = []
        for number, segment in enumerate(text.split("\n")):
            if number:  # the text held a newline
                out.append("\n")
                self._mid_line = False
            while segment:
                if not self._mid_line:
                    out.append(TOKEN_INDENT)
                    self._column, self._mid_line = len(TOKEN_INDENT), True
                room = width - self._column
                if room <= 0:
                    out.append("\n")
                    self._mid_line = False
                    continue
                out.append(segment[:room])
                self._column += min(room, len(segment))
                segment = segment[room:]
        return "".join(out)

    def end_tokens(self) -> None:
        """Close the token line so the next message starts on its own line."""
        self.flush()
        if self._mid_line:
            self._write("\n")
            self._mid_line = False

    def _write(self, text: str) -> None:
        self.writes += 1
        self.write(text, scroll_end=self._following())
