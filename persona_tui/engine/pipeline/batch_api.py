"""A generation through a Batch API (OpenAI's, or any server that speaks it): every request sent at once.

Every persona's request (its prompt with its slot, strict ``json_schema``, the model, the temperature) goes
into one JSONL file, uploaded with ``purpose="batch"``; a batch is created from it and its id is kept in the
run's manifest at once, so ``resume`` can pick it up in another process. The batch is polled every
``batch_poll_seconds``; its request counts are the progress. Once it ends, its output (and error) file is read
and each answer validated as a streamed one is (no correction round: a broken slot is kept, and said) and saved.

The cancel event cancels the batch on the server. Cancelling the task iterating it does not: the batch goes on,
and ``resume`` collects it.

``answers_from`` reads an output file made elsewhere (``vllm run-batch``, a download): ``batch import``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.events import (
    Event,
    Failed,
    PersonaSaved,
    Progress,
    ServerNotice,
    SlotBroken,
    Stage,
    StageFinished,
    StageStarted,
)
from persona_tui.engine.parsing import parse_persona
from persona_tui.engine.pipeline.job import SCHEMA, JobOutcome
from persona_tui.engine.pipeline.retry import pause
from persona_tui.engine.pipeline.run import Run
from persona_tui.engine.plan import slot_breaks
from persona_tui.engine.prompt import build_messages
from persona_tui.engine.providers.adapt import takes_only_default_temperature
from persona_tui.engine.providers.base import PromptSpec
from persona_tui.engine.providers.parts import StreamPart
from persona_tui.models import (
    BatchInfo,
    GenerationRequest,
    Organization,
    Persona,
    PersonaRecord,
    Plan,
    RequestInfo,
    Source,
    Usage,
)
from persona_tui.storage import StoreError

ENDPOINT = "/v1/chat/completions"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
RUN_WIDE = -1
"""The index of a notice about the whole batch, not one persona (no ``[i/n]`` before it)."""
POLL_FAILURES = 5
"""Polls in a row that may fail (a lost connection) before the run stops; the batch goes on and resume finds it."""


class BatchProvider(Protocol):
    """A provider whose server has a Batch API: its client, and how to quote the server without the key."""

    def batch_client(self) -> Any: ...

    def scrub(self, text: str) -> str: ...


class AnsweredElsewhere:
    """The provider of ``batch import``: the run's provider and model, named in the records; it asks nothing."""

    is_ai = True

    def __init__(self, name: str, model: str) -> None:
        self.name, self.model = name, model

    @property
    def endpoint(self) -> str:
        return "a Batch API output file"

    @property
    def label(self) -> str:
        return f"{self.model} (answers from a Batch API output file)"

    async def stream(self, spec: PromptSpec) -> AsyncGenerator[StreamPart, None]:
        raise GenerationError(FailureKind.INTERNAL, "A Batch API output file cannot be asked anything.", "")
        yield  # pragma: no cover

    def prepare(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Answered:
    """One persona of the batch is done (saved, failed, or cancelled)."""

    index: int
    outcome: JobOutcome


@dataclass(frozen=True, slots=True)
class Answer:
    """One line of an output (or error) file: the answer's text, or why there is none."""

    index: int
    text: str = ""
    usage: Usage | None = None
    error: str | None = None
    status: int = 200


def custom_id(run_id: str, index: int) -> str:
    return f"{run_id}-{index}"


def request_body(model: str, messages: list[dict[str, str]], temperature: float | None) -> dict[str, Any]:
    """The chat-completions body of one request: the strongest form a server is asked for first."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "persona", "strict": True, "schema": SCHEMA},
        },
    }
    if temperature is not None and not takes_only_default_temperature(model):
        body["temperature"] = temperature
    return body


def request_lines(
    request: GenerationRequest,
    run_id: str,
    indexes: Iterable[int],
    *,
    model: str,
    temperature: float | None,
    plan: Plan | None = None,
    people: Sequence[str] = (),
    org: Organization | None = None,
    sources: Sequence[Source] = (),
) -> list[str]:
    """The JSONL lines of a batch: one request per persona index."""
    lines = []
    for index in indexes:
        slot = plan.slots[index] if plan is not None else None
        messages = build_messages(request, index, people, org, sources, slot=slot)
        line = {
            "custom_id": custom_id(run_id, index),
            "method": "POST",
            "url": ENDPOINT,
            "body": request_body(model, messages, temperature),
        }
        lines.append(json.dumps(line, ensure_ascii=False))
    return lines


def answers_from(text: str, run_id: str) -> list[Answer]:
    """The answers of an output or error JSONL file that belong to this run (other lines are skipped)."""
    answers = []
    prefix = f"{run_id}-"
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(cid, str) or not cid.startswith(prefix) or not cid[len(prefix) :].isdigit():
            continue
        answers.append(_answer(int(cid[len(prefix) :]), line))
    return answers


def _answer(index: int, line: dict[str, Any]) -> Answer:
    error = line.get("error")
    if isinstance(error, dict) and error:
        return Answer(index, error=str(error.get("message") or error.get("code") or "no reason given"), status=0)
    response = _mapping(line.get("response"))
    status = response.get("status_code", 200)
    body = _mapping(response.get("body"))
    if status != 200 or "error" in body:
        said = body.get("error")
        message = said.get("message") if isinstance(said, dict) else said
        return Answer(index, error=str(message or f"HTTP {status}"), status=int(status or 0))
    try:
        text = body["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return Answer(index, error="The answer held no message.", status=int(status))
    raw_usage = body.get("usage")
    usage = None
    if isinstance(raw_usage, dict):
        details = raw_usage.get("completion_tokens_details") or {}
        usage = Usage(
            prompt_tokens=raw_usage.get("prompt_tokens") or 0,
            completion_tokens=raw_usage.get("completion_tokens") or 0,
            reasoning_tokens=details.get("reasoning_tokens") or 0 if isinstance(details, dict) else 0,
        )
    return Answer(index, text=str(text), usage=usage)


def _mapping(value: object) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


# ----- the run -----


async def run_batch_api(run: Run) -> AsyncIterator[Event | Answered]:
    """Submit the run's personas as one batch (or pick up the one its manifest names), wait, save the answers."""
    if run.batch_output is not None:
        async for item in save_answers(run, answers_from(run.batch_output, run.run_id)):
            yield item
        return
    provider = cast(BatchProvider, run.provider)
    if not hasattr(provider, "batch_client") or run.record is None:
        yield Failed(
            FailureKind.BAD_REQUEST,
            f"{run.provider.label} has no Batch API.",
            "Use the openai provider (OPENAI_API_KEY, or OPENAI_BASE_URL for a server with a Batch API).",
        )
        for index in run.todo:
            yield Answered(index, JobOutcome(started=False))
        return
    client = provider.batch_client()
    answered: set[int] = set()
    try:
        if run.record.batch is None or not run.record.batch.pending:
            async for event in _submit(run, client):
                yield event
        async for item in _wait(run, client):
            if isinstance(item, Answered):
                answered.add(item.index)
            yield item
    except Exception as exc:  # the openai client's errors (a refused key, a lost server): one sentence
        yield _api_failed(run, provider, exc)
        for index in run.todo:
            if index not in answered:
                yield Answered(index, JobOutcome(started=run.record.batch is not None))


def _api_failed(run: Run, provider: BatchProvider, exc: Exception) -> Failed:
    said = provider.scrub(str(getattr(exc, "message", "") or exc))
    status = getattr(exc, "status_code", None)
    kind = FailureKind.AUTH if status == 401 else FailureKind.CONNECTION if status is None else FailureKind.BAD_REQUEST
    batch = run.record.batch if run.record is not None else None
    hint = (
        f"The batch {batch.id} goes on on the server: `persona-tui resume {run.run_id[:8]}` collects it."
        if batch is not None
        else "Check the key and the server address; nothing was sent for these personas."
    )
    return Failed(kind, f"The Batch API call failed: {said}", hint)


async def _submit(run: Run, client: Any) -> AsyncIterator[Event]:
    assert run.record is not None
    started = run.clock()
    yield StageStarted(Stage.CALLING, f"uploading {len(run.todo):,} request(s) for the Batch API", RUN_WIDE)
    lines = request_lines(
        run.request,
        run.run_id,
        run.todo,
        model=run.provider.model,
        temperature=run.settings.temperature,
        plan=run.plan,
        people=run.names.people,
        org=run.org,
        sources=run.sources,
    )
    data = ("\n".join(lines) + "\n").encode()
    uploaded = await client.files.create(file=(f"persona-tui-{run.run_id}.jsonl", data), purpose="batch")
    batch = await client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h")
    run.record.batch = BatchInfo(id=batch.id, input_file_id=uploaded.id, status=batch.status)
    await _write(run)
    yield StageFinished(Stage.CALLING, run.clock() - started, RUN_WIDE, note=f"batch {batch.id} created")
    yield ServerNotice(f"Batch {batch.id} created with {len(lines):,} request(s).", RUN_WIDE, from_server=False)


async def _write(run: Run) -> None:
    if run.runs is not None and run.record is not None:
        # The batch goes on if this fails; only a resume in another process needs the manifest.
        with contextlib.suppress(StoreError):
            await run.runs.save(run.record)


@dataclass(slots=True)
class _Pace:
    """The batch's request counts over time: its progress and an ETA from their rate."""

    first_at: float | None = None
    first_done: int = 0
    said: str = ""

    def eta(self, now: float, done: int, total: int) -> float | None:
        if self.first_at is None:
            self.first_at, self.first_done = now, done
            return None
        gained, spent = done - self.first_done, now - self.first_at
        if gained <= 0 or spent <= 0:
            return None
        return (total - done) * spent / gained


async def _wait(run: Run, client: Any) -> AsyncIterator[Event | Answered]:
    """Poll the batch until it ends (or the user cancels), then collect its answers."""
    assert run.record is not None and run.record.batch is not None
    info = run.record.batch
    pace, failures = _Pace(), 0
    while True:
        try:
            batch = await client.batches.retrieve(info.id)
            failures = 0
        except Exception:
            failures += 1
            if failures >= POLL_FAILURES:
                raise
            batch = None
        if batch is not None:
            info.status = batch.status
            for event in _poll_events(run, batch, pace):
                yield event
            if batch.status in ENDED:
                info.output_file_id, info.error_file_id = batch.output_file_id, batch.error_file_id
                await _write(run)
                break
        if await pause(run.settings.batch_poll_seconds, run.cancel):
            async for item in _cancel(run, client, info):
                yield item
            return
    async for item in _collect(run, client, info):
        yield item


def _poll_events(run: Run, batch: Any, pace: _Pace) -> list[Event]:
    counts = batch.request_counts
    total = (counts.total if counts is not None else 0) or len(run.todo)
    done = (counts.completed + counts.failed) if counts is not None else 0
    now = run.clock()
    eta = pace.eta(now, done, total) if batch.status == "in_progress" else None
    words = batch.status.replace("_", " ")
    failed = counts.failed if counts is not None else 0
    detail = f"batch {words} {done:,}/{total:,}" + (f", {failed:,} failed" if failed else "")
    events: list[Event] = []
    if detail != pace.said:
        pace.said = detail
        events.append(StageStarted(Stage.CALLING, detail, RUN_WIDE))
    events.append(Progress(min(done / total, 0.99), now - run.start, eta, index=RUN_WIDE))
    return events


async def _cancel(run: Run, client: Any, info: BatchInfo) -> AsyncIterator[Event | Answered]:
    try:
        batch = await client.batches.cancel(info.id)
        info.status = batch.status
        said = f"Cancelled batch {info.id} on the server."
    except Exception as exc:
        said = f"Batch {info.id} could not be cancelled on the server ({type(exc).__name__}); it may still run."
    await _write(run)
    yield ServerNotice(said, RUN_WIDE, from_server=False)
    for index in run.todo:
        yield Answered(index, JobOutcome(cancelled=True))


async def _collect(run: Run, client: Any, info: BatchInfo) -> AsyncIterator[Event | Answered]:
    started = run.clock()
    yield StageStarted(Stage.STREAMING, f"downloading the answers of batch {info.id}", RUN_WIDE)
    answers: list[Answer] = []
    for file_id in (info.output_file_id, info.error_file_id):
        if file_id:
            content = await client.files.content(file_id)
            answers.extend(answers_from(content.text, run.run_id))
    yield StageFinished(Stage.STREAMING, run.clock() - started, RUN_WIDE, note=f"{len(answers):,} answer(s)")
    async for item in save_answers(run, answers):
        yield item
    heard = {answer.index for answer in answers}
    missing = [index for index in run.todo if index not in heard and index not in run.done]
    if missing:
        yield Failed(
            FailureKind.INCOMPLETE,
            f"The batch ended ({info.status}) without an answer for {len(missing):,} persona(s).",
            f"`persona-tui resume {run.run_id[:8]}` makes them.",
            missing[0],
        )
        for index in missing:
            yield Answered(index, JobOutcome())
    info.collected = True  # a resume makes what is left anew


async def save_answers(run: Run, answers: list[Answer]) -> AsyncIterator[Event | Answered]:
    """Validate and save each answer for a persona of the run not saved yet."""
    wanted = set(run.todo)
    for answer in answers:
        if answer.index not in wanted or answer.index in run.done:
            continue
        wanted.discard(answer.index)
        if answer.error is not None:
            kind = FailureKind.BAD_REQUEST if 400 <= answer.status < 500 else FailureKind.SERVER_ERROR
            yield Failed(kind, f"The server failed this request: {answer.error}", "", answer.index)
            yield Answered(answer.index, JobOutcome())
            continue
        async for item in _save(run, answer):
            yield item


async def _save(run: Run, answer: Answer) -> AsyncIterator[Event | Answered]:
    index = answer.index
    slot = run.plan.slots[index] if run.plan is not None and index < len(run.plan.slots) else None
    tokens = answer.usage.completion_tokens if answer.usage is not None else 0
    yield StageStarted(Stage.VALIDATING, index=index)
    try:
        persona = parse_persona(answer.text)
    except GenerationError as err:
        yield Failed(err.kind, err.message, err.hint, index)
        yield Answered(index, JobOutcome(tokens=tokens))
        return
    breaks = slot_breaks(slot, persona) if slot is not None else []
    yield StageFinished(Stage.VALIDATING, 0.0, index)
    if breaks:
        yield SlotBroken(tuple(breaks), index)
    if persona.name in run.names:
        yield ServerNotice(f"{persona.name} is a name already used; kept, as the batch is paid for.", index, False)
    run.names.take(persona)
    record = _record(run, persona, answer, slot)
    yield StageStarted(Stage.SAVING, str(run.store.root), index)
    try:
        path = await run.store.save(record)
    except StoreError as err:
        yield Failed(FailureKind.SAVE, err.message, err.hint, index)
        yield Answered(index, JobOutcome(tokens=tokens))
        return
    yield StageFinished(Stage.SAVING, 0.0, index)
    yield PersonaSaved(record, path, record.generation_seconds, tokens, 0.0, index, usage=answer.usage)
    yield Answered(index, JobOutcome(record, tokens=tokens))


def _record(run: Run, persona: Persona, answer: Answer, slot: Any) -> PersonaRecord:
    return PersonaRecord(
        provider=run.provider.name,
        model=run.provider.model,
        request=RequestInfo(
            description=run.request.description,
            organization=run.org.name if run.org else None,
            organization_id=run.org.id if run.org else None,
            enrich=run.request.enrich,
            mix=None if run.request.mix.is_empty() else run.request.mix,
        ),
        generation_seconds=round(run.elapsed(), 3),  # the batch's time: its requests are not timed one by one
        tokens=answer.usage.completion_tokens if answer.usage is not None else 0,
        persona=persona,
        sources=list(run.sources),
        usage=answer.usage,
        slot=slot,
        run_id=run.run_id or None,
    )
