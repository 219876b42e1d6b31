"""Issue 16 item 3: a generation through the OpenAI Batch API, against a loopback fake of its files and batches."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from persona_tui import cli
from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.engine.providers.openai_compatible import OpenAIProvider
from persona_tui.models import GenerationRequest, PersonaRecord, RunRecord
from persona_tui.storage import PersonaStore, RunStore
from tests.fake_batch import FakeBatchServer, default_answer

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
    stages = [e.detail for e in events if isinstance(e, ev.StageStarted) and e.index < 0]
    assert any("in progress 2/5" in n for n in stages) and any("4/5" in n for n in stages)
    progress = [e.fraction for e in events if isinstance(e, ev.Progress)]
    assert progress == sorted(progress) and 0.3 < max(progress) < 1.0
    assert any(isinstance(e, ev.Progress) and e.eta is not None for e in events)
    finished = events[-1]
    assert isinstance(finished, ev.Finished) and len(finished.summary.saved) == 5 and finished.summary.ok
    assert any(isinstance(e, ev.DiversityReported) for e in events)


def test_a_failed_request_is_reported_and_the_others_saved(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with FakeBatchServer(per_poll=5) as server:
        server.fail = {2}
        events = asyncio.run(drive(s, server, GenerationRequest(description=DESCRIPTION, count=5)))
    run = only_run(s)
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and failed[0].index == 2 and "The model is overloaded." in failed[0].message
    assert sorted(r.slot.index for r in stored(s.personas_dir) if r.slot is not None) == [0, 1, 3, 4]
    assert sorted(run.saved) == [0, 1, 3, 4] and 2 in run.failed
    summary = events[-1].summary  # type: ignore[union-attr]
    assert len(summary.saved) == 4 and summary.failed == 1
    assert any(isinstance(e, ev.StageStarted) and e.detail.endswith("5/5, 1 failed") for e in events)


def test_an_invalid_answer_fails_its_persona_and_a_broken_slot_is_kept(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with FakeBatchServer(per_poll=5) as server:
        default = server.answer
        server.answer = lambda index, body: "not json at all" if index == 1 else default(index, body)
        events = asyncio.run(drive(s, server, GenerationRequest(description=DESCRIPTION, count=3)))
    assert [e.index for e in events if isinstance(e, ev.Failed)] == [1]
    assert len(stored(s.personas_dir)) == 2
    assert any(isinstance(e, ev.SlotBroken) for e in events)  # the fake's personas ignore their slots


def test_cancel_cancels_the_batch_on_the_server(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with FakeBatchServer(per_poll=1) as server:
        events = asyncio.run(
            drive(
                s,
                server,
                GenerationRequest(description=DESCRIPTION, count=5),
                cancel_when=lambda e: isinstance(e, ev.StageStarted) and "in progress 1/5" in e.detail,
            )
        )
        calls = list(server.calls)
        (batch,) = server.batches.values()
    assert any(method == "POST" and path.endswith("/cancel") for method, path in calls)
    assert batch["obj"]["status"] == "cancelling"
    assert any(isinstance(e, ev.ServerNotice) and "Cancelled batch" in e.text for e in events)
    assert isinstance(events[-2], ev.Cancelled) and events[-1].summary.cancelled  # type: ignore[union-attr]
    run = only_run(s)
    assert run.stopped and run.batch is not None and run.batch.status == "cancelling"
    assert not stored(s.personas_dir)


def test_resume_collects_the_batch_of_a_run_whose_process_died(tmp_path: Path) -> None:
    s = settings(tmp_path)
    request = GenerationRequest(description=DESCRIPTION, count=5)
    with FakeBatchServer(per_poll=2) as server:
        # The process goes away right after the batch is created: the iterating task stops, the batch goes on.
        first = asyncio.run(
            drive(s, server, request, stop_when=lambda e: isinstance(e, ev.ServerNotice) and "created" in e.text)
        )
        assert not any(isinstance(e, ev.Finished) for e in first)
        run = only_run(s)
        assert run.batch is not None and run.batch.id in server.batches and not stored(s.personas_dir)
        run.pid = None
        events = asyncio.run(drive(s, server, run.to_request(), resume=run))
        creates = [c for c in server.calls if c == ("POST", "/v1/batches")]
    assert len(creates) == 1  # picked up, not sent again
    records = [r for r in stored(s.personas_dir) if r.run_id == run.id]
    assert sorted(r.slot.index for r in records if r.slot is not None) == list(range(5))
    assert events[-1].summary.ok and len(events[-1].summary.saved) == 5  # type: ignore[union-attr]
    after = only_run(s)
    assert len(after.saved) == 5 and after.complete and after.batch is not None and after.batch.collected


def test_the_cli_generates_through_the_batch_api_and_resume_finds_nothing_left(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeBatchServer(per_poll=3) as server:
        base = ["--data-dir", str(tmp_path), "--provider", "openai", "--base-url", server.base_url]
        monkeypatch.setenv("PERSONA_TUI_BATCH_POLL_SECONDS", "0.05")
        code = cli.main(["generate", DESCRIPTION, "-n", "4", "--batch-api", "--json", *base])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert len(json.loads(out.out)) == 4
    run = only_run(Settings(data_dir=tmp_path))
    assert run.batch is not None and run.batch.collected and len(run.saved) == 4


def test_export_and_import_round_trip(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    s = settings(tmp_path)
    request = GenerationRequest(description=DESCRIPTION, count=3)
    with FakeBatchServer(per_poll=1) as server:
        # A run is recorded (its plan drawn) and cancelled before any answer: its three personas are left.
        asyncio.run(drive(s, server, request, cancel_when=lambda e: isinstance(e, ev.ServerNotice)))
    run = only_run(s)
    out = tmp_path / "requests.jsonl"
    base = ["--data-dir", str(tmp_path)]
    assert cli.main(["batch", "export", run.id[:8], "-o", str(out), *base]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"{run.id}-{i}" for i in range(3)]
    assert all(line["url"] == "/v1/chat/completions" and line["body"]["messages"] for line in lines)
    # What `vllm run-batch` (or a downloaded output file) gives back, one line failed.
    rows = []
    for index, line in enumerate(lines):
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": default_answer(index, {})}}]}
        response = {"status_code": 200, "body": body}
        if index == 1:
            response = {"status_code": 400, "body": {"error": {"message": "context too long"}}}
        rows.append(json.dumps({"id": f"r{index}", "custom_id": line["custom_id"], "response": response}))
    rows.append(json.dumps({"custom_id": "someone-else-0", "response": {"status_code": 200, "body": {}}}))
    answers = tmp_path / "output.jsonl"
    answers.write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    code = cli.main(["batch", "import", str(answers), "--run", run.id[:8], "--json", *base])
    result = capsys.readouterr()
    assert code == 1, result.err  # one persona failed
    assert "context too long" in result.err
    assert len(json.loads(result.out)) == 2
    assert sorted(r.slot.index for r in stored(s.personas_dir) if r.slot is not None) == [0, 2]
    after = only_run(s)
    assert sorted(after.saved) == [0, 2]
    # The second export has only what is left.
    assert cli.main(["batch", "export", run.id[:8], "-o", str(out), *base]) == 0
    assert [json.loads(line)["custom_id"] for line in out.read_text().splitlines()] == [f"{run.id}-1"]


def test_a_provider_without_a_batch_api_says_so(tmp_path: Path) -> None:
    from persona_tui.engine.providers.offline import OfflineProvider

    s = settings(tmp_path, offline_tokens_per_second=0)

    async def go() -> list[ev.Event]:
        return [
            e
            async for e in generate(
                GenerationRequest(description=DESCRIPTION, count=2),
                provider=OfflineProvider(seed=1, tokens_per_second=0),
                store=PersonaStore(s.personas_dir),
                settings=s,
                runs=RunStore(s.runs_dir),
                batch_api=True,
            )
        ]

    events = asyncio.run(go())
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and "has no Batch API" in failed[0].message
    assert not events[-1].summary.ok and events[-1].summary.not_started == 2  # type: ignore[union-attr]


def test_output_lines_in_every_shape() -> None:
    from persona_tui.engine.pipeline.batch_api import answers_from

    run_id = "a" * 32
    lines = [
        {
            "custom_id": f"{run_id}-0",
            "response": {
                "status_code": 200,
                "body": {
                    "choices": [{"message": {"content": "{}"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 5},
                },
            },
        },
        {
            "custom_id": f"{run_id}-1",
            "response": None,
            "error": {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window expired.",
            },
        },
        {"custom_id": f"{run_id}-2", "response": {"status_code": 429, "body": {"error": {"message": "Rate limit"}}}},
        {"custom_id": f"{run_id}-x", "response": {}},
        {"custom_id": "other-3", "response": {}},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n"
    answers = answers_from(text, run_id)
    assert [a.index for a in answers] == [0, 1, 2]
    assert answers[0].text == "{}" and answers[0].usage is not None and answers[0].usage.completion_tokens == 5
    assert answers[1].error is not None and "completion window expired" in answers[1].error
    assert answers[2].error == "Rate limit" and answers[2].status == 429


def test_a_rejected_key_is_one_sentence_without_the_key(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with FakeBatchServer() as server:
        server.reject = (401, "Incorrect API key provided: sk-test.")
        events = asyncio.run(drive(s, server, GenerationRequest(description=DESCRIPTION, count=2)))
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and failed[0].kind.value == "auth"
    assert "Batch API call failed" in failed[0].message and "sk-test" not in failed[0].message
    assert isinstance(events[-1], ev.Finished) and not events[-1].summary.ok


@pytest.mark.asyncio
async def test_the_app_generates_through_the_batch_api_from_the_palette(tmp_path: Path, app_factory: Any) -> None:
    from textual.widgets import Input

    with FakeBatchServer(per_poll=2) as server:
        model = provider(server)
        app = app_factory(model, batch_poll_seconds=0.05)  # type: ignore[arg-type]
        async with app.run_test(size=(120, 36)) as pilot:
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Generate with the Batch API" in titles
            app.query_one("#description", Input).value = DESCRIPTION
            app.query_one("#count", Input).value = "3"
            app.action_generate_batch_api()
            for _ in range(300):
                await pilot.pause(0.02)
                if not app.running:
                    break
            assert not app.running
            log = "\n".join(str(line) for line in app.log_pane.lines)
        await model.aclose()
        calls = list(server.calls)
    assert ("POST", "/v1/batches") in calls
    assert "batch_" in log and "in progress" in log
    assert len(stored(tmp_path / "personas")) == 3


@pytest.mark.asyncio
async def test_the_palette_offers_the_batch_api_only_where_there_is_one(app_factory: Any) -> None:
    app = app_factory()  # a scripted provider: no Batch API
    async with app.run_test(size=(120, 36)):
        assert "Generate with the Batch API" not in [c.title for c in app.get_system_commands(app.screen)]
