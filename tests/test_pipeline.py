"""The pipeline's event sequence for success, failure, retries, timeouts and cancel."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import generate
from persona_tui.models import GenerationRequest, PersonaRecord
from persona_tui.storage import PersonaStore
from tests.helpers import ScriptedProvider, Step, ok_step, persona_json, tokens_of

pytestmark = pytest.mark.asyncio


def fast_settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {
        "data_dir": tmp_path,
        "heartbeat_seconds": 0.05,
        "slow_seconds": 0.15,
        "first_token_timeout": 5.0,
        "idle_timeout": 5.0,
        "total_timeout": 30.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
        "population_plan": False,  # scripted personas are fixed: test_plan_pipeline holds them to slots
        "regenerate_duplicates": False,  # and their stories alike: only the names differ
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


async def run(
    provider: ScriptedProvider,
    tmp_path: Path,
    *,
    count: int = 1,
    cancel: asyncio.Event | None = None,
    cancel_when: type | None = None,
    **settings: object,
) -> list[ev.Event]:
    request = GenerationRequest.create("field nurses in rural Kenya", count)
    store = PersonaStore(tmp_path / "personas")
    events: list[ev.Event] = []
    async for event in generate(
        request,
        provider=provider,
        store=store,
        settings=fast_settings(tmp_path, **settings),
        estimates=EstimateBook.load(tmp_path),
        cancel=cancel,
        rng=random.Random(1),
    ):
        events.append(event)
        if cancel is not None and cancel_when is not None and isinstance(event, cancel_when):
            cancel.set()
    return events


def kinds(events: list[ev.Event]) -> list[str]:
    """A compact trace: event class, with the stage for stage events; token-level events folded."""
    out: list[str] = []
    for e in events:
        if isinstance(e, ev.TokenDelta | ev.PartialPersona | ev.Progress | ev.Heartbeat):
            name = type(e).__name__
            if not out or out[-1] != name:
                out.append(name)
            continue
        if isinstance(e, ev.StageStarted | ev.StageFinished | ev.StageSkipped):
            out.append(f"{type(e).__name__}:{e.stage.value}")
        else:
            out.append(type(e).__name__)
    return out


def persona_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "personas"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_success_walks_every_stage_in_order(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step(delay=0.001)])
    events = await run(provider, tmp_path)
    trace = kinds(events)
    assert trace[:6] == [
        "StageStarted:preparing",
        "StageFinished:preparing",
        "StageSkipped:organization",
        "StageSkipped:enriching",
        "StageSkipped:planning",  # off in these tests: their scripted personas are fixed
        "Progress",
    ]
    expected_order = [
        "StageStarted:prompt",
        "StageFinished:prompt",
        "StageStarted:calling",
        "RequestSent",
        "FirstToken",
        "StageFinished:calling",
        "StageStarted:streaming",
        "TokenDelta",
        "StageFinished:streaming",
        "StageStarted:validating",
        "StageFinished:validating",
        "StageStarted:saving",
        "StageFinished:saving",
        "PersonaSaved",
        "Progress",
        "Finished",
    ]
    rest = iter(trace[5:])
    assert all(step in rest for step in expected_order), trace  # an ordered subsequence
    assert trace[-1] == "Finished"

    saved = [e for e in events if isinstance(e, ev.PersonaSaved)]
    assert len(saved) == 1
    assert saved[0].path.exists()
    on_disk = PersonaRecord.model_validate_json(saved[0].path.read_bytes())
    assert on_disk == saved[0].record
    assert on_disk.persona.name == "Amina Otieno"
    assert on_disk.provider == "scripted" and on_disk.model == "script-1"
    assert on_disk.request.description == "field nurses in rural Kenya"
    assert on_disk.tokens == len(tokens_of(persona_json()))
    summary = events[-1].summary  # type: ignore[union-attr]
    assert summary.ok and len(summary.saved) == 1 and summary.failed == 0
    assert provider.closed_streams == 1


async def test_token_deltas_rebuild_the_answer_and_partials_grow(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step(delay=0.004)])
    events = await run(provider, tmp_path)
    deltas = [e for e in events if isinstance(e, ev.TokenDelta)]
    assert "".join(d.text for d in deltas) == persona_json()
    assert [d.tokens for d in deltas] == list(range(1, len(deltas) + 1))
    partials = [e for e in events if isinstance(e, ev.PartialPersona)]
    assert len(partials) >= 3, "partial parses should arrive while the answer streams"
    sizes = [len(p.fields) for p in partials]
    assert sizes == sorted(sizes)
    assert partials[0].fields.get("name", "").startswith("Am")
    assert partials[-1].fields == json.loads(persona_json())


async def test_progress_never_goes_back_and_reaches_one_only_when_saved(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step(delay=0.002), ok_step("Bo Lindqvist", delay=0.002)])
    events = await run(provider, tmp_path, count=2)
    fractions: list[float] = []
    saved_seen = 0
    for e in events:
        if isinstance(e, ev.PersonaSaved):
            saved_seen += 1
        if isinstance(e, ev.Progress):
            fractions.append(e.fraction)
            if saved_seen < 2:
                assert e.fraction < 1.0
            assert e.eta is None or e.eta >= 0
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert 0.4 < max(f for f in fractions if f < 1.0) < 1.0


async def test_heartbeat_and_slow_warning_while_waiting(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step(first_delay=0.4)])
    events = await run(provider, tmp_path)
    beats = [e for e in events if isinstance(e, ev.Heartbeat)]
    slow = [e for e in events if isinstance(e, ev.SlowWarning)]
    assert len(beats) >= 4
    assert [b.idle for b in beats] == sorted(b.idle for b in beats)
    assert len(slow) == 1 and slow[0].threshold == 0.15 and slow[0].elapsed >= 0.15
    first = next(e for e in events if isinstance(e, ev.FirstToken))
    assert first.seconds >= 0.35
    # Heartbeats stop once tokens flow.
    first_at = events.index(first)
    assert not any(isinstance(e, ev.Heartbeat) for e in events[first_at:])


async def test_retry_then_success_reports_attempts(tmp_path: Path) -> None:
    limited = GenerationError("rate_limited", "Rate limited by script.local.", retryable=True, retry_after=0.02)
    provider = ScriptedProvider(
        [
            Step(error=limited),
            Step(pieces=[], error=GenerationError("server_error", "Boom.", retryable=True)),
            ok_step(),
        ]
    )
    events = await run(provider, tmp_path)
    retries = [e for e in events if isinstance(e, ev.Retrying)]
    assert [(r.attempt, r.max_attempts) for r in retries] == [(2, 4), (3, 4)]
    assert retries[0].delay == pytest.approx(0.02, abs=0.005)
    assert 0.005 <= retries[1].delay <= 0.02  # backoff with jitter: base 0.01 * 2, halved at most
    assert retries[0].reason == "Rate limited by script.local."
    sent = [e for e in events if isinstance(e, ev.RequestSent)]
    assert [s.attempt for s in sent] == [1, 2, 3]
    assert events[-1].summary.ok  # type: ignore[union-attr]
    assert len(persona_files(tmp_path)) == 1


async def test_not_retryable_failure_fails_at_once_and_saves_nothing(tmp_path: Path) -> None:
    denied = GenerationError("auth", "The API key was rejected.", "Set OPENAI_API_KEY.")
    provider = ScriptedProvider([Step(error=denied)])
    events = await run(provider, tmp_path, count=3, concurrency=1)
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert [(f.kind, f.message, f.hint) for f in failed] == [
        ("auth", "The API key was rejected.", "Set OPENAI_API_KEY.")
    ]
    assert len(provider.calls) == 1
    summary = events[-1].summary  # type: ignore[union-attr]
    assert summary.failed == 3 and not summary.saved and not summary.ok
    assert persona_files(tmp_path) == []


async def test_retries_exhausted_reports_last_error(tmp_path: Path) -> None:
    boom = GenerationError("server_error", "script.local had a server error (500).", "Try later.", retryable=True)
    provider = ScriptedProvider([Step(error=boom)])
    events = await run(provider, tmp_path, max_attempts=3)
    assert len(provider.calls) == 3
    assert [type(e).__name__ for e in events if isinstance(e, ev.Retrying | ev.Failed)] == [
        "Retrying",
        "Retrying",
        "Failed",
    ]


async def test_invalid_output_fails_that_persona_but_batch_goes_on(tmp_path: Path) -> None:
    broken = Step(pieces=tokens_of('{"name": "Half'))
    provider = ScriptedProvider([broken, broken, ok_step("Bo Lindqvist")])
    events = await run(provider, tmp_path, count=2, concurrency=1)
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and failed[0].kind == "invalid_output" and failed[0].index == 0
    saved = [e for e in events if isinstance(e, ev.PersonaSaved)]
    assert [s.index for s in saved] == [1]
    summary = events[-1].summary  # type: ignore[union-attr]
    assert summary.failed == 1 and len(summary.saved) == 1


async def test_wrong_shape_names_the_field(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json(age="forty")))])
    events = await run(provider, tmp_path)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "invalid_output" and "'age'" in failed.message


async def test_stall_before_first_token_times_out_and_retries(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(hang=True), ok_step()])
    events = await run(provider, tmp_path, first_token_timeout=0.2)
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert "first token" in retry.reason
    assert provider.closed_streams == 2
    assert events[-1].summary.ok  # type: ignore[union-attr]


async def test_stall_mid_stream_times_out(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(pieces=["{", '"na'], hang=True)])
    events = await run(provider, tmp_path, idle_timeout=0.2, max_attempts=1)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "stalled" and "next token" in failed.message
    assert provider.closed_streams == 1
    assert persona_files(tmp_path) == []


async def test_total_timeout_is_not_retried(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json()) * 50, delay=0.01)])
    events = await run(provider, tmp_path, total_timeout=0.3)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "timeout"
    assert len(provider.calls) == 1


@pytest.mark.parametrize("when", [ev.RequestSent, ev.FirstToken, ev.TokenDelta, ev.Heartbeat])
async def test_cancel_event_stops_cleanly_at_any_stage(tmp_path: Path, when: type) -> None:
    provider = ScriptedProvider([ok_step(first_delay=0.1, delay=0.01)])
    cancel = asyncio.Event()
    events = await run(provider, tmp_path, cancel=cancel, cancel_when=when)
    assert isinstance(events[-2], ev.Cancelled) and isinstance(events[-1], ev.Finished)
    assert events[-1].summary.cancelled and not events[-1].summary.saved
    assert provider.closed_streams == 1
    assert not any(isinstance(e, ev.PersonaSaved) for e in events)
    assert persona_files(tmp_path) == []


async def test_cancel_keeps_personas_already_saved(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step("Bo Lindqvist"), ok_step(first_delay=5)])
    cancel = asyncio.Event()
    events = await run(provider, tmp_path, count=2, cancel=cancel, cancel_when=ev.PersonaSaved)
    cancelled = next(e for e in events if isinstance(e, ev.Cancelled))
    assert [r.persona.name for r in cancelled.saved] == ["Bo Lindqvist"]
    assert len(persona_files(tmp_path)) == 1


async def test_cancel_during_retry_pause(tmp_path: Path) -> None:
    limited = GenerationError("rate_limited", "Rate limited.", retryable=True, retry_after=10)
    provider = ScriptedProvider([Step(error=limited)])
    cancel = asyncio.Event()
    started = asyncio.get_running_loop().time()
    events = await run(provider, tmp_path, cancel=cancel, cancel_when=ev.Retrying)
    assert asyncio.get_running_loop().time() - started < 2
    assert isinstance(events[-2], ev.Cancelled)


async def test_task_cancellation_closes_stream_and_leaves_no_file(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step(delay=0.01)])
    seen: list[ev.Event] = []

    async def consume() -> None:
        request = GenerationRequest.create("nurses")
        async for event in generate(
            request, provider=provider, store=PersonaStore(tmp_path / "personas"), settings=fast_settings(tmp_path)
        ):
            seen.append(event)

    task = asyncio.create_task(consume())
    while not any(isinstance(e, ev.TokenDelta) for e in seen):
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.closed_streams == 1
    assert persona_files(tmp_path) == []


async def test_second_persona_is_told_the_names_already_made(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step("Bo Lindqvist"), ok_step("Chen Wei")])
    await run(provider, tmp_path, count=2, concurrency=1)
    assert provider.calls[0].avoid_names == ()
    assert provider.calls[1].avoid_names == ("bo lindqvist",)
    assert "Bo Lindqvist" in provider.calls[1].messages[-1]["content"]
    assert "persona 2 of 2" in provider.calls[1].messages[-1]["content"]


async def test_estimates_are_learned_and_used_next_time(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step(first_delay=0.05, delay=0.002)])
    await run(provider, tmp_path)
    book = EstimateBook.load(tmp_path)
    learned = book.get("scripted", "script-1")
    assert learned.runs == 1
    assert learned.tokens == len(tokens_of(persona_json()))
    assert 0.04 <= learned.first_token < 1.0
    events = await run(provider, tmp_path)
    sent = next(e for e in events if isinstance(e, ev.RequestSent))
    assert sent.expected_first_token == pytest.approx(learned.first_token)


# ----- batches: parallel streams, diversity, faults, rate limits -----


async def test_a_batch_runs_k_streams_at_once(tmp_path: Path) -> None:
    names = ["Ana Souza", "Bo Lindqvist", "Chen Wei", "Dana Kowalski", "Emeka Obi", "Farah Haddad"]
    provider = ScriptedProvider([ok_step(n, first_delay=0.05, delay=0.001) for n in names])
    events = await run(provider, tmp_path, count=6, concurrency=3)
    assert provider.max_active == 3
    saved = [e for e in events if isinstance(e, ev.PersonaSaved)]
    assert sorted(s.record.persona.name for s in saved) == names
    assert {s.index for s in saved} == set(range(6))
    fractions = [e.fraction for e in events if isinstance(e, ev.Progress)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(persona_files(tmp_path)) == 6
    # Each persona's own progress arrives with its index, for per-persona bars.
    per_persona = {e.index for e in events if isinstance(e, ev.Progress) and 0 < e.persona_fraction < 1}
    assert len(per_persona) >= 3


async def test_a_taken_name_is_regenerated_not_saved(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step("Chen Wei"), ok_step("Chen Wei"), ok_step("Ana Souza")])
    events = await run(provider, tmp_path, count=2, concurrency=1)
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert "Chen Wei is already taken" in retry.reason
    names = sorted(e.record.persona.name for e in events if isinstance(e, ev.PersonaSaved))
    assert names == ["Ana Souza", "Chen Wei"]
    assert len(persona_files(tmp_path)) == 2
    assert "chen wei" in provider.calls[2].avoid_names


async def test_parallel_streams_with_the_same_name_save_it_once(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step("Chen Wei"), ok_step("Chen Wei"), ok_step("Ana Souza")])
    events = await run(provider, tmp_path, count=2, concurrency=2)
    names = sorted(e.record.persona.name for e in events if isinstance(e, ev.PersonaSaved))
    assert names == ["Ana Souza", "Chen Wei"]


async def test_names_in_the_store_for_the_same_request_are_avoided(tmp_path: Path) -> None:
    first = ScriptedProvider([ok_step("Chen Wei")])
    await run(first, tmp_path)
    second = ScriptedProvider([ok_step("Chen Wei"), ok_step("Ana Souza")])
    events = await run(second, tmp_path)
    assert [e.record.persona.name for e in events if isinstance(e, ev.PersonaSaved)] == ["Ana Souza"]
    prompt = second.calls[0].messages[-1]["content"]
    assert "Chen Wei (47, Field nurse, Kisumu, Kenya)" in prompt


async def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    provider = ScriptedProvider(
        [ok_step("Ana Souza"), Step(pieces=tokens_of('{"oops')), ok_step("Bo Lindqvist"), ok_step("Chen Wei")]
    )
    events = await run(provider, tmp_path, count=4, concurrency=2)
    summary = events[-1].summary  # type: ignore[union-attr]
    assert summary.failed == 1 and len(summary.saved) == 3 and not summary.ok
    assert len(persona_files(tmp_path)) == 3


async def test_a_rejected_key_is_reported_once_and_stops_the_batch(tmp_path: Path) -> None:
    denied = GenerationError("auth", "The API key was rejected.", "Set OPENAI_API_KEY.")
    provider = ScriptedProvider([Step(error=denied)])
    events = await run(provider, tmp_path, count=8, concurrency=4)
    assert len([e for e in events if isinstance(e, ev.Failed)]) == 1
    assert len(provider.calls) == 4, "the streams in flight fail; no new ones start"
    assert events[-1].summary.failed == 8  # type: ignore[union-attr]
    assert events[-1].summary.not_started == 4, "the summary says what became of the others"  # type: ignore[union-attr]


async def test_cancel_stops_every_stream_and_keeps_what_was_saved(tmp_path: Path) -> None:
    provider = ScriptedProvider([ok_step("Ana Souza")] + [ok_step(f"P{i}", delay=0.05) for i in range(5)])
    cancel = asyncio.Event()
    events = await run(provider, tmp_path, count=6, concurrency=3, cancel=cancel, cancel_when=ev.PersonaSaved)
    cancelled = next(e for e in events if isinstance(e, ev.Cancelled))
    assert [r.persona.name for r in cancelled.saved] == ["Ana Souza"]
    assert provider.active == 0 and provider.closed_streams == len(provider.calls)
    assert len(provider.calls) <= 4
    assert len(persona_files(tmp_path)) == 1
    assert events[-1].summary.cancelled  # type: ignore[union-attr]


async def test_a_rate_limit_slows_the_whole_batch_without_a_stampede(tmp_path: Path) -> None:
    limited = GenerationError("rate_limited", "Rate limited by script.local.", retryable=True, retry_after=0.3)
    provider = ScriptedProvider(
        [Step(error=limited)] * 3 + [ok_step(n) for n in ("Ana Souza", "Bo Lindqvist", "Chen Wei")]
    )
    events = await run(provider, tmp_path, count=3, concurrency=3, retry_max_delay=5)
    assert len([e for e in events if isinstance(e, ev.PersonaSaved)]) == 3
    first_wave, retries = provider.started_at[:3], sorted(provider.started_at[3:])
    assert min(retries) - max(first_wave) >= 0.29, "nobody retries before Retry-After"
    gaps = [b - a for a, b in itertools.pairwise(retries)]
    assert all(gap >= 0.2 for gap in gaps), f"retries leave one by one, not all at once: {gaps}"
    delays = sorted(e.delay for e in events if isinstance(e, ev.Retrying))
    assert delays[0] == pytest.approx(0.3, abs=0.05) and delays[-1] >= 0.75


async def test_a_wrong_shape_is_sent_back_once_for_correction(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(pieces=tokens_of(persona_json(age="forty"))), ok_step()])
    events = await run(provider, tmp_path)
    retry = next(e for e in events if isinstance(e, ev.Retrying))
    assert "'age'" in retry.reason and "correct" in retry.reason
    assert any(isinstance(e, ev.PersonaSaved) for e in events)
    second = provider.calls[1].messages
    assert second[-2] == {"role": "assistant", "content": persona_json(age="forty")}
    assert "'age'" in second[-1]["content"] and second[-1]["role"] == "user"


async def test_a_runaway_answer_is_stopped(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(pieces=['{"name": "', *(["blah " * 20] * 1000)])])
    events = await run(provider, tmp_path)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "too_large" and "40,000 characters" in failed.message
    assert provider.closed_streams == 1 and sum(isinstance(e, ev.TokenDelta) for e in events) < 500
    assert len(provider.calls) == 1


async def test_a_silent_server_is_tried_twice_not_max_attempts(tmp_path: Path) -> None:
    provider = ScriptedProvider([Step(hang=True)])
    events = await run(provider, tmp_path, first_token_timeout=0.15, max_attempts=4)
    assert len(provider.calls) == 2
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "stalled" and "first token" in failed.message


async def test_an_unexpected_error_in_one_persona_is_reported_and_the_rest_go_on(tmp_path: Path) -> None:
    class Broken(ScriptedProvider):
        async def stream(self, spec):  # type: ignore[no-untyped-def, override]
            if spec.index == 0:
                raise RuntimeError("boom")
                yield ""  # pragma: no cover - makes this an async generator
            async for piece in super().stream(spec):
                yield piece

    provider = Broken([ok_step("Ana Souza"), ok_step("Bo Lindqvist")])
    events = await run(provider, tmp_path, count=2, concurrency=1)
    failed = next(e for e in events if isinstance(e, ev.Failed))
    assert failed.kind == "internal" and failed.index == 0 and "RuntimeError" in failed.message
    summary = events[-1].summary  # type: ignore[union-attr]
    assert len(summary.saved) == 1 and summary.failed == 1


@pytest.mark.parametrize(("read_slice", "steps_aside"), [(0.0, True), (float("inf"), False)])
async def test_a_burst_that_never_waits_still_lets_the_screen_run(
    monkeypatch: pytest.MonkeyPatch, read_slice: float, steps_aside: bool
) -> None:
    """A client parsing a buffered burst never suspends; the reader steps aside once its slice is used.

    With a slice of 0 it steps aside after every piece; with an endless slice (the old behaviour)
    nothing else would run until the burst ends, which is what the second case shows.
    """
    from persona_tui.engine.pipeline import watch
    from persona_tui.engine.providers.parts import AnswerPart, StreamPart

    monkeypatch.setattr(watch, "READ_SLICE", read_slice)
    pieces = 200
    turns_seen: list[int] = []
    turns = 0

    async def burst() -> AsyncGenerator[StreamPart, None]:
        for _ in range(pieces):  # no await in between, like a parser working through a buffer
            turns_seen.append(turns)
            yield AnswerPart("x")

    async def screen() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    inbox: asyncio.Queue[watch.Item] = asyncio.Queue()
    ticker = asyncio.create_task(screen())
    await asyncio.sleep(0)
    before = turns
    await watch.read_into(burst(), inbox)
    ticker.cancel()
    ran_during_burst = turns_seen[-1] - before
    if steps_aside:
        assert ran_during_burst >= pieces - 1
    else:
        assert ran_during_burst == 0
    items = []
    while not inbox.empty():
        items.append(inbox.get_nowait())
    assert items[-1] is watch.END and items[:-1] == [AnswerPart("x")] * pieces


async def test_text_that_arrived_just_before_an_error_is_still_shown(tmp_path: Path) -> None:
    broken = GenerationError("incomplete", "The stream ended early.", "Try again.")
    pieces = ["{", '"name": ', '"Ana', ' Souza"']
    provider = ScriptedProvider([Step(pieces=pieces, error=broken)])  # no delays: text and error in one batch
    events = await run(provider, tmp_path, max_attempts=1)
    shown = "".join(e.text for e in events if isinstance(e, ev.TokenDelta))
    assert shown == "".join(pieces)
    failed = [i for i, e in enumerate(events) if isinstance(e, ev.Failed)]
    deltas = [i for i, e in enumerate(events) if isinstance(e, ev.TokenDelta)]
    assert failed and deltas and max(deltas) < failed[0]


# ----- issue 14: found before anything is paid for; progress per persona; slow means slower than usual -----


@pytest.mark.parametrize("blocked", ["data_dir", "personas"])
async def test_an_unusable_data_folder_is_found_before_any_request(tmp_path: Path, blocked: str) -> None:
    data = tmp_path / "data"
    if blocked == "data_dir":
        data.write_text("not a folder")
    else:
        data.mkdir()
        (data / "personas").write_text("not a folder")
    provider = ScriptedProvider([ok_step()])
    request = GenerationRequest.create("field nurses in rural Kenya")
    events = [
        e
        async for e in generate(
            request, provider=provider, store=PersonaStore(data / "personas"), settings=fast_settings(tmp_path)
        )
    ]
    assert provider.calls == [], "no request may be sent when its answer could not be saved"
    failed = [e for e in events if isinstance(e, ev.Failed)]
    assert len(failed) == 1 and failed[0].kind is FailureKind.SAVE
    assert "is a file, not a folder" in failed[0].message and "--data-dir" in failed[0].hint
    assert isinstance(events[-1], ev.Finished) and events[-1].summary.failed == 1


async def test_a_persona_not_started_has_no_progress_of_its_own(tmp_path: Path) -> None:
    events = await run(ScriptedProvider([ok_step(delay=0.001)]), tmp_path, count=3, concurrency=1)
    started: set[int] = set()
    for e in events:
        if isinstance(e, ev.StageStarted) and e.stage is ev.Stage.PROMPT:
            started.add(e.index)
        if isinstance(e, ev.Progress) and e.index not in started:
            assert e.persona_fraction == 0.0, e
    first = next(e for e in events if isinstance(e, ev.Progress))
    assert first.persona_fraction == 0.0


@pytest.mark.parametrize("history", [False, True])
async def test_slow_means_slower_than_this_model_usually_is(tmp_path: Path, history: bool) -> None:
    """0.4 s for a persona with slow_seconds 0.15: slow without history; not slow for a model that takes ~2 s."""
    book = EstimateBook(None)
    if history:
        book.learn("scripted", "script-1", tokens=100, first_token=1.0, tokens_per_second=100.0)
    provider = ScriptedProvider([ok_step(first_delay=0.4)])
    events = [
        e
        async for e in generate(
            GenerationRequest.create("field nurses in rural Kenya"),
            provider=provider,
            store=PersonaStore(tmp_path / "personas"),
            settings=fast_settings(tmp_path),
            estimates=book,
        )
    ]
    warnings = [e for e in events if isinstance(e, ev.SlowWarning)]
    if history:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].threshold == 0.15


async def test_the_token_count_is_the_same_on_the_record_and_in_the_summary(tmp_path: Path) -> None:
    from persona_tui.engine.providers.parts import UsagePart
    from persona_tui.models import Usage

    dropped = GenerationError("incomplete", "The stream ended early.", "Try again.", retryable=True)
    provider = ScriptedProvider(
        [
            Step(pieces=tokens_of(persona_json())[:50], error=dropped),  # cut before its usage arrived
            Step(pieces=[*tokens_of(persona_json()), UsagePart(Usage(prompt_tokens=9, completion_tokens=143))]),
        ]
    )
    events = await run(provider, tmp_path)
    saved = next(e for e in events if isinstance(e, ev.PersonaSaved))
    summary = events[-1].summary  # type: ignore[union-attr]
    assert saved.record.tokens == summary.tokens == 50 + 143


async def test_an_attempt_count_never_passes_its_total(tmp_path: Path) -> None:
    stall = GenerationError("stalled", "It went quiet.", "", retryable=True)
    broken = GenerationError("server_error", "It broke.", "", retryable=True)
    provider = ScriptedProvider([Step(error=stall), Step(error=broken), ok_step()])
    events = await run(provider, tmp_path, max_attempts=4)
    retries = [(e.attempt, e.max_attempts) for e in events if isinstance(e, ev.Retrying)]
    assert retries == [(2, 2), (3, 3)]
