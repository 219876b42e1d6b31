"""The offline sample generator, a package: the provider, how it composes a persona (to the
plan's slot when it has one) and its names; what it knows of the world (places, jobs, phrases,
wording) is in :mod:`persona_tui.engine.world`.

Importing it stays cheap: the reading and composing code, the tables and Faker are all
loaded when the first persona is composed, not before.
"""

from __future__ import annotations

from persona_tui.engine.providers.offline.provider import PROVIDER, OfflineProvider

__all__ = ["PROVIDER", "OfflineProvider"]
