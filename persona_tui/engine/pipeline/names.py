"""Names already used: no two personas made for the same description share one.

The model is also told who exists already (name, age, job, place), so it
varies the next persona instead of only changing its name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from persona_tui.models import Persona, PersonaRecord
from persona_tui.storage import PersonaStore, StoreError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TakenNames:
    taken: set[str] = field(default_factory=set)
    """Names, case-folded, that no new persona may have."""
    people: list[str] = field(default_factory=list)
    """One line per persona of this request already made, told to the model so it varies them."""

    def take(self, persona: Persona) -> None:
        self.taken.add(persona.name.casefold())
        self.people.append(f"{persona.name} ({persona.age}, {persona.occupation}, {persona.location})")

    def __contains__(self, name: str) -> bool:
        return name.casefold() in self.taken

    def sorted(self) -> tuple[str, ...]:
        return tuple(sorted(self.taken))


async def names_for(description: str, existing: list[PersonaRecord] | None, store: PersonaStore) -> TakenNames:
    """The names of personas already made for this description (read from the store unless given)."""
    records = existing
    if records is None:
        try:
            records = (await store.load_all()).records
        except StoreError as exc:
            log.warning("could not read existing personas: %s", exc.message)
            records = []
    names = TakenNames()
    wanted = description.casefold()
    for record in records:
        if record.request.description.casefold() == wanted:
            names.take(record.persona)
    return names
