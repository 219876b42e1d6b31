"""The persona model, its strict schema and request validation."""

from __future__ import annotations

import json

import pytest

from persona_tui.models import (
    COUNT_MAX,
    DESCRIPTION_MAX,
    GenerationRequest,
    Persona,
    PersonaRecord,
    RequestError,
    RequestInfo,
    strict_json_schema,
)
from tests.helpers import persona_dict


def test_schema_is_strict() -> None:
    schema = strict_json_schema(Persona)

    def objects(node: object):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for item in node:
                yield from objects(item)

    found = list(objects(schema))
    assert found, "the schema has at least the persona object"
    for node in found:
        assert node["additionalProperties"] is False
        assert sorted(node["required"]) == sorted(node["properties"])
    assert "default" not in json.dumps(schema)
    assert set(schema["properties"]) == set(Persona.model_fields)


def test_request_is_trimmed() -> None:
    request = GenerationRequest.create("   nurses in Kenya \n", 3)
    assert request.description == "nurses in Kenya"
    assert request.count == 3


@pytest.mark.parametrize("description", ["", "   ", "\n\t"])
def test_blank_description_is_refused(description: str) -> None:
    with pytest.raises(RequestError) as info:
        GenerationRequest.create(description)
    assert info.value.field == "description"
    assert "empty" in info.value.message


def test_description_length_limit() -> None:
    GenerationRequest.create("x" * DESCRIPTION_MAX)
    with pytest.raises(RequestError) as info:
        GenerationRequest.create("x" * (DESCRIPTION_MAX + 1))
    assert "4,001" in info.value.message and "4,000" in info.value.message


@pytest.mark.parametrize("count", [0, -1, COUNT_MAX + 1])
def test_count_out_of_range(count: int) -> None:
    with pytest.raises(RequestError) as info:
        GenerationRequest.create("nurses", count)
    assert info.value.field == "count"
    assert f"1 to {COUNT_MAX:,}" in info.value.message


def test_record_round_trip_and_id() -> None:
    record = PersonaRecord(
        provider="offline",
        model="offline-sample",
        request=RequestInfo(description="nurses"),
        generation_seconds=1.5,
        tokens=300,
        persona=Persona.model_validate(persona_dict()),
    )
    assert len(record.id) == 32
    again = PersonaRecord.model_validate_json(record.model_dump_json())
    assert again == record
    other = PersonaRecord.model_validate_json(record.model_dump_json(exclude={"id"}))
    assert other.id != record.id


def test_foreign_json_is_not_a_record() -> None:
    data = json.loads(
        PersonaRecord(
            provider="x",
            model="y",
            request=RequestInfo(description="d"),
            generation_seconds=0,
            tokens=0,
            persona=Persona.model_validate(persona_dict()),
        ).model_dump_json()
    )
    data["kind"] = "something/else"
    with pytest.raises(ValueError):
        PersonaRecord.model_validate(data)


def test_persona_fields_are_trimmed_and_bounded() -> None:
    persona = Persona.model_validate(persona_dict(name="  Ann  "))
    assert persona.name == "Ann"
    with pytest.raises(ValueError):
        Persona.model_validate(persona_dict(goals=[]))
    with pytest.raises(ValueError):
        Persona.model_validate(persona_dict(tech_savviness="wizard"))
