"""The offline generator's answers in a conversation: made from the persona's own fields, not by AI.

What the question asks about is read from its words (frustrations, goals, technology, work, who
they are, where they live); the answer picks from the persona's matching field, the same pick for
the same question and turn in every process, in the first person, often closed with the persona's
quote. Nothing is made up beyond the fields: it is there so the feature can be tried without a key.
"""

from __future__ import annotations

import hashlib
import re

from persona_tui.models import Persona

_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ai", ("are you an ai", "are you a bot", "are you real", "real person", "are you human", "language model")),
    ("frustrations", ("frustrat", "annoy", "problem", "hate", "pain", "difficult", "hard", "struggl", "worst",
                      "wrong", "bother", "dislike", "complain", "fix")),
    ("goals", ("goal", "want", "hope", "plan", "achieve", "wish", "need", "future", "dream", "priorit", "success")),
    ("tech", ("tech", "app", "phone", "software", "computer", "online", "tool", "digital", "website", "internet",
              "device", "ai ")),
    ("work", ("job", "work", "living", "occupation", "career", "day look", "typical day", "colleague", "week",
              "routine", "usual day", "normal day")),
    ("place", ("where", "live", "city", "town", "country", "home")),
    ("age", ("how old", "your age", "age?")),
    ("self", ("who are you", "yourself", "introduce", "about you", "describe you", "your name")),
)  # fmt: skip
_TECH_WORDS = {
    "novice": "I'm not a technology person at all; I need someone to show me, and I forget it quickly.",
    "basic": "I manage the basics on my phone, but anything new takes me a while.",
    "intermediate": "I'm fine with most apps; I learn a new one if it is worth my time.",
    "advanced": "I'm comfortable with technology and usually the one who sets things up for others.",
    "expert": "Technology is second nature to me; I notice quickly when a tool is badly made.",
}


def _topic(question: str) -> str:
    asked = f" {question.casefold()} "
    for topic, words in _TOPICS:
        if any(word in asked for word in words):
            return topic
    return "other"


def _pick(items: list[str], question: str, turn: int) -> str:
    digest = hashlib.sha256(f"{question.strip().casefold()}\x00{turn}".encode()).digest()
    return items[int.from_bytes(digest[:4], "big") % len(items)]


def _sentence(text: str) -> str:
    text = text.strip()
    lowered = text[:1].lower() + text[1:] if text[1:2].islower() or len(text) < 2 else text
    return lowered.rstrip(".!?")


def _body(persona: Persona, topic: str, question: str, turn: int) -> str:
    p = persona
    first = p.name.split()[0]
    if topic == "ai":
        return (
            f"No. I'm {first}, a sample persona composed offline from templates: not AI, and not a real person. "
            "Connect a model to hear me answer for myself."
        )
    if topic == "frustrations":
        return f"Honestly? What gets to me most is {_sentence(_pick(p.frustrations, question, turn))}."
    if topic == "goals":
        return f"What I want most right now is to {_sentence(_pick(p.goals, question, turn))}."
    if topic == "tech":
        return _TECH_WORDS[p.tech_savviness]
    if topic == "work":
        return f"I work as {_article(p.occupation)} {p.occupation.lower()}. {p.background.split('. ')[0].rstrip('.')}."
    if topic == "place":
        return f"I live in {p.location}."
    if topic == "age":
        return f"I'm {p.age}."
    if topic == "self":
        return f"I'm {p.name}, {p.age}, {_article(p.occupation)} {p.occupation.lower()} in {p.location}."
    trait = _pick(p.personality_traits, question, turn)
    return f"Hard to say in a word. People tell me I'm {trait.lower()}, so I'd think it through before I answer."


def _article(word: str) -> str:
    return "an" if re.match(r"[aeiou]", word.strip(), re.IGNORECASE) else "a"


def offline_answer(persona: Persona, question: str, turn: int = 0) -> str:
    """The persona's answer to ``question`` (the ``turn``-th of the conversation), from its fields alone."""
    topic = _topic(question)
    body = _body(persona, topic, question, turn)
    if topic in ("ai", "age", "place"):
        return body
    # The quote closes the first answer, then about one in three: every answer ending on it read like a tic.
    if turn > 0 and _pick(["", "", "quote"], question, turn) == "":
        return body
    lead = _pick(["As I always say:", "Like I tell people:", "The way I see it:"], question, turn)
    return f'{body} {lead} "{persona.quote}"'
