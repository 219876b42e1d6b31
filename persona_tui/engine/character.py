"""Staying in character: the persona as the other party of a conversation, and a cheap check of its answers.

:func:`persona_system_prompt` tells a model who it is: every field of the persona and the
sources that grounded it, its voice (the communication style and the quote), first person,
and never an AI unless asked about it directly. :func:`check_answer` is a rule pass over an
answer: an age, a place or a job stated that differs from the persona's, or an answer that
calls itself an AI when nobody asked; each finding is one short sentence for the view.
"""

from __future__ import annotations

import re

from persona_tui.models import Persona, PersonaRecord

EXCERPT_CHARS = 400
"""Of each source that grounded the persona, this much of its excerpt goes into the prompt."""


TECH_WORDS = {
    "novice": "You find most technology confusing and prefer someone to show you; you avoid apps you do not know.",
    "basic": "You manage everyday apps and messaging, but anything new or fiddly puts you off.",
    "intermediate": "You are comfortable with the usual apps and can work most things out, with some patience.",
    "advanced": "You pick up new tools quickly and notice when software is badly made.",
    "expert": "You understand technology in depth and judge products by how they work inside.",
}
"""Each tech level as the persona would live it, so the model answers with it rather than about it."""


def persona_system_prompt(record: PersonaRecord) -> str:
    """The system message that makes a model answer as the persona."""
    p = record.persona
    lines = [
        f"You are {p.name}. Stay in character for the whole conversation.",
        "",
        "Who you are:",
        f"- Name: {p.name}",
        f"- Age: {p.age}",
        f"- Pronouns: {p.pronouns}",
        f"- Location: {p.location}",
        f"- Occupation: {p.occupation}",
        f"- Background: {p.background}",
        f"- Goals: {'; '.join(p.goals)}",
        f"- Frustrations: {'; '.join(p.frustrations)}",
        f"- Personality: {', '.join(p.personality_traits)}",
        f"- Comfort with technology: {p.tech_savviness}. {TECH_WORDS[p.tech_savviness]}",
        f"- How you talk: {p.communication_style}",
        f'- Something you would say: "{p.quote}"',
    ]
    if record.request.organization:
        lines.append(f"- You were described for: {record.request.organization}")
    if record.sources:
        lines += ["", "Real-world material your life is grounded in (use it, do not cite it):"]
        for source in record.sources:
            excerpt = " ".join(source.excerpt.split())[:EXCERPT_CHARS]
            lines.append(f"- {source.title}: {excerpt}" if excerpt else f"- {source.title}")
    lines += [
        "",
        "How to answer:",
        "- Answer in the first person, as yourself, in your own voice: the way you talk above, "
        "with the words and rhythm of your quote.",
        "- Keep to the facts above (your age, where you live, your job); when asked about something they do not "
        "cover, answer as this person plausibly would.",
        "- Answer in plain text, a few sentences, as in a spoken interview; no lists or headings unless asked.",
        "- Say when you do not know something or would not do it, rather than inventing expertise you lack.",
        "- Never say you are an AI, a model or a persona. Only if you are asked directly whether you are an AI "
        "or a real person, say honestly that you are a simulated persona.",
    ]
    return "\n".join(lines)


# ----- the rule pass -----

_AGE = re.compile(
    r"\b(?:I am|I'm|I’m|I just turned|I turned)\s+(\d{1,3})\b"
    r"(?!\s*(?:%|percent|minutes|hours|days|weeks|months|km|miles|kids|children|times|euros|dollars))"
    r"|\bmy age is (\d{1,3})\b",
    re.IGNORECASE,
)
_PLACE = re.compile(
    r"\b(?:I live in|I'm based in|I’m based in|I am based in|I live near|here in|I'm from|I’m from|I am from)\s+"
    r"((?:[A-Z][\w'’.-]*)(?:[ ,]+(?:[A-Z][\w'’.-]*))*)"
)
_JOB = re.compile(
    r"\b(?:I work as|I'm working as|I am working as|I’m working as|my job is|I'm employed as|I am employed as)"
    r"\s+(?:an?\s+|the\s+)?([a-z][a-z -]{2,40}?)(?=[.,;!?]| at | in | for | and |$)",
    re.IGNORECASE,
)
_AI = re.compile(
    r"\b(?:as an AI|I am an AI|I'm an AI|I’m an AI|as a language model|I am a language model|"
    r"I'm a language model|I’m a language model|as an artificial intelligence|I am an assistant|I'm an assistant)\b",
    re.IGNORECASE,
)
_ASKED_AI = re.compile(r"\b(?:AI|bot|robot|chatbot|language model|real person|human|machine|artificial)\b", re.I)
_SMALL = {"a", "an", "the", "of", "and", "in", "at", "for", "to", "my", "on", "near", "area", "rural", "city"}
AGE_SLACK = 1
"""Years an age stated may differ from the persona's (a birthday) before it is flagged."""


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-zà-ÿ]+", text.casefold()) if w not in _SMALL and len(w) > 2}


def _stem(word: str) -> str:
    return word[:5]


def _overlaps(said: str, field: str) -> bool:
    """Whether a place or a job said shares a word (or a word's start) with the persona's field."""
    said_words, field_words = _words(said), _words(field)
    if not said_words:
        return True  # nothing checkable was said
    return bool({_stem(w) for w in said_words} & {_stem(w) for w in field_words})


def check_answer(persona: Persona, answer: str, question: str = "") -> tuple[str, ...]:
    """What in ``answer`` contradicts ``persona``: one short sentence per finding (none: in character)."""
    flags: list[str] = []
    for match in _AGE.finditer(answer):
        said = int(next(group for group in match.groups() if group))
        if 0 < said <= 120 and abs(said - persona.age) > AGE_SLACK:
            flags.append(f"says they are {said}; the persona is {persona.age}")
            break
    for match in _PLACE.finditer(answer):
        place = match.group(1).strip(" ,.")
        if not _overlaps(place, persona.location):
            flags.append(f"says they live in {place}; the persona lives in {persona.location}")
            break
    for match in _JOB.finditer(answer):
        job = match.group(1).strip()
        if not _overlaps(job, f"{persona.occupation} {persona.background}"):
            flags.append(f"says they work as {job}; the persona is {persona.occupation}")
            break
    if _AI.search(answer) and not _ASKED_AI.search(question):
        flags.append("calls itself an AI, unasked")
    return tuple(flags)
