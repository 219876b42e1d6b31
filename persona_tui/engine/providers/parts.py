"""The typed parts a provider's stream yields.

A model's answer is not only text: reasoning models think first (and some
servers show that thinking while others only say it happens), servers count
tokens, and some put a notice or an error inside a stream that began well.
Each of these is a small frozen part, so the pipeline can show each for what it
is, and treat every one of them as a sign that the server is alive.
"""

from __future__ import annotations

from dataclasses import dataclass

from persona_tui.models import Usage


@dataclass(frozen=True, slots=True)
class AnswerPart:
    """A piece of the answer (about one token): together they form one JSON object."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """A piece of the model's visible reasoning (untrusted text, never part of the answer)."""

    text: str


@dataclass(frozen=True, slots=True)
class HiddenReasoning:
    """The model is reasoning but the server does not show it; ``tokens`` if the server counted them."""

    tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsagePart:
    """The server's own count of the tokens this request used."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class NoticePart:
    """Something the user should see beside the answer: the server's words (untrusted), or the provider's own."""

    text: str
    from_server: bool = True
    """False for the provider's own sentence (what it learned of this server before): not a sign of life."""


StreamPart = AnswerPart | ReasoningPart | HiddenReasoning | UsagePart | NoticePart
