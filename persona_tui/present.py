"""How personas and timings read, shared by the headless CLI and the app.

Everything here returns rich ``Text`` built from plain strings, never markup,
and every model-written value passes through :func:`strip_control` first.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from persona_tui.engine.text import strip_control
from persona_tui.models import CHANGE_WORDS, Persona, PersonaRecord, changed_fields

if TYPE_CHECKING:
    from persona_tui.engine.providers.base import ModelEntry

OFFLINE_LABEL = "offline sample generator (not AI)"


def fmt_seconds(seconds: float) -> str:
    if round(seconds * 1000) < 1000:  # 0.9999 s reads "1.0 s", not "1000 ms"
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def fmt_when(moment: datetime) -> str:
    """A moment in the user's own time zone, and which zone that is: ``2026-11-24 10:00 CET``."""
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or local.strftime('%z')}"


def one_line(value: object) -> str:
    return strip_control(str(value), keep_newlines=False)


def source_of(record: PersonaRecord) -> str:
    return OFFLINE_LABEL if record.provider == "offline" else f"{record.provider} {record.model}"


def describe(record: PersonaRecord, path: Path | None = None) -> Text:
    """A readable rendering of a whole saved persona."""
    text = describe_fields(record.persona.model_dump())
    if record.sources:
        text.append("\nGrounded in\n", style="bold")
        for source in record.sources:
            text.append(f"  • {one_line(source.title)}\n")
            text.append(f"    {one_line(source.url)}\n", style="dim")
    if record.request.organization:
        text.append(f"\nFor: {one_line(record.request.organization)}\n")
    footer = [
        ("Created", fmt_when(record.created_at)),
        ("Model", f"{source_of(record)} · {record.generation_seconds:.1f} s, {record.tokens} tokens"),
        ("Request", one_line(record.request.description)),
        ("Id", record.id),
    ]
    if record.versions:
        footer.insert(0, ("Version", change_caption(record, record.version_count).removeprefix("Version ")))
    if path is not None:
        footer.append(("File", str(path)))
    text.append("\n")
    for label, value in footer:
        text.append(f"{label + ':':<{FOOTER_LABEL}}", style="dim bold")
        text.append(f"{value}\n", style="dim")
    return text


FOOTER_LABEL = 10
"""The footer's labels are padded to this many cells, so their values line up (and wrap) in a column."""
HANG = re.compile(r" *• |(?:Version|Created|Model|Request|Id|File|For|Tech savviness|Communication): +")
"""The start of a line whose wrapped rest continues under its text: a bullet, or a label."""


class Hanging:
    """Text whose wrapped bullets and labelled lines continue under their text, not under the bullet.

    A renderable for the persona panes (and anything else that prints :func:`describe`): each
    line that starts with a bullet or a label is wrapped at the width left after it, and its
    continuation lines are indented to match.
    """

    def __init__(self, text: Text) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text.plain

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for line in self.text.split("\n", allow_blank=True):
            match = HANG.match(line.plain)
            hang = cell_len(match.group()) if match else 0
            if match is None or width < hang + 12:
                yield line
                continue
            head, indent = line[: match.end()], Text(" " * hang)
            for number, part in enumerate(line[match.end() :].wrap(console, width - hang)):
                yield Text.assemble(head if number == 0 else indent, part, no_wrap=True)


def hanging(text: Text) -> Hanging:
    """``text`` drawn with hanging indents (see :class:`Hanging`)."""
    return Hanging(text)


def describe_fields(fields: dict[str, Any]) -> Text:
    """The fields known so far, in reading order; works for a partial persona too."""
    text = Text()
    name = fields.get("name")
    text.append(one_line(name) if name else "…", style="bold")
    facts = [one_line(fields[k]) for k in ("pronouns", "age") if fields.get(k) not in (None, "")]
    if facts:
        text.append("  " + ", ".join(facts), style="dim")
    text.append("\n")
    where = [one_line(fields[k]) for k in ("occupation", "location") if fields.get(k)]
    if where:
        text.append(" · ".join(where) + "\n")
    if fields.get("background"):
        text.append("\n" + strip_control(str(fields["background"])) + "\n")
    for key, title in (("goals", "Goals"), ("frustrations", "Frustrations"), ("personality_traits", "Personality")):
        items = fields.get(key)
        if isinstance(items, list) and items:
            text.append(f"\n{title}\n", style="bold")
            for item in items:
                text.append(f"  • {one_line(item)}\n")
    for key, title in (("tech_savviness", "Tech savviness"), ("communication_style", "Communication")):
        if fields.get(key):
            text.append(f"{title}: ", style="bold")
            text.append(one_line(fields[key]) + "\n")
    if fields.get("quote"):
        text.append(f"\n“{one_line(fields['quote'])}”\n", style="italic")
    return text


CURRENT_MARK = "*"
"""Marks the model in use in `persona-tui models` and in the app's model picker."""


def model_cells(entry: ModelEntry, current: str) -> tuple[str, str, str, str]:
    """One listed model as the CLI's table and the app's picker show it: mark, id, owner, day created.

    The id is the server's text: drawn on one line with control sequences removed, never as markup.
    """
    return (
        CURRENT_MARK if entry.id == current else "",
        one_line(entry.id),
        one_line(entry.owned_by or ""),
        entry.created.strftime("%Y-%m-%d") if entry.created else "",
    )


FIELD_TITLES = {
    "name": "Name",
    "age": "Age",
    "pronouns": "Pronouns",
    "location": "Location",
    "occupation": "Occupation",
    "background": "Background",
    "goals": "Goals",
    "frustrations": "Frustrations",
    "personality_traits": "Personality",
    "tech_savviness": "Tech savviness",
    "communication_style": "Communication",
    "quote": "Quote",
}


def revision_diff(old: Persona, new: Persona) -> Text:
    """The fields a revision changed, old → new: a list's items removed (-) and added (+), other values
    before and after. Model text on both sides, so plain text only. Empty when nothing changed."""
    text = Text()
    for name in changed_fields(old, new):
        before, after = getattr(old, name), getattr(new, name)
        text.append(f"{FIELD_TITLES.get(name, name)}\n", style="bold")
        if isinstance(before, list) and isinstance(after, list):
            for item in before:
                if item not in after:
                    text.append(f"  - {one_line(item)}\n", style="red")
            for item in after:
                if item not in before:
                    text.append(f"  + {one_line(item)}\n", style="green")
        elif name in ("background",):
            text.append(f"  - {strip_control(str(before))}\n", style="red")
            text.append(f"  + {strip_control(str(after))}\n", style="green")
        else:
            text.append(f"  {one_line(before)}", style="red")
            text.append(" → ")
            text.append(f"{one_line(after)}\n", style="green")
    return text


def change_caption(record: PersonaRecord, number: int) -> str:
    """How version ``number`` (1-based) of a persona came to be: "Version 3 of 3 (refined 12:04: 'older')"."""
    total = record.version_count
    versions = record.versions or []
    if number <= 1:
        how = f"made {fmt_when(record.created_at)}" if total > 1 else ""
    else:
        change = versions[number - 2]
        when = change.at.astimezone().strftime("%H:%M")
        note = f": '{one_line(change.note)[:80]}'" if change.note else ""
        how = f"{CHANGE_WORDS.get(change.how, change.how)} {when}{note}"
    return f"Version {number} of {total}" + (f" ({how})" if how else "")


def version_persona(record: PersonaRecord, number: int) -> Persona:
    """The persona as it was in version ``number`` (1-based; the last is the record's own)."""
    versions = record.versions or []
    return versions[number - 1].persona if number <= len(versions) else record.persona
