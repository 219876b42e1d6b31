"""Fixtures shared by the app tests: a frozen clock, fixed records, an app factory."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine.estimate import EstimateBook
from persona_tui.models import Persona, PersonaRecord, RequestInfo
from persona_tui.storage import PersonaStore
from persona_tui.tui.app import PersonaApp, make_app
from tests.fake_openai import FakeOpenAIServer
from tests.helpers import ScriptedProvider, persona_dict

# Dates in the table are shown in local time: pin it so pictures do not depend on the machine.
os.environ["TZ"] = "UTC"
time.tzset()

FIXED_NOW = datetime(2026, 11, 24, 9, 30, 0)


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_record(name: str, minutes_ago: int, **overrides: object) -> PersonaRecord:
    created = datetime(2026, 11, 24, 9, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    return PersonaRecord(
        id=hashlib.sha256(name.encode()).hexdigest()[:32],
        created_at=created,
        provider="openai",
        model="gpt-4o-mini",
        request=RequestInfo(description="field nurses in rural Kenya"),
        generation_seconds=9.4,
        tokens=412,
        persona=Persona.model_validate(persona_dict(name, **overrides)),
    )


SAMPLE_PEOPLE = [
    ("Amina Otieno", {"age": 47, "occupation": "Field nurse", "location": "Kisumu, Kenya"}),
    (
        "Bo Lindqvist",
        {"age": 34, "occupation": "Warehouse lead", "location": "Gothenburg, Sweden", "pronouns": "he/him"},
    ),
    ("Chen Wei", {"age": 29, "occupation": "UX researcher", "location": "Chengdu, China", "pronouns": "they/them"}),
]


@pytest.fixture
def sample_records() -> list[PersonaRecord]:
    return [make_record(name, i * 7, **extra) for i, (name, extra) in enumerate(SAMPLE_PEOPLE)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


AppFactory = Callable[..., PersonaApp]


@pytest.fixture
def app_factory(tmp_path: Path) -> AppFactory:
    """Build the app as the CLI does, with a scripted provider and a store in ``tmp_path``."""

    def build(
        provider: ScriptedProvider | None = None,
        *,
        records: list[PersonaRecord] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: FIXED_NOW,
        **settings: object,
    ) -> PersonaApp:
        values: dict[str, object] = {
            "data_dir": tmp_path,
            "heartbeat_seconds": 0.05,
            "slow_seconds": 0.2,
            "retry_base_delay": 0.01,
            "retry_max_delay": 0.05,
            "population_plan": False,  # scripted personas are fixed: test_plan_pipeline holds them to slots
            "regenerate_duplicates": False,  # and their stories alike: only the names differ
        }
        values.update(settings)
        store = PersonaStore(tmp_path / "personas")
        folder = store.root
        folder.mkdir(parents=True, exist_ok=True)
        for record in records or []:
            (folder / f"{record.id}.json").write_text(record.model_dump_json(indent=2))
        return make_app(
            Settings(**values),  # type: ignore[arg-type]
            provider or ScriptedProvider([]),
            store,
            clock=clock,
            now=now,
            estimates=EstimateBook(None),
        )

    return build


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """The loopback OpenAI-compatible server (``tests/fake_openai.py``); a module may still define its own."""
    with FakeOpenAIServer() as fake:
        yield fake
