"""Reading the model's JSON: partial parses while it streams, and the final answer.

Models, local ones especially, sometimes wrap the object in prose or a code
fence; both are read past. The partial parse uses jiter's partial mode, which
is fast enough to run several times a second on a growing answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jiter
from pydantic import ValidationError

from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.models import Persona

_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


_THOUGHT = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)


def _without_thoughts(text: str) -> str:
    """The answer without reasoning a server left in it: ``<think>`` blocks, and all before a lone ``</think>``."""
    close = text.rfind("</think>")
    if close >= 0:
        text = text[close + len("</think>") :]
    return _THOUGHT.sub("", text) if "<think>" in text else text


def _object_text(text: str) -> str | None:
    text = _without_thoughts(text)
    fenced = _FENCE.search(text)
    if fenced and "{" in fenced.group(1):
        text = fenced.group(1)
    start = text.find("{")
    return text[start:] if start >= 0 else None


def parse_partial(text: str) -> dict[str, Any] | None:
    """The fields parsed so far, or None when no object has started."""
    body = _object_text(text)
    if body is None:
        return None
    try:
        value = jiter.from_json(body.encode("utf-8"), partial_mode="trailing-strings")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_persona(text: str) -> Persona:
    """Validate the complete answer, naming the field that failed when it does not fit."""
    body = _object_text(text)
    if body is None:
        raise GenerationError(
            FailureKind.INVALID_OUTPUT,
            "The model's answer held no JSON object.",
            "Try again, or use a model that supports structured outputs.",
        )
    try:
        data, _ = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        raise GenerationError(
            FailureKind.INVALID_OUTPUT,
            f"The model's answer is not valid JSON ({exc.msg} at character {exc.pos}).",
            "Try again, or use a model that supports structured outputs.",
        ) from None
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "persona"
        raise GenerationError(
            FailureKind.INVALID_OUTPUT,
            f"The model's persona has an invalid field '{where}': {first['msg']}.",
            "Try again, or use a model that supports structured outputs.",
        ) from None
