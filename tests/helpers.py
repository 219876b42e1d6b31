"""Shared test doubles: sample personas and a scripted in-process provider."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_tui.engine.errors import GenerationError
from persona_tui.engine.providers.base import PromptSpec
from persona_tui.engine.providers.parts import AnswerPart, StreamPart


def persona_dict(name: str = "Amina Otieno", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "age": 47,
        "pronouns": "she/her",
        "location": "Kisumu, Kenya",
        "occupation": "Field nurse",
        "background": "Amina has run a mobile clinic for twelve years. She drives between villages twice a week.",
        "goals": ["Keep vaccine records accurate", "Train two new nurses"],
        "frustrations": ["Patchy mobile signal", "Paper forms that get wet"],
        "personality_traits": ["patient", "practical", "wry"],
        "tech_savviness": "basic",
        "communication_style": "Short, warm sentences; asks before she explains.",
        "quote": "If it works in the rain, I will use it.",
    }
    data.update(overrides)
    return data


def persona_json(name: str = "Amina Otieno", **overrides: Any) -> str:
    return json.dumps(persona_dict(name, **overrides))


def tokens_of(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class Step:
    """One scripted attempt: pieces streamed with delays, then maybe an error.

    A piece given as text is answer text; any other stream part (reasoning, usage, a notice) goes out as it is.
    """

    pieces: Sequence[str | StreamPart] = ()
    first_delay: float = 0.0
    delay: float = 0.0
    error: GenerationError | None = None
    hang: bool = False
    """After the pieces, wait forever (until closed)."""


@dataclass
class ScriptedProvider:
    """A provider that plays scripted steps, one per call to ``stream``; the last repeats."""

    steps: list[Step]
    name: str = "scripted"
    model: str = "script-1"
    is_ai: bool = True
    calls: list[PromptSpec] = field(default_factory=list)
    closed_streams: int = 0
    closed: bool = False
    active: int = 0
    max_active: int = 0
    """Streams open at once: the most seen."""
    started_at: list[float] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return "script.local"

    @property
    def label(self) -> str:
        return f"{self.model} at {self.endpoint}"

    def prepare(self) -> None:
        """Nothing to set up."""

    async def aclose(self) -> None:
        self.closed = True

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        step = self.steps[min(len(self.calls), len(self.steps) - 1)]
        self.calls.append(spec)
        self.started_at.append(time.monotonic())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if step.first_delay:
                await asyncio.sleep(step.first_delay)
            for i, piece in enumerate(step.pieces):
                if i and step.delay:
                    await asyncio.sleep(step.delay)
                yield AnswerPart(piece) if isinstance(piece, str) else piece
            if step.hang:
                await asyncio.Event().wait()
            if step.error is not None:
                raise step.error
        finally:
            self.active -= 1
            self.closed_streams += 1


def ok_step(name: str = "Amina Otieno", **kw: Any) -> Step:
    return Step(pieces=tokens_of(persona_json(name)), **kw)
