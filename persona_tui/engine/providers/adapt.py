"""What a server refuses, learned from its 400s, and the request that works with it.

Servers differ: a reasoning model takes only its default temperature, an old
gateway has never heard of ``json_schema``, another rejects one schema keyword,
a proxy refuses ``stream_options``. Each refusal is read from the error the
server sent, turned into one step (drop that parameter, drop that keyword, one
rung down the structured-output ladder), told to the user in one sentence, and
kept per server and model in the data dir so the next run starts from what
works. Our own validation of the persona is the last word whatever the server
enforced, so every step down is safe.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

OPTIONAL_PARAMS = ("temperature", "stream_options")
"""Parameters we send that a request can do without (``max_tokens`` is never sent)."""
SCHEMA_KEYWORDS = (
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "pattern",
    "format",
    "additionalProperties",
)
"""Keywords of our schema a server may refuse one by one (the ones we can do without)."""
_REASONING_FAMILY = re.compile(r"(?:^|[/:])(?:o\d+(?:-mini|-pro)?|gpt-5[\w.-]*)(?:$|[-:@])", re.IGNORECASE)


def takes_only_default_temperature(model: str) -> bool:
    """OpenAI's reasoning families (o1, o3, o4-mini, gpt-5...) refuse any temperature but their default."""
    return _REASONING_FAMILY.search(model) is not None


class Format(IntEnum):
    """The structured-output ladder, from the strongest guarantee down."""

    SCHEMA = 0
    """``response_format: json_schema`` with ``strict: true`` (minus any keywords the server refused)."""
    OBJECT = 1
    """``response_format: json_object``, the schema told in the prompt."""
    PLAIN = 2
    """No response format: the schema in the prompt, the JSON read out of whatever comes back."""

    @property
    def label(self) -> str:
        return ("structured outputs (json_schema)", "JSON mode (json_object)", "a plain prompt")[self]


@dataclass(slots=True)
class ServerNotes:
    """What one server refuses for one model."""

    dropped: set[str] = field(default_factory=set)
    format: Format = Format.SCHEMA
    schema_drops: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.dropped or self.schema_drops) and self.format is Format.SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "dropped": sorted(self.dropped),
            "format": self.format.name.lower(),
            "schema_drops": sorted(self.schema_drops),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerNotes:
        """Notes from the data dir; anything not understood is left out (they are only a shortcut)."""
        dropped = {p for p in data.get("dropped", []) if p in OPTIONAL_PARAMS}
        keywords = {k for k in data.get("schema_drops", []) if k in SCHEMA_KEYWORDS}
        names = {f.name.lower(): f for f in Format}
        return cls(dropped, names.get(str(data.get("format", "")), Format.SCHEMA), keywords)

    def summary(self) -> str:
        """One line for the user: what is done differently for this server, and why."""
        said = [f"sent without {p}" for p in sorted(self.dropped)]
        if self.schema_drops:
            said.append(f"schema without {', '.join(sorted(self.schema_drops))}")
        if self.format is not Format.SCHEMA:
            said.append(f"asked through {self.format.label}")
        return "; ".join(said)


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to do differently after a refusal, and the sentence that tells the user."""

    param: str | None = None
    keyword: str | None = None
    format: Format | None = None

    def apply(self, notes: ServerNotes) -> None:
        if self.param:
            notes.dropped.add(self.param)
        if self.keyword:
            notes.schema_drops.add(self.keyword)
        if self.format is not None:
            notes.format = self.format


_FORMAT_WORDS = ("response_format", "json_schema", "structured output", "json schema", "json_object", "schema")
_NOT_A_STEP = (
    "context_length",
    "context length",
    "context window",
    "maximum context",
    "context size",
    "too many tokens",
    "api key",
    "api_key",
    "model_not_found",
    "does not exist",
)
"""Words of a 400 about something no step can fix (the request's length, the key, the model): never a step."""


def step_for(
    message: str, param: str | None, notes: ServerNotes, schema: dict[str, Any], sent: frozenset[str] = frozenset()
) -> Step | None:
    """The step a 400 asks for, or None when it is not about something we can do without.

    ``sent`` holds the optional parameters the refused request carried: only those can be left out. A 400
    that names another parameter (``messages``), or speaks of the context window, the key or the model,
    is no step, whatever else it mentions.
    """
    text = message.lower()
    param = (param or "").split(".")[0] or None
    if any(word in text for word in _NOT_A_STEP):
        return None
    for name in OPTIONAL_PARAMS:
        if name in sent and name not in notes.dropped and (param == name or (param is None and name in text)):
            return Step(param=name)
    if param not in (None, "response_format") or (param is None and not any(w in text for w in _FORMAT_WORDS)):
        return None
    if notes.format is Format.SCHEMA:
        used = keywords_in(schema) - notes.schema_drops
        for keyword in SCHEMA_KEYWORDS:
            if keyword in used and _names(text, keyword.lower()):
                return Step(keyword=keyword)
    if notes.format < Format.PLAIN:
        return Step(format=Format(notes.format + 1))
    return None


def _names(text: str, keyword: str) -> bool:
    """The keyword stands as a word of its own ("'minItems' is not permitted"), not inside another word
    ("response_format") nor as plain English ("the maximum context")."""
    quoted = any(f"{q}{keyword}{q}" in text for q in ("'", '"', "`"))
    return quoted or re.search(rf"(?<![\w_]){re.escape(keyword)}(?![\w_])\s+(?:is|are|keyword)", text) is not None


def keywords_in(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in SCHEMA_KEYWORDS:
                found.add(key)
            found |= keywords_in(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= keywords_in(item)
    return found


def without_keywords(schema: dict[str, Any], keywords: set[str]) -> dict[str, Any]:
    """A copy of the schema with the refused keywords removed wherever they are."""
    if not keywords:
        return schema

    def strip(node: Any) -> Any:
        if isinstance(node, dict):  # a keyword's value is a plain value; a field named like one holds a schema
            return {k: strip(v) for k, v in node.items() if k not in keywords or isinstance(v, dict)}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return strip(copy.deepcopy(schema))
