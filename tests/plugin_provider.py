"""A provider plugin as a third party would write it: one file, registered by one entry-point line.

``tests/test_providers.py`` installs it through a ``*.dist-info`` folder with an
``entry_points.txt`` on ``PYTHONPATH`` and runs the real CLI against it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from pydantic import BaseModel

from persona_tui.config import Settings
from persona_tui.engine.providers.base import Capabilities, PromptSpec, ProviderInfo
from persona_tui.engine.providers.parts import AnswerPart, ReasoningPart, StreamPart, UsagePart
from persona_tui.models import Usage
from tests.helpers import persona_json, tokens_of


class EchoOptions(BaseModel):
    greeting: str = "Echo"
    """Becomes the first name of every persona (set in the config file's ``[providers.echo]``)."""


class EchoProvider:
    name = "echo"
    model = "echo-1"
    is_ai = True

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    @property
    def endpoint(self) -> str:
        return "echo.local"

    @property
    def label(self) -> str:
        return f"{self.model} at {self.endpoint}"

    def prepare(self) -> None:
        """Nothing to set up."""

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        yield ReasoningPart("Thinking about who to write. ")
        slot = spec.slot  # the persona's slot in the population plan: a plugin writes to it like a model
        fields = (
            {} if slot is None else {"age": slot.age, "pronouns": slot.pronouns, "tech_savviness": slot.tech_savviness}
        )
        if slot is not None and slot.location:
            fields["location"] = slot.location
        if slot is not None and slot.occupation:
            fields["occupation"] = slot.occupation
        for piece in tokens_of(persona_json(f"{self.greeting} Persona {spec.index + 1}", **fields)):
            yield AnswerPart(piece)
        yield UsagePart(Usage(prompt_tokens=100, completion_tokens=80, reasoning_tokens=6))

    async def aclose(self) -> None:
        """Nothing to release."""


def _build(options: BaseModel, settings: Settings) -> EchoProvider:
    assert isinstance(options, EchoOptions)
    return EchoProvider(options.greeting)


PROVIDER = ProviderInfo(
    name="echo",
    title="a test plugin that writes fixed personas",
    build=_build,
    options=EchoOptions,
    capabilities=Capabilities(reasoning=True),
    setup_hint="The echo plugin needs nothing.",
)
