"""The offline generator's refinement: an instruction applied to a persona by simple, visible rules (not AI).

Without a model nothing understands the instruction; these rules read a few common kinds of request
("more tech-savvy", "older", "more sceptical of AI", "lives alone") so a refinement can be tried without
a key. Each clause of the instruction changes something that can be seen: the tech level, the age, a
trait, a frustration, or a sentence added to the background. The same persona and instruction always
give the same revision.
"""

from __future__ import annotations

import re

from persona_tui.models import TECH_LEVELS, Persona

_CLAUSES = re.compile(r"\s*(?:[,;.]|\band\b)\s*", re.IGNORECASE)
_TECH_UP = re.compile(r"\b(more tech|tech[- ]savv|savvier|expert|geek|early adopter)", re.IGNORECASE)
_TECH_DOWN = re.compile(r"\b(less tech|not tech|novice|struggles? with tech|technophob|offline)", re.IGNORECASE)
_WARY = re.compile(r"\b(?:more\s+)?(sceptical|skeptical|wary|distrustful|suspicious)\s+(?:of|about)\s+(.+)", re.I)
_VERB = re.compile(r"^(lives|works|has|is|was|cares|loves|hates|uses|owns|speaks|travels|rides|drives)\b", re.I)
LIST_MOST = 8


def refine_offline(persona: Persona, instruction: str) -> Persona:
    """``persona`` changed by each clause of ``instruction`` (see the module's rules)."""
    data = persona.model_dump()
    first = persona.name.split(" ")[0]
    for clause in (c.strip() for c in _CLAUSES.split(instruction)):
        if clause:
            _apply(data, clause, first)
    return Persona.model_validate(data)


def _apply(data: dict[str, object], clause: str, first: str) -> None:
    lower = clause.lower()
    level = TECH_LEVELS.index(data["tech_savviness"])
    if _TECH_DOWN.search(clause):
        data["tech_savviness"] = TECH_LEVELS[max(level - 1, 0)]
    elif _TECH_UP.search(clause):
        data["tech_savviness"] = TECH_LEVELS[min(level + 1, len(TECH_LEVELS) - 1)]
    elif lower in ("older", "much older", "younger", "much younger"):
        step = 15 if "much" in lower else 8
        age = int(data["age"])  # type: ignore[call-overload]
        new = min(age + step, 100) if "older" in lower else max(age - step, 16 if age >= 16 else 0)
        data["age"] = new
        data["background"] = str(data["background"]).replace(f"{first}, {age},", f"{first}, {new},")
    elif wary := _WARY.search(clause):
        what = wary.group(2).strip()
        _add(data, "personality_traits", f"{wary.group(1).lower()} of {what}")
        _add(data, "frustrations", f"Being expected to trust {what} without seeing how it works")
    elif _VERB.match(clause):
        data["background"] = f"{data['background']} {first} {clause[0].lower()}{clause[1:]}.".strip()
    else:
        trait = re.sub(r"^(more|very|rather)\s+", "", clause, flags=re.IGNORECASE)
        _add(data, "personality_traits", trait[:300])


def _add(data: dict[str, object], key: str, item: str) -> None:
    items = list(data[key])  # type: ignore[call-overload]
    if item.casefold() in (i.casefold() for i in items):
        return
    if len(items) >= LIST_MOST:
        items.pop(0)
    items.append(item[:300])
    data[key] = items
