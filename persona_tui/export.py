"""Personas as JSON, JSON Lines or CSV, for the ``export`` command and the app's ctrl+s.

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

FORMATS = ("json", "jsonl", "csv")

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
    target = folder / f"{stem}.{fmt}"
    number = 1
    while target.exists():
        number += 1
        target = folder / f"{stem}-{number}.{fmt}"
    return target
