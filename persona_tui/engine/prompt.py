"""The prompt: what the model is asked, built from the request and the schema."""

from __future__ import annotations

import json
from collections.abc import Sequence

from persona_tui.engine.enrich import sources_prompt
from persona_tui.engine.plan import slot_lines
from persona_tui.models import PERSONA_FIELDS, GenerationRequest, Organization, Persona, Slot, Source

SYSTEM = (
    "You write synthetic user personas for product research and testing. "
    "Each persona is one specific, believable person, not a stereotype: concrete details, "
    "a life outside work, goals and frustrations that follow from their situation, and a voice of their own. "
    "Answer with a single JSON object and nothing else, with exactly these fields: "
    + ", ".join(PERSONA_FIELDS)
    + ". goals, frustrations and personality_traits are lists of short strings; "
    "tech_savviness is one of novice, basic, intermediate, advanced, expert."
)


PEOPLE_SHOWN = 30
"""At most this many existing personas are listed in the prompt (the newest)."""


def build_messages(
    request: GenerationRequest,
    index: int,
    people: Sequence[str] = (),
    org: Organization | None = None,
    sources: Sequence[Source] = (),
    slot: Slot | None = None,
    unlike: Sequence[str] = (),
) -> list[dict[str, str]]:
    """The chat messages for persona ``index`` (0-based) of the batch.

    ``people`` describes the personas already made for this request, one line
    each, so the model can vary name, age, place and occupation from them.
    """
    lines = [f"Write persona {index + 1} of {request.count} for this description:", request.description]
    if org is not None:
        lines.append("The personas are users or customers of this organization:")
        lines.append(org.context())
    elif request.organization:
        lines.append(f"The personas are for the organization: {request.organization}.")
    if sources:
        lines.append(sources_prompt(list(sources)))
    if slot is not None:
        lines.extend(slot_lines(slot, request.count))
    if unlike:
        lines.append("An earlier try read almost like these personas. Write a clearly different person:")
        lines.append("a different story, different goals and frustrations, a quote in a voice of their own.")
        lines.extend(f"- {person}" for person in unlike)
    if people:
        vary = "a story of their own" if slot is not None else "vary age, place and occupation from them"
        lines.append(f"These people already exist. Use a different name, and {vary}:")
        lines.extend(f"- {person}" for person in people[-PEOPLE_SHOWN:])
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


REFINE_SYSTEM = (
    "You revise synthetic user personas for product research and testing. "
    "You are given a persona as JSON and an instruction from the researcher. Change what the instruction asks "
    "for and what follows from it (background, goals, frustrations, traits, voice), keep everything else as it "
    "is, and keep the persona one specific, believable person. Keep the name unless the instruction asks for "
    "another. Answer with a single JSON object and nothing else, with exactly these fields: "
    + ", ".join(PERSONA_FIELDS)
    + ". goals, frustrations and personality_traits are lists of short strings; "
    "tech_savviness is one of novice, basic, intermediate, advanced, expert."
)


def build_refine_messages(persona: Persona, instruction: str, description: str = "") -> list[dict[str, str]]:
    """The chat messages asking for ``persona`` revised by the researcher's ``instruction``."""
    lines = []
    if description:
        lines += ["The persona was written for this description:", description]
    lines += [
        "The persona:",
        json.dumps(persona.model_dump(mode="json"), ensure_ascii=False, indent=2),
        "The researcher's instruction:",
        instruction,
        "Reply with the whole revised persona as one JSON object.",
    ]
    return [{"role": "system", "content": REFINE_SYSTEM}, {"role": "user", "content": "\n".join(lines)}]
