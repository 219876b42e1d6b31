"""Writing near-duplicates again, on the user's word (the app's report offers it).

Each persona to replace is written anew in its own slot, told what it read like, and checked
against the rest of its run; once the new one is saved, the old file is removed and the run's
record says which replaced which. A rewrite that fails leaves the old persona where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from persona_tui.engine.plan import draw_plan
from persona_tui.models import GenerationRequest, Mix, PersonaRecord, Plan, RunRecord
from persona_tui.storage import RunStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Personas to write again: ``records[i]`` is replaced, and must read unlike ``partners[i]``."""

    records: tuple[PersonaRecord, ...]
    partners: tuple[PersonaRecord, ...]
    keep: tuple[PersonaRecord, ...] = ()
    """The rest of the run: the new personas are checked against them too."""
    in_place: bool = False
    """A regeneration: each new persona takes its old one's id and file, the old one kept in its versions."""

    @classmethod
    def again(cls, record: PersonaRecord) -> Rewrite:
        """One persona regenerated: the same request and slot, a new persona in its place (same id)."""
        return cls((record,), (record,), in_place=True)

    def request(self) -> GenerationRequest:
        """What the first persona was asked for, once per persona to replace."""
        asked = self.records[0].request
        return GenerationRequest(
            description=asked.description,
            count=len(self.records),
            organization=asked.organization,
            mix=asked.mix or Mix(),
        )

    def plan(self, request: GenerationRequest, seed: int | None) -> Plan:
        """Each persona's own slot again (drawn anew for one made without a plan)."""
        drawn = draw_plan(request, seed=seed)
        slots = tuple(
            (record.slot or drawn.slots[i]).model_copy(update={"index": i}) for i, record in enumerate(self.records)
        )
        return Plan(seed=drawn.seed, slots=slots, mix=request.mix, sources={"slots": "the personas replaced"})

    def unlike(self, index: int) -> tuple[str, ...]:
        """The lines the prompt gives of what persona ``index`` must not read like: its partner, and itself."""
        partner, record = self.partners[index], self.records[index]
        return tuple(_line(r) for r in ((record,) if partner is record else (partner, record)))


def _line(record: PersonaRecord) -> str:
    p = record.persona
    return f"{p.name} ({p.age}, {p.occupation}): {p.background}"


async def original_run(runs: RunStore | None, rewrite: Rewrite) -> RunRecord | None:
    """The run the replaced personas came from, to update; None when it is not recorded."""
    run_id = rewrite.records[0].run_id
    if runs is None or not run_id:
        return None
    try:
        return await runs.latest(run_id)
    except StoreError as err:
        log.warning("%s", err.message)
        return None


def record_replacement(run: RunRecord, old: PersonaRecord, new: PersonaRecord) -> None:
    """The run's record says the new persona took the old one's place."""
    run.persona_ids = [new.id if pid == old.id else pid for pid in run.persona_ids]
    if new.id not in run.persona_ids:
        run.persona_ids.append(new.id)
    run.replaced.append(old.id)


def pairs_to_rewrite(
    near: Sequence[tuple[str, str]], records: Sequence[PersonaRecord]
) -> tuple[tuple[PersonaRecord, ...], tuple[PersonaRecord, ...]]:
    """From near-duplicate pairs of ids (a, b), the later-made of each pair to replace, and its partner.

    A persona is replaced once even when it is near several others; one of a pair already being
    replaced is not replaced again for the other pair.
    """
    by_id = {record.id: record for record in records}
    replace: list[PersonaRecord] = []
    partners: list[PersonaRecord] = []
    chosen: set[str] = set()
    for a_id, b_id in near:
        a, b = by_id.get(a_id), by_id.get(b_id)
        if a is None or b is None or a_id in chosen or b_id in chosen:
            continue
        later, earlier = (b, a) if b.created_at >= a.created_at else (a, b)
        replace.append(later)
        partners.append(earlier)
        chosen.add(later.id)
    return tuple(replace), tuple(partners)
