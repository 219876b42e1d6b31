"""The live log: timestamped stage messages with the model's tokens streamed inline.

Tokens are buffered and written in batches by :meth:`LiveLog.flush`, which the
app calls on its frame timer, so a thousand tokens a second cost a few dozen
widget writes. ``Log`` never parses markup, and every batch is stripped of
control and escape sequences first. The view follows the end only while the
user has not scrolled up. A message written with a key (a heartbeat, the
folded thinking's count) is rewritten in place while it is still among the
last lines, so a wait that goes on adds one line, not one every few seconds.
The log keeps what it was given, unwrapped, and folds it again when its width
changes (only then), so a resize neither cuts old lines nor leaves them wrapped
at the old width.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Self

from rich.cells import cell_len
from textual.geometry import Region
from textual.widgets import Log

from persona_tui.engine.text import strip_control

TOKEN_INDENT = "    "
THOUGHT_INDENT = "    ┊ "
"""The model's reasoning streams like its answer, set apart by this margin (a Log has no styles)."""
MESSAGE_INDENT = " " * 10


def fitting(text: str, cells: int) -> int:
    """How many characters of ``text`` fit in ``cells`` terminal cells (wide characters take two)."""
    used = 0
    for count, char in enumerate(text):
        used += cell_len(char)
        if used > cells:
            return count
    return len(text)


def fold(text: str, width: int, indent: str) -> list[str]:
    """Break a message into lines of at most ``width`` cells, at spaces where possible."""
    lines: list[str] = []
    while cell_len(text) > width:
        end = fitting(text, width)
        cut = text.rfind(" ", len(indent) + 1, end + 1)
        if cut <= len(indent):
            cut = max(end, len(indent) + 1)
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
        self._mid_line = False
        self._column = 0
        self._wrapped = False
        """The current token line was started by a break we made (its leading spaces are dropped)."""
        self._follow = True
        """Keep the newest line in view; only the reader scrolling up clears it."""
        self._backlog: list[str] | None = []
        """Messages written before the log knows its width; drawn on the first resize."""
        self.writes = 0
        """Widget writes so far; tests use it to prove tokens are batched."""
        self._growing = False
        """True while :meth:`_write` adds to a log that already scrolls (see :meth:`refresh`)."""
        self._indent = TOKEN_INDENT
        """The margin of the streamed text being drawn: the answer's or the reasoning's."""
        self._keyed: dict[str, list[str]] = {}
        """The keyed messages that end the log, in order, each as the lines it was folded into."""
        self._keyed_at = -1
        """``writes`` when a keyed message was last written: any write since ends the keyed lines."""
        self._source: list[tuple[str, list[str], str | None]] = []
        """What was written, unwrapped, to fold again at a new width: ("message", [stamped text], key),
        ("tokens", [text, ...], margin) or ("end", [], None)."""
        self._keyed_source: dict[str, int] = {}
        """Where each keyed message at the log's end is in :attr:`_source` (rewritten in place there too)."""
        self._replay: list[str] | None = None
        """While the log folds its source again: the text, gathered to be written in one go."""
        self._wrapped_at = 0
        """The width the lines were folded at."""

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Only a scroll changes this: a log that shrinks (the panel above grew) keeps following.
        self._follow = new >= self.max_scroll_y - 1

    def _following(self) -> bool:
        return self._follow

    def on_resize(self) -> None:
        if self._follow:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)
        if self.scrollable_content_region.width <= 0:
            return
        if self._backlog is not None:
            backlog, self._backlog = self._backlog, None
            for line in backlog:
                self.message(line)
        elif self._fold_width() != self._wrapped_at and self._source:
            self._rewrap()

    def _rewrap(self) -> None:
        """Fold everything written again at the current width, and write it in one go."""
        source, self._source = self._source, []
        pending, self._pending = self._pending, []
        indent = self._indent  # queued text keeps the margin it was queued under
        self._mid_line = self._wrapped = False
        self._column, self._indent = 0, TOKEN_INDENT
        self._keyed, self._keyed_source, self._keyed_at = {}, {}, -1
        self._replay = []
        try:
            for kind, parts, extra in source:
                if kind == "message":
                    self._say(parts[0], extra)
                elif kind == "tokens":
                    self._indent = extra or TOKEN_INDENT
                    self._tokens_out("".join(parts))
                else:
                    self.end_tokens()
            text = "".join(self._replay)
        finally:
            self._replay = None
            self._pending, self._indent = pending, indent
        keyed = self._keyed_at == self.writes  # the keyed lines still end the log: they stay rewritable
        self.clear()
        self._write(text)
        if keyed:
            self._keyed_at = self.writes

    def message(self, text: str, *, key: str | None = None, table: bool = False) -> None:
        """A timestamped line (flushes any pending tokens first).

        With a ``key``, a message of the same key among the keyed messages that end the log is
        rewritten in place, with the new time, instead of adding a line; any other write ends them.
        A ``table`` row keeps its runs of spaces (the columns of the plan and the report).
        """
        if self._backlog is not None:
            self._backlog.append(text)
            return
        self.flush()
        stamp = self.now().strftime("%H:%M:%S")
        clean = strip_control(text.replace("\n", " "), keep_newlines=True) if table else None
        self._say(f"{stamp}  {clean or strip_control(text, keep_newlines=False)}", key)

    def _say(self, stamped: str, key: str | None) -> None:
        """Fold a stamped message at the log's width and write it (or rewrite its keyed line)."""
        if self.writes != self._keyed_at:
            self._keyed.clear()
            self._keyed_source.clear()
        lines = fold(stamped, self._fold_width(), MESSAGE_INDENT)
        if key is not None and key in self._keyed:
            self._source[self._keyed_source[key]] = ("message", [stamped], key)
            self._rewrite(key, lines)
        else:
            prefix = "\n" if self._mid_line else ""
            self._mid_line = self._wrapped = False
            self._keep("message", stamped, key)
            self._write(prefix + "\n".join(lines) + "\n")
            if key is None:
                self._keyed.clear()
                self._keyed_source.clear()
            else:
                self._keyed[key] = lines
                self._keyed_source[key] = len(self._source) - 1
        self._keyed_at = self.writes

    def _keep(self, kind: str, text: str, extra: str | None) -> None:
        """Remember what is written, unwrapped (a stream's text joins the piece before it)."""
        source = self._source
        if kind == "tokens" and source and source[-1][0] == "tokens" and source[-1][2] == extra:
            source[-1][1].append(text)
            return
        source.append((kind, [text] if text else [], extra))
        limit = self.max_lines
        if limit is not None and len(source) > 2 * limit:  # the log itself keeps max_lines lines
            drop = len(source) - limit
            del source[:drop]
            self._keyed_source = {key: at - drop for key, at in self._keyed_source.items()}

    def _rewrite(self, key: str, lines: list[str]) -> None:
        """Write the keyed messages at the log's end again, with ``key``'s lines replaced.

        ``Log`` can only append, so the keyed lines are cut from its list of lines (which ends with
        the empty line after the last newline) and written anew; ``write`` drops the cached strips
        of the lines it writes.
        """
        ending = sum(len(block) for block in self._keyed.values())
        del self._lines[len(self._lines) - 1 - ending : -1]
        self._keyed[key] = lines
        self._write("\n".join(line for block in self._keyed.values() for line in block) + "\n")

    def _fold_width(self) -> int:
        return max(self.scrollable_content_region.width - 1, 20)

    def tokens(self, text: str, *, thinking: bool = False) -> None:
        """Queue model text (its reasoning with ``thinking``); it is drawn at the next :meth:`flush`."""
        if (self._indent is THOUGHT_INDENT) is not thinking:  # reasoning and answer never share a line
            self.end_tokens()
            self._indent = THOUGHT_INDENT if thinking else TOKEN_INDENT
        self._pending.append(text)

    def flush(self, *, whole_words: bool = False) -> None:
        """Draw the queued text. Each write that adds lines lays the whole screen out again (the
        log's virtual size changes), which is why the owner calls this on a clock, not per token.

        With ``whole_words`` a word still being streamed (the text after the last space) waits for
        the next flush, so lines break between words, not inside one.
        """
        if not self._pending:
            return
        text = strip_control("".join(self._pending)).replace("\t", "    ")  # a Log would widen tabs itself
        self._pending.clear()
        if whole_words:
            cut = max(text.rfind(" "), text.rfind("\n")) + 1
            tail = text[cut:]
            if 0 < cell_len(tail) < self._fold_width() - len(self._indent):
                self._pending.append(tail)
                text = text[:cut]
        if text:
            self._tokens_out(text)

    def _tokens_out(self, text: str) -> None:
        self._keep("tokens", text, self._indent)
        self._write(self._wrap(text))

    def _wrap(self, text: str) -> str:
        """Indent the token text and fold it at the log's width between words (a Log does not wrap).

        A word longer than a whole line is cut where the line ends; spaces where a line breaks
        are dropped.
        """
        width, indent = self._fold_width(), self._indent
        line_room = width - len(indent)
        out: list[str] = []
        for number, segment in enumerate(text.split("\n")):
            if number:  # the text held a newline
                if self._mid_line or not self._wrapped:  # a break we just made already ended the line
                    out.append("\n")
                self._mid_line = self._wrapped = False
            for piece in re.findall(r"\S+|\s+", segment):
                if not self._mid_line:
                    if piece.isspace() and self._wrapped:
                        continue  # the spaces at a break we made
                    out.append(indent)
                    self._column, self._mid_line, self._wrapped = len(indent), True, False
                room = width - self._column
                cells = cell_len(piece)
                if cells <= room:
                    out.append(piece)
                    self._column += cells
                    continue
                if piece.isspace():
                    out.append("\n")
                    self._mid_line, self._wrapped = False, True
                    continue
                if cells <= line_room and self._column > len(indent):
                    out.append("\n" + indent + piece)
                    self._column = len(indent) + cells
                    continue
                while piece:  # longer than a line: cut where each line ends
                    head = fitting(piece, width - self._column)
                    if head == 0:
                        out.append("\n" + indent)
                        self._column = len(indent)
                        continue
                    out.append(piece[:head])
                    self._column += cell_len(piece[:head])
                    piece = piece[head:]
        return "".join(out)

    def end_tokens(self) -> None:
        """Close the token line so the next message starts on its own line."""
        self.flush()
        if self._mid_line:
            self._write("\n")
        if self._mid_line or self._wrapped:
            self._keep("end", "", None)
        self._mid_line = self._wrapped = False

    def _write(self, text: str) -> None:
        self.writes += 1
        self._wrapped_at = self._fold_width()
        if self._replay is not None:
            self._replay.append(text)
            return
        self._growing = self.show_vertical_scrollbar
        try:
            self.write(text, scroll_end=self._following())
        finally:
            self._growing = False

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False) -> Self:
        """A log that already scrolls and grows taller needs its scrollbar resized, not the screen laid out.

        ``Log.write`` sets the virtual size, which asks for a layout of the whole screen; while the
        vertical scrollbar is already shown and no line is wider than the log, the layout would
        change nothing but the scrollbar, so only the scrollbar is updated.
        """
        if layout and self._growing and self.virtual_size.width <= self.scrollable_content_region.width:
            layout = False
            self._scroll_update(self.virtual_size)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
