"""Issue 16 item 3: a generation through the OpenAI Batch API, against a loopback fake of its files and batches."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.engine.providers.openai_compatible import OpenAIProvider
from persona_tui.models import GenerationRequest, PersonaRecord, RunRecord
from persona_tui.storage import PersonaStore, RunStore
from tests.fake_batch import FakeBatchServer

DESCRIPTION = "bakers in Porto"


def settings(tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "seed": 3, "batch_poll_seconds": 0.05}
    values.update(kw)
    return Settings(**values)


def provider(server: FakeBatchServer) -> OpenAIProvider:
    return OpenAIProvider(model="gpt-4o-mini", api_key="sk-test", base_url=server.base_url)


async def drive(
    s: Settings,
    server: FakeBatchServer,
    request: GenerationRequest,
    *,
    resume: RunRecord | None = None,
    cancel_when: Any = None,
    stop_when: Any = None,
    batch_output: str | None = None,
) -> list[ev.Event]:
    cancel = asyncio.Event()
    events: list[ev.Event] = []
    model = provider(server)
    try:
        async for event in generate(
            request,
            provider=model,
            store=PersonaStore(s.personas_dir),
            settings=s,
            estimates=EstimateBook(None),
            cancel=cancel,
            rng=random.Random(0),
            runs=RunStore(s.runs_dir),
            resume=resume,
            batch_api=resume is None and batch_output is None,
            batch_output=batch_output,
        ):
            events.append(event)
            if cancel_when is not None and cancel_when(event):
                cancel.set()
            if stop_when is not None and stop_when(event):
                break
    finally:
        await model.aclose()
    return events


def stored(folder: Path) -> list[PersonaRecord]:
    return [PersonaRecord.model_validate_json(p.read_bytes()) for p in folder.glob("[!.]*.json")]


def only_run(s: Settings) -> RunRecord:
    runs = RunStore(s.runs_dir).all_sync()
    assert len(runs) == 1
    return runs[0]


def test_five_personas_through_the_batch_api(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with FakeBatchServer(per_poll=2) as server:
        events = asyncio.run(drive(s, server, GenerationRequest(description=DESCRIPTION, count=5)))
        calls = list(server.calls)
        upload = next(f for f in server.files.values() if f["obj"]["purpose"] == "batch")["data"]
    lines = [json.loads(line) for line in upload.decode().splitlines()]
    run = only_run(s)
    assert [line["custom_id"] for line in lines] == [f"{run.id}-{i}" for i in range(5)]
    body = lines[0]["body"]
    assert lines[0]["url"] == "/v1/chat/completions" and body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"]
    assert body["temperature"] == 0.9 and "slot" not in body and "stream" not in body
    assert ("POST", "/v1/files") in calls and ("POST", "/v1/batches") in calls
    records = [r for r in stored(s.personas_dir) if r.run_id == run.id]
    assert len(records) == 5
    assert sorted(r.slot.index for r in records if r.slot is not None) == list(range(5))
    assert run.batch is not None and run.batch.status == "completed" and run.batch.collected
    assert run.batch.id.startswith("batch_")
    assert len(run.saved) == 5 and run.finished_at is not None
    notices = [e.text for e in events if isinstance(e, ev.ServerNotice)]
    assert any("in progress 2/5" in n for n in notices) and any("4/5" in n for n in notices)
    progress = [e.fraction for e in events if isinstance(e, ev.Progress)]
    assert progress == sorted(progress) and 0.3 < max(progress) < 1.0
    assert any(isinstance(e, ev.Progress) and e.eta is not None for e in events)
    finished = events[-1]
    assert isinstance(finished, ev.Finished) and len(finished.summary.saved) == 5 and finished.summary.ok
    assert any(isinstance(e, ev.DiversityReported) for e in events)
