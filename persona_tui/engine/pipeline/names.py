"""Names already used: no two personas made for the same description share one.

The model is also told who exists already (name, age, job, place), so it
varies the next persona instead of only changing its name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from persona_tui.models import Persona, PersonaRecord
from persona_tui.storage import IndexEntry, PersonaStore, StoreError, index_entry

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TakenNames:
    taken: set[str] = field(default_factory=set)
    """Names, case-folded, that no new persona may have."""
    people: list[str] = field(default_factory=list)
    """One line per persona of this request already made, told to the model so it varies them."""
    entries: list[IndexEntry] = field(default_factory=list)
    """The personas already made for this description (from the store's names index)."""
    _sorted: tuple[str, ...] | None = None

    def take(self, persona: Persona) -> None:
        self.taken.add(persona.name.casefold())
        self.people.append(f"{persona.name} ({persona.age}, {persona.occupation}, {persona.location})")
        self._sorted = None

    def __contains__(self, name: str) -> bool:
        return name.casefold() in self.taken

    def sorted(self) -> tuple[str, ...]:
        """The taken names in order; built when asked for (only the offline generator asks), then kept until a take."""
        if self._sorted is None:
            self._sorted = tuple(sorted(self.taken))
        return self._sorted


async def names_for(description: str, existing: list[PersonaRecord] | None, store: PersonaStore) -> TakenNames:
    """The names of personas already made for this description (from the store's names index unless given)."""
    names = TakenNames()
    if existing is None:
        try:
            entries = await store.names(description)
        except StoreError as exc:
            log.warning("could not read existing personas: %s", exc.message)
            entries = []
        names.entries = entries
        names.taken = {entry.name.casefold() for entry in entries}
        names.people = [entry.people for entry in entries]
        return names
    wanted = description.casefold()
    for record in existing:
        if record.request.description.casefold() == wanted:
            names.take(record.persona)
            names.entries.append(index_entry(record))
    return names
