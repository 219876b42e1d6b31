"""English as it is written where a persona lives: US or British words, swapped whole.

The phrases and job titles are written in British English; a persona in the United States gets
"Math Teacher", "apartment" and "vacation", one in Leeds or Nairobi keeps "Maths Teacher",
"flat" and "holiday". The word lists are in ``data/wording.toml``.
"""

from __future__ import annotations

import functools
import re

from persona_tui.engine.world.tables import load_tables


def is_us(country: str) -> bool:
    """Whether personas in the country are written in US English."""
    return country in load_tables().wording.us_countries


@functools.cache
def _pattern(us: bool) -> tuple[re.Pattern[str], dict[str, str]]:
    wording = load_tables().wording
    pairs = wording.to_us if us else wording.to_uk
    alts = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in sorted(pairs, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alts})(?![\w-])", re.IGNORECASE), pairs


def _cased(original: str, new: str) -> str:
    """``new`` in the case of ``original``: Title Case, Capitalised or as written."""
    words = original.split()
    if len(words) > 1 and all(w[:1].isupper() for w in words):
        return " ".join(w[:1].upper() + w[1:] for w in new.split())
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new.lower()


def localize(text: str, country: str) -> str:
    """The text in the English of the country (US or British)."""
    pattern, pairs = _pattern(is_us(country))
    return pattern.sub(lambda m: _cased(m[0], pairs[" ".join(m[0].casefold().split())]), text)
