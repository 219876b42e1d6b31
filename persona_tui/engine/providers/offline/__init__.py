"""The offline sample generator, a package: the provider, how it reads a description and
composes a persona, and the data tables it composes from (``data/*.toml``).

Importing it stays cheap: the reading and composing code, the tables and Faker are all
loaded when the first persona is composed, not before.
"""

from __future__ import annotations

from persona_tui.engine.providers.offline.provider import PROVIDER, OfflineProvider

__all__ = ["PROVIDER", "OfflineProvider"]
