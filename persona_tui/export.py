"""Personas as JSON, JSON Lines, CSV, Markdown cards or system prompts, for ``export`` and the app's ctrl+s.

Both front ends write the same bytes, so the formatting lives here, below both
of them: the app importing it from the CLI made a cycle (``cli -> tui -> cli``).
Nothing here imports Textual. CSV cells are stripped of control sequences and
defused against spreadsheet formulas, because every field is model text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from persona_tui.engine.text import strip_control
from persona_tui.models import PersonaRecord
from persona_tui.storage import slugify

FORMATS = ("json", "jsonl", "csv", "md", "prompt")
SUFFIXES = {"json": "json", "jsonl": "jsonl", "csv": "csv", "md": "md", "prompt": "txt"}
"""The file name ending of each format."""
CARD_SEPARATOR = "\n---\n\n"
"""Between two personas in one Markdown or prompt document."""

_CSV_EXTRA = (
    "background",
    "goals",
    "frustrations",
    "personality_traits",
    "tech_savviness",
    "communication_style",
    "quote",
    "description",
    "generation_seconds",
    "tokens",
)
"""Columns after the table's own summary columns: the rest of each persona."""


def records_to_json(records: Iterable[PersonaRecord]) -> str:
    """Whole records as one indented JSON array (also what ``--json`` prints)."""
    return json.dumps([r.model_dump(mode="json") for r in records], indent=2, ensure_ascii=False)


def export_text(records: Sequence[PersonaRecord], fmt: str) -> str:
    """Every record in ``fmt`` (one of :data:`FORMATS`), ready to write as UTF-8."""
    if fmt == "json":
        return records_to_json(records) + "\n"
    if fmt == "jsonl":
        return "".join(r.model_dump_json() + "\n" for r in records)
    if fmt == "md":
        return CARD_SEPARATOR.join(persona_markdown(r) for r in records)
    if fmt == "prompt":
        return CARD_SEPARATOR.join(persona_prompt(r) for r in records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [*records[0].summary().keys()] if records else list(_CSV_EXTRA)
    extra = [k for k in _CSV_EXTRA if k not in header]
    writer.writerow(header + extra)
    for r in records:
        row = r.summary()
        p = r.persona
        more = {
            "background": p.background,
            "goals": "; ".join(p.goals),
            "frustrations": "; ".join(p.frustrations),
            "personality_traits": "; ".join(p.personality_traits),
            "tech_savviness": p.tech_savviness,
            "communication_style": p.communication_style,
            "quote": p.quote,
            "description": r.request.description,
            "generation_seconds": r.generation_seconds,
            "tokens": r.tokens,
        }
        writer.writerow([_csv_safe(row.get(k, more.get(k))) for k in header + extra])
    return buffer.getvalue()


def _csv_safe(value: object) -> str:
    """Neutralise spreadsheet formulas in model text (a cell starting with = + - @)."""
    text = strip_control("" if value is None else str(value), keep_newlines=False)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_target(folder: Path, moment: datetime, fmt: str) -> Path:
    """A file name for an export made at ``moment`` that no earlier export has (two in one second both stay)."""
    stem = f"personas-{moment:%Y%m%d-%H%M%S}"
    suffix = SUFFIXES.get(fmt, fmt)
    target = folder / f"{stem}.{suffix}"
    number = 1
    while target.exists():
        number += 1
        target = folder / f"{stem}-{number}.{suffix}"
    return target


def card_file_name(record: PersonaRecord, fmt: str) -> str:
    """One persona's file in a split export: its slug and id, never its raw name (model text is no path)."""
    return f"{slugify(record.persona.name)}-{record.id[:8]}.{SUFFIXES.get(fmt, fmt)}"


# ----- persona cards -----


def _text(value: object) -> str:
    """Model text for a card: no control or escape sequences, on one line."""
    return strip_control(str(value), keep_newlines=False)


def _md_inline(value: object) -> str:
    """Model text inside Markdown: one line, and a leading character that would start a heading, a list or a
    quote is escaped so the card's structure stays the card's."""
    text = _text(value)
    return "\\" + text if text[:1] in ("#", ">", "-", "*", "+", "|", "=") else text


def one_line_summary(record: PersonaRecord) -> str:
    """Who the persona is in one line: "34-year-old nurse in Nairobi, Kenya (she/her), intermediate with technology"."""
    p = record.persona
    return (
        f"{p.age}-year-old {_text(p.occupation)} in {_text(p.location)} ({_text(p.pronouns)}), "
        f"{p.tech_savviness} with technology"
    )


def persona_markdown(record: PersonaRecord) -> str:
    """A readable Markdown card of one persona, for sharing with people who will never open the app."""
    p = record.persona
    lines = [f"# {_md_inline(p.name)}", "", f"*{one_line_summary(record)}*", "", f"> “{_text(p.quote)}”", ""]
    lines += ["## Background", "", strip_control(p.background).strip(), ""]
    for title, items in (
        ("Goals", p.goals),
        ("Frustrations", p.frustrations),
        ("Personality traits", p.personality_traits),
    ):
        lines += [f"## {title}", "", *(f"- {_text(item)}" for item in items), ""]
    lines += ["## Technology", "", f"Tech savviness: {p.tech_savviness}", ""]
    lines += ["## Communication style", "", _md_inline(p.communication_style), ""]
    if record.sources:
        lines += ["## Sources", ""]
        for source in record.sources:
            title = _text(source.title).replace("[", "\\[").replace("]", "\\]") or "source"
            lines.append(f"- [{title}](<{_text(source.url).replace('>', '%3E')}>)")
        lines.append("")
    made = "the offline sample generator (not AI)" if record.provider == "offline" else _text(record.model)
    lines.append(
        f"*Synthetic persona made by {made} for “{_text(record.request.description)}”, "
        f"{record.created_at:%Y-%m-%d}; id {record.id}.*"
    )
    return "\n".join(lines) + "\n"


_TECH = {
    "novice": "You find most technology confusing and prefer someone to show you; you avoid apps you do not know.",
    "basic": "You manage everyday apps and messaging, but anything new or fiddly puts you off.",
    "intermediate": "You are comfortable with the usual apps and can work most things out, with some patience.",
    "advanced": "You pick up new tools quickly and notice when software is badly made.",
    "expert": "You understand technology in depth and judge products by how they work inside.",
}


def persona_prompt(record: PersonaRecord) -> str:
    """One persona as a system prompt for a simulated user: who they are, how they speak, what they want and
    what frustrates them, and to stay in character (first person, never claiming to be an AI)."""
    p = record.persona
    first = _text(p.name).split(" ")[0]
    bullets = lambda items: "\n".join(f"- {_text(item)}" for item in items)  # noqa: E731
    parts = [
        f"You are {_text(p.name)}, {p.age} years old ({_text(p.pronouns)}), {_text(p.occupation)} "
        f"in {_text(p.location)}. You are taking part in a user research conversation as yourself.",
        f"About you: {_text(p.background)}",
        f"What you want:\n{bullets(p.goals)}",
        f"What frustrates you:\n{bullets(p.frustrations)}",
        f"Your personality: {', '.join(_text(t) for t in p.personality_traits)}.",
        f"Technology: {_TECH[p.tech_savviness]}",
        f"How you speak: {_text(p.communication_style)} Something you might say: “{_text(p.quote)}”",
        "How to answer:\n"
        f"- Answer in the first person, as {first}, in your own voice and at the length you would really speak.\n"
        "- Stay in character for the whole conversation; never step out of it to explain or summarise.\n"
        "- Do not say or suggest that you are an AI, a language model or a simulation; if asked, answer as "
        f"{first} would.\n"
        "- Say when you do not know something or would not do it, rather than inventing expertise you lack.",
    ]
    return "\n\n".join(parts) + "\n"
