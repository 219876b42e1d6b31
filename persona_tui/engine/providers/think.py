"""Separating ``<think>…</think>`` reasoning from the answer when a server leaves it inside the content.

R1-style models served without a reasoning parser write their reasoning into
the answer itself, between ``<think>`` and ``</think>``; some templates put
the opening tag in the prompt, so only a lone closing tag arrives. The text
arrives in arbitrary pieces, so a tag may be cut between two chunks: a piece
that could be the start of a tag is held back until the next one decides it.
"""

from __future__ import annotations

from persona_tui.engine.providers.parts import AnswerPart, ReasoningPart, StreamPart

OPEN = "<think>"
CLOSE = "</think>"
UNDECIDED_MAX = 80
"""Characters of text before any tag or brace held back; past this it is shown as reasoning (a model
whose template opened the think block in the prompt would otherwise look silent until it closes it)."""


def _partial_tag_at_end(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Feed it content pieces; it returns answer and reasoning parts, tags removed."""

    def __init__(self, *, prose: bool = False) -> None:
        self.prose = prose
        """The answer is plain text (a conversation), not a JSON object: text that does not open with a tag is
        the answer at once, so it streams as it comes instead of waiting for a brace that never comes."""
        self.thinking = False
        self.answered = False
        """Answer text has been seen: a closing tag after it is part of the answer."""
        self.pending = ""
        self.early = ""
        """Text before any tag, kept until it is clear whether a lone closing tag makes it reasoning."""

    @property
    def settled(self) -> bool:
        """The answer has begun and nothing is held back: every later piece is answer as it is."""
        return self.answered and not self.thinking and not self.pending

    def feed(self, text: str) -> list[StreamPart]:
        parts: list[StreamPart] = []
        text = self.pending + text
        self.pending = ""
        while text:
            text = self._in_thought(text, parts) if self.thinking else self._in_answer(text, parts)
        return parts

    def _in_thought(self, text: str, parts: list[StreamPart]) -> str:
        end = text.find(CLOSE)
        if end >= 0:
            if end:
                parts.append(ReasoningPart(text[:end]))
            self.thinking = False
            return text[end + len(CLOSE) :].lstrip("\n")
        keep = _partial_tag_at_end(text, CLOSE)
        if len(text) > keep:
            parts.append(ReasoningPart(text[: len(text) - keep]))
        self.pending = text[len(text) - keep :]
        return ""

    def _in_answer(self, text: str, parts: list[StreamPart]) -> str:
        if not self.answered:
            return self._before_any_answer(text, parts)
        parts.append(AnswerPart(text))
        return ""

    def _before_any_answer(self, text: str, parts: list[StreamPart]) -> str:
        """Until the answer begins, a tag may still turn what came so far into reasoning."""
        whole = self.early + text
        start, end = whole.find(OPEN), whole.find(CLOSE)
        if end >= 0 and (start < 0 or end < start):  # a lone closing tag: all before it was reasoning
            if whole[:end].strip():
                parts.append(ReasoningPart(whole[:end]))
            self.early = ""
            self.answered = True
            return whole[end + len(CLOSE) :].lstrip("\n")
        if start >= 0:
            if whole[:start].strip():
                parts.append(AnswerPart(whole[:start]))
            self.early = ""
            self.thinking = True
            return whole[start + len(OPEN) :]
        lead = whole.lstrip()
        if self.prose and lead and not (OPEN.startswith(lead[: len(OPEN)]) or CLOSE.startswith(lead[: len(CLOSE)])):
            self.early = ""
            self.answered = True
            parts.append(AnswerPart(lead))
            return ""
        if "{" in whole:  # the answer has begun (a brace inside reasoning is cut off when the answer is read)
            self.early = ""
            self.answered = True
            parts.append(AnswerPart(whole.lstrip()))  # the line breaks after a think block are not the answer's
            return ""
        keep = max(_partial_tag_at_end(whole, OPEN), _partial_tag_at_end(whole, CLOSE))
        if len(whole) - keep > UNDECIDED_MAX:  # long prose before anything: most likely reasoning
            parts.append(ReasoningPart(whole[: len(whole) - keep]))
            whole = whole[len(whole) - keep :]
        self.early = whole  # wait for the next piece to decide
        return ""

    def flush(self) -> list[StreamPart]:
        """The stream ended: what was held back is what it looked like."""
        parts: list[StreamPart] = []
        if self.thinking and self.pending:
            parts.append(ReasoningPart(self.pending))
        elif self.pending or self.early:
            parts.append(AnswerPart(self.early + self.pending))
        self.pending = self.early = ""
        return parts
