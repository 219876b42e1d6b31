"""Making untrusted model text safe to draw on a terminal."""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"""
    \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?   # OSC ... BEL or ST (titles, hyperlinks)
  | \x1b[P^_X][^\x1b]*(?:\x1b\\)?        # DCS, PM, APC, SOS strings
  | \x1b\[[0-?]*[ -/]*[@-~]?             # CSI (colours, cursor moves, clears)
  | \x1b[ -/]*[0-~]?                     # other escapes, and a lone ESC
  | \x9b[0-?]*[ -/]*[@-~]?               # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_control(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` without escape sequences or control characters.

    Tabs and (by default) newlines are kept; carriage returns are dropped so a
    model cannot overwrite what a line already shows.
    """
    if not text.isprintable():  # the common case, plain text, skips both regular expressions
        text = _CONTROLS.sub("", _ESCAPES.sub("", text))
    return text if keep_newlines else " ".join(text.split())
