"""The prompt: what the model is asked, built from the request and the schema."""

from __future__ import annotations

from collections.abc import Sequence

from persona_tui.engine.models import PERSONA_FIELDS, GenerationRequest

SYSTEM = (
    "You write synthetic user personas for product research and testing. "
    "Each persona is one specific, believable person, not a stereotype: concrete details, "
    "a life outside work, goals and frustrations that follow from their situation, and a voice of their own. "
    "Answer with a single JSON object and nothing else, with exactly these fields: "
    + ", ".join(PERSONA_FIELDS)
    + ". goals, frustrations and personality_traits are lists of short strings; "
    "tech_savviness is one of novice, basic, intermediate, advanced, expert."
)


def build_messages(request: GenerationRequest, index: int, avoid_names: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chat messages for persona ``index`` (0-based) of the batch."""
    lines = [f"Write persona {index + 1} of {request.count} for this description:", request.description]
    if request.organization:
        lines.append(f"The personas are for the organization: {request.organization}.")
    if avoid_names:
        shown = ", ".join(avoid_names[-30:])
        lines.append(f"These people already exist, so vary name, age, place and occupation from them: {shown}.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]
