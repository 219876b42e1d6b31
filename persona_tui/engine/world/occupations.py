"""What the world tables say about an occupation: its family (health, teaching, ...) and the
usual age to start it, so that a plan's ages and a persona's years of work fit it."""

from __future__ import annotations

import re

from persona_tui.engine.world.reading import fold
from persona_tui.engine.world.tables import Tables, load_tables


def start_age(occupation: str, tables: Tables | None = None) -> int:
    """The usual age to start the occupation: its job's, else its family's, else 20."""
    tables = tables or load_tables()
    for job in tables.jobs:
        if job.start and any(fold(t) == fold(occupation) for t in job.titles):
            return job.start
    family = family_of(occupation, tables)
    return next((f.start for f in tables.families if f.name == family), 20)


def family_of(occupation: str, tables: Tables | None = None) -> str:
    """The occupation's family ("health", "teaching", ...), or "" when none fits."""
    words = re.findall(r"[\w-]+", fold(occupation))
    text = " ".join(words)
    for family in (tables or load_tables()).families:
        for word in family.words:
            if word.endswith("*") and any(w.startswith(word[:-1]) for w in words):
                return family.name
            if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text):
                return family.name
    return ""
