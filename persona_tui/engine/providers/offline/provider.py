"""The offline sample generator: plausible personas composed locally, without a model.

It is the default when no API key is set, so the app works out of the box. It
streams its JSON in token-sized pieces, paced like a model, so the live view
behaves the same; but it is not AI, and its ``label`` and ``is_ai`` say so.
This module is the provider's face: randomness per persona, a lock around the shared
Faker instances, and the pacing; what a persona says is composed in ``compose``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

from pydantic import BaseModel, Field

from persona_tui.config import Settings
from persona_tui.engine.providers.base import PromptSpec, ProviderInfo
from persona_tui.engine.providers.parts import AnswerPart, StreamPart
from persona_tui.models import Persona, Slot

_TOKEN_RE = re.compile(r" ?\w{1,5}|\s|[^\w\s]{1,2}")  # word pieces, spaces and punctuation, like model tokens
_LOCK = threading.Lock()  # compose reseeds shared Faker instances


class OfflineProvider:
    """Composes personas locally with Faker and streams them like a model would."""

    name = "offline"
    is_ai = False

    def __init__(
        self,
        *,
        seed: int | None = None,
        tokens_per_second: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tokens_per_second >= 0:  # also rejects NaN
            raise ValueError(f"tokens_per_second must be 0 (no pacing) or more, got {tokens_per_second!r}")
        self.model = "offline-sample"
        self.seed = seed
        self.tokens_per_second = float(tokens_per_second)
        self._sleep = sleep
        self._clock = clock
        self._fresh = random.Random()
        self._batch = self._fresh.getrandbits(32)  # without a seed: one spread for all this provider composes

    @property
    def endpoint(self) -> str:
        return "local"

    @property
    def label(self) -> str:
        return "offline sample generator (not AI)"

    def _rng(self, description: str, index: int, slot: Slot | None, variant: int = 0) -> random.Random:
        """Per-persona randomness, stable across processes under a seed (``hash()`` is not)."""
        if self.seed is None:
            return random.Random(self._fresh.getrandbits(64))
        where = slot.model_dump_json() if slot is not None else ""
        again = f"\x00{variant}" if variant else ""  # a persona asked for again as someone else draws anew
        return random.Random(_digest(f"{self.seed}\x00{_norm(description)}\x00{index}\x00{where}{again}"))

    def _spread(self, description: str) -> int:
        """One number per batch (seed and description) that sets where its turns through cities and quotes start."""
        seed = self.seed if self.seed is not None else self._batch
        return _digest(f"{seed}\x00{_norm(description)}\x00spread") % 1_000_003

    def compose(
        self,
        description: str,
        index: int = 0,
        avoid_names: Iterable[str] = (),
        slot: Slot | None = None,
        variant: int = 0,
    ) -> Persona:
        """One persona for the description, without streaming; a ``slot`` from the plan fixes who it is."""
        # Imported on first use, like Faker and the tables: importing the provider stays cheap for the first frame.
        from persona_tui.engine.providers.offline.compose import compose
        from persona_tui.engine.world.reading import read_description

        avoid = {n.strip().casefold() for n in avoid_names}
        rng = self._rng(description, index, slot, variant)
        with _LOCK:
            return compose(read_description(description), rng, avoid, index, slot, self._spread(description))

    def prepare(self) -> None:
        """Nothing to set up ahead of time."""

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        """Yield the persona's JSON in token-sized pieces, paced at ``tokens_per_second``."""
        if spec.revise is not None:  # a refinement: the instruction applied by simple rules (not AI)
            from persona_tui.engine.providers.offline.refine import refine_offline

            persona = refine_offline(spec.revise, spec.instruction)
        else:  # Faker's first import takes a moment: keep the event loop (and the UI) responsive.
            persona = await asyncio.to_thread(
                self.compose, spec.description, spec.index, spec.avoid_names, spec.slot, spec.variant
            )
        text = json.dumps(persona.model_dump(mode="json"), ensure_ascii=False)
        rate = self.tokens_per_second
        start: float | None = None
        unyielded = 0  # pieces since the event loop last had a chance to deliver a cancel
        for i, piece in enumerate(_TOKEN_RE.findall(text)):
            if rate > 0:
                now = self._clock()
                if start is None:
                    start = now
                # Piece i is due i/rate seconds after the first. Pieces already due go out
                # at once, so oversleeping is made up for instead of adding up per piece.
                elif (wait := start + i / rate - now) > 0:
                    await self._sleep(wait)
                    unyielded = 0
            if unyielded >= 50:
                await self._sleep(0)
                unyielded = 0
            unyielded += 1
            yield AnswerPart(piece)

    async def aclose(self) -> None:
        """Nothing to release: no connection, no files."""


def _norm(description: str) -> str:
    return " ".join(description.lower().split())


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


class OfflineOptions(BaseModel):
    """The offline generator's options (settings of the same names)."""

    seed: int | None = Field(default=None, ge=0)
    offline_tokens_per_second: float = Field(default=80.0, ge=0)


def _build(options: BaseModel, settings: Settings) -> OfflineProvider:
    assert isinstance(options, OfflineOptions)
    return OfflineProvider(seed=options.seed, tokens_per_second=options.offline_tokens_per_second)


PROVIDER = ProviderInfo(
    name="offline",
    title="the offline sample generator: personas composed from templates, not AI",
    build=_build,
    options=OfflineOptions,
    setup_hint="Nothing to set up: it works without a key or a network.",
    is_ai=False,
    ready=lambda settings: True,
    auto_rank=1000,
)
"""Registered in ``pyproject.toml`` under the ``persona_tui.providers`` entry points."""
