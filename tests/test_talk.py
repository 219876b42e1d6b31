"""Interviews and focus groups through the engine: the real openai client against the loopback server,
the offline answers, the rule pass, and transcripts that survive a kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.character import check_answer, persona_system_prompt
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline.talk import answer_key, group_question, interview_turn, new_group
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.engine.providers.offline.answer import offline_answer
from persona_tui.export import group_markdown, transcript_markdown
from persona_tui.models import Persona, PersonaRecord, Source, Turn
from persona_tui.storage import GroupStore, TranscriptStore
from tests.conftest import make_record
from tests.fake_openai import FakeOpenAIServer, Scenario
from tests.test_dialects import provider_for

AMINA = make_record("Amina Otieno", 0)
LONG = "I drive between villages twice a week, rain or not, and the road floods every April; " * 2
"""Longer than the think splitter's 80 characters of doubt: prose is the answer, never taken for reasoning."""


def fast(tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "heartbeat_seconds": 0.05,
        "first_token_timeout": 5.0,
        "idle_timeout": 5.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.02,
        "offline_tokens_per_second": 0,
    }
    values.update(kw)
    return Settings(**values)


async def turn(
    record: PersonaRecord, question: str, tmp_path: Path, provider: Any, **kw: Any
) -> tuple[list[ev.Event], Turn | None]:
    transcripts = TranscriptStore(tmp_path / "transcripts")
    history = await transcripts.read(record.id)
    events: list[ev.Event] = []
    kept: Turn | None = None
    async for item in interview_turn(
        record, history, question, provider=provider, settings=fast(tmp_path), transcripts=transcripts, **kw
    ):
        if isinstance(item, Turn):
            kept = item
        else:
            events.append(item)
    return events, kept


def chat_posts(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    return [r["body"] for r in server.requests if r["method"] == "POST"]


@pytest.mark.asyncio
async def test_an_interview_sends_the_persona_and_the_history_each_turn(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.script(
        Scenario(content="Wet paper forms, mostly."),
        Scenario(content="Train two new nurses this year."),
        Scenario(content="Patience. And a good raincoat.", usage=True),
    )
    provider = provider_for(server, tmp_path, model="llama3.2")
    questions = ["What frustrates you?", "What are your goals?", "What keeps you going?"]
    for question in questions:
        events, kept = await turn(AMINA, question, tmp_path, provider)
        assert kept is not None and not kept.stopped, [e for e in events if isinstance(e, ev.Failed)]
        assert any(isinstance(e, ev.AnswerDone) for e in events)
        assert isinstance(events[-1], ev.TalkFinished) and events[-1].ok
    await provider.aclose()
    posts = chat_posts(server)
    assert len(posts) == 3
    for post in posts:
        assert "response_format" not in post  # plain text back, not a persona's JSON
        system = post["messages"][0]
        assert system["role"] == "system" and "You are Amina Otieno" in system["content"]
        assert "Kisumu, Kenya" in system["content"] and "If it works in the rain" in system["content"]
    last = posts[2]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == questions[0] and last[2]["content"] == "Wet paper forms, mostly."
    assert last[4]["content"] == "Train two new nurses this year." and last[5]["content"] == questions[2]
    saved = await TranscriptStore(tmp_path / "transcripts").read(AMINA.id)
    assert [t.question for t in saved] == questions
    assert saved[2].answer == "Patience. And a good raincoat." and saved[2].model == "llama3.2"
    assert saved[2].usage is not None


@pytest.mark.asyncio
async def test_an_answer_streams_with_the_generation_feedback_and_learns_its_pace(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.script(Scenario(content=LONG, first_token_delay=0.15, token_delay=0.005))
    provider = provider_for(server, tmp_path, model="llama3.2")
    estimates = EstimateBook.load(tmp_path)
    events, kept = await turn(AMINA, "Tell me about your week.", tmp_path, provider, estimates=estimates)
    await provider.aclose()
    stages = [(type(e).__name__, e.stage.value) for e in events if isinstance(e, ev.StageStarted | ev.StageFinished)]
    assert ("StageStarted", "calling") in stages and ("StageStarted", "streaming") in stages
    assert any(isinstance(e, ev.RequestSent) for e in events)
    assert any(isinstance(e, ev.Heartbeat) for e in events)  # 150 ms of silence at a 50 ms beat
    assert any(isinstance(e, ev.Progress) and e.eta is not None for e in events)
    text = "".join(e.text for e in events if isinstance(e, ev.TokenDelta))
    assert text == LONG
    assert kept is not None and kept.answer == text.strip()
    learned = EstimateBook.load(tmp_path).get("openai", answer_key("llama3.2"))
    assert learned.runs == 1  # answers have their own estimate, apart from the model's personas
    assert EstimateBook.load(tmp_path).get("openai", "llama3.2").runs == 0


@pytest.mark.asyncio
async def test_a_focus_group_of_8_at_4_at_once_with_one_failing_lane(server: FakeOpenAIServer, tmp_path: Path) -> None:
    records = [make_record(f"Person {i}", i, age=30 + i) for i in range(8)]

    def route(body: dict[str, Any]) -> Scenario:
        system = body["messages"][0]["content"]
        if "You are Person 5." in system:
            return Scenario(content="I would rather", finish_reason="content_filter")  # this lane's own failure
        name = system.split(".", 1)[0].removeprefix("You are ")
        return Scenario(content=f"I am {name} and I answer.", token_delay=0.02, chunk_chars=3)

    server.route = route
    provider = provider_for(server, tmp_path)
    group = new_group(records)
    groups = GroupStore(tmp_path / "groups")
    events = [
        e
        async for e in group_question(
            group,
            {r.id: r for r in records},
            "What would make your day easier?",
            provider=provider,
            settings=fast(tmp_path, concurrency=4),
            groups=groups,
        )
    ]
    await provider.aclose()
    in_flight, most = set(), 0
    for e in events:
        if isinstance(e, ev.StageStarted) and e.stage is ev.Stage.PROMPT:
            in_flight.add(e.index)
            most = max(most, len(in_flight))
        elif isinstance(e, ev.AnswerDone | ev.Failed):
            in_flight.discard(e.index)
    assert most == 4
    done = [e for e in events if isinstance(e, ev.AnswerDone)]
    assert len(done) == 7 and {e.index for e in done} == set(range(8)) - {5}
    assert all(e.text == f"I am {records[e.index].persona.name} and I answer." for e in done)
    [failed] = [e for e in events if isinstance(e, ev.Failed)]
    assert failed.index == 5 and "content filter" in failed.message
    end = events[-1]
    assert isinstance(end, ev.TalkFinished) and (end.answered, end.failed, end.count) == (7, 1, 8)
    [again] = await groups.all()
    asked = again.questions[0]
    assert len(asked.answers) == 8
    assert "content filter" in asked.answers[records[5].id].error
    assert asked.answers[records[0].id].answer == "I am Person 0 and I answer."
    markdown = group_markdown(again)
    assert "### Person 3" in markdown and "No answer: " in markdown


@pytest.mark.asyncio
async def test_a_follow_up_to_one_sends_only_its_own_earlier_answers(server: FakeOpenAIServer, tmp_path: Path) -> None:
    records = [make_record("Amina Otieno", 0), make_record("Bo Lindqvist", 1, age=34, location="Gothenburg, Sweden")]
    server.route = lambda body: Scenario(content=body["messages"][0]["content"].split(".", 1)[0] + " speaking.")
    provider = provider_for(server, tmp_path)
    group = new_group(records)
    by_id = {r.id: r for r in records}
    s = fast(tmp_path)
    _ = [e async for e in group_question(group, by_id, "First?", provider=provider, settings=s)]
    _ = [e async for e in group_question(group, by_id, "Only Bo?", [records[1].id], provider=provider, settings=s)]
    await provider.aclose()
    last = chat_posts(server)[-1]["messages"]
    assert "You are Bo Lindqvist" in last[0]["content"]
    assert [m["content"] for m in last[1:]] == ["First?", "You are Bo Lindqvist speaking.", "Only Bo?"]
    assert group.questions[1].to == [records[1].id] and list(group.questions[1].answers) == [records[1].id]


@pytest.mark.asyncio
async def test_stopping_an_answer_keeps_the_earlier_turns_and_what_arrived(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.script(
        Scenario(content="First answer, complete."),
        Scenario(content="Second answer that never ends", chunk_chars=4, stall_after=3, stall_seconds=30),
        Scenario(content="Third answer."),
    )
    provider = provider_for(server, tmp_path)
    await turn(AMINA, "One?", tmp_path, provider)
    cancel = asyncio.Event()
    transcripts = TranscriptStore(tmp_path / "transcripts")
    kept: Turn | None = None
    events: list[ev.Event] = []
    async for item in interview_turn(
        AMINA,
        await transcripts.read(AMINA.id),
        "Two?",
        provider=provider,
        settings=fast(tmp_path),
        transcripts=transcripts,
        cancel=cancel,
    ):
        if isinstance(item, Turn):
            kept = item
            continue
        events.append(item)
        if isinstance(item, ev.TokenDelta) and item.tokens >= 3:
            cancel.set()
    assert server.wait_disconnect(5.0), "the HTTP stream is closed, not abandoned"
    assert isinstance(events[-1], ev.TalkFinished) and events[-1].cancelled
    assert kept is not None and kept.stopped and kept.answer == "Second answe"
    await turn(AMINA, "Three?", tmp_path, provider)
    await provider.aclose()
    saved = await transcripts.read(AMINA.id)
    assert [(t.question, t.stopped) for t in saved] == [("One?", False), ("Two?", True), ("Three?", False)]
    third = chat_posts(server)[-1]["messages"]
    assert [m["content"] for m in third[1:]] == [
        "One?",
        "First answer, complete.",
        "Three?",
    ]  # a stopped one is not sent


@pytest.mark.asyncio
async def test_cancelling_a_group_keeps_the_finished_answers(server: FakeOpenAIServer, tmp_path: Path) -> None:
    records = [make_record(f"Person {i}", i) for i in range(3)]

    def route(body: dict[str, Any]) -> Scenario:
        if "You are Person 2." in body["messages"][0]["content"]:
            return Scenario(content="I never finish this", stall_after=2, stall_seconds=30)
        return Scenario(content="Quick answer.")

    server.route = route
    provider = provider_for(server, tmp_path)
    group = new_group(records)
    cancel = asyncio.Event()
    done, seen = 0, False
    async for e in group_question(
        group, {r.id: r for r in records}, "Q?", provider=provider, settings=fast(tmp_path), cancel=cancel,
        groups=GroupStore(tmp_path / "groups"),
    ):  # fmt: skip
        done += isinstance(e, ev.AnswerDone)
        seen = seen or (isinstance(e, ev.TokenDelta) and e.index == 2)
        if done == 2 and seen:
            cancel.set()
    await provider.aclose()
    answers = group.questions[0].answers
    assert answers[records[0].id].answer == "Quick answer." and answers[records[1].id].answer == "Quick answer."
    assert answers[records[2].id].stopped and answers[records[2].id].answer.startswith("I ne")
    [on_disk] = await GroupStore(tmp_path / "groups").all()
    assert on_disk.questions[0].answers == answers


# ----- offline -----


@pytest.mark.asyncio
async def test_offline_answers_come_from_the_persona_and_say_they_are_not_ai(tmp_path: Path) -> None:
    provider = OfflineProvider(tokens_per_second=0)
    assert "not AI" in provider.label
    _, frustrated = await turn(AMINA, "What frustrates you at work?", tmp_path, provider)
    assert frustrated is not None and frustrated.provider == "offline"
    assert any(f.lower() in frustrated.answer for f in AMINA.persona.frustrations)
    assert AMINA.persona.quote in frustrated.answer
    _, goals = await turn(AMINA, "What do you hope to achieve?", tmp_path, provider)
    assert goals is not None and any(g.lower() in goals.answer for g in AMINA.persona.goals)
    _, ai = await turn(AMINA, "Are you an AI?", tmp_path, provider)
    assert ai is not None and "not AI" in ai.answer and not ai.flags
    again = offline_answer(AMINA.persona, "What frustrates you at work?", 0)
    assert again == frustrated.answer  # the same question at the same turn: the same answer, in any process
    other = make_record("Bo Lindqvist", 1, frustrations=["Forklifts that beep all night"])
    assert "forklifts that beep all night" in offline_answer(other.persona, "What annoys you?")


# ----- staying in character -----


def test_the_system_prompt_holds_every_field_and_its_sources() -> None:
    record = AMINA.model_copy(
        update={"sources": [Source(title="Kenya health report", url="https://x", excerpt="Rural clinics")]}
    )
    prompt = persona_system_prompt(record)
    p = record.persona
    for value in (
        p.name,
        str(p.age),
        p.pronouns,
        p.location,
        p.occupation,
        p.background,
        p.communication_style,
        p.quote,
    ):
        assert value in prompt
    assert all(g in prompt for g in p.goals) and all(f in prompt for f in p.frustrations)
    assert "Kenya health report: Rural clinics" in prompt
    assert "first person" in prompt and "Never say you are an AI" in prompt


@pytest.mark.parametrize(
    ("answer", "question", "found"),
    [
        ("I'm 47 and I love my work.", "", []),
        ("Well, I'm 29, still young.", "", ["says they are 29; the persona is 47"]),
        ("I'm 48 since last week.", "", []),  # a birthday's slack
        ("I live in Nairobi now.", "", ["says they live in Nairobi; the persona lives in Kisumu, Kenya"]),
        ("I live in Kisumu, by the lake.", "", []),
        (
            "I work as a software engineer at a bank.",
            "",
            ["says they work as software engineer; the persona is Field nurse"],
        ),
        ("I work as a nurse in the clinics.", "", []),
        ("As an AI, I do not have feelings.", "How do you feel?", ["calls itself an AI, unasked"]),
        ("I'm an AI model playing Amina.", "Are you an AI?", []),
        ("My son is 12 years old.", "", []),
    ],
)
def test_the_rule_pass_flags_what_contradicts_the_persona(answer: str, question: str, found: list[str]) -> None:
    assert list(check_answer(AMINA.persona, answer, question)) == found


@pytest.mark.asyncio
async def test_a_flag_reaches_the_answer_event_and_the_transcript(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script(Scenario(content="Honestly, as an AI language model I cannot say. I'm 25 anyway."))
    provider = provider_for(server, tmp_path)
    events, kept = await turn(AMINA, "What is hard about your job?", tmp_path, provider)
    await provider.aclose()
    [done] = [e for e in events if isinstance(e, ev.AnswerDone)]
    assert "calls itself an AI, unasked" in done.flags and any("25" in f for f in done.flags)
    assert kept is not None and kept.flags == list(done.flags)
    markdown = transcript_markdown(AMINA, [kept])
    assert "Out of character? calls itself an AI, unasked" in markdown


# ----- transcripts on disk -----


@pytest.mark.asyncio
async def test_a_torn_last_line_is_skipped_and_never_swallows_the_next_turn(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "transcripts")
    first = Turn(persona_id=AMINA.id, question="One?", answer="Yes.")
    await store.append(first)
    path = store.path_for(AMINA.id)
    with open(path, "ab") as fh:  # a kill in the middle of the next line
        fh.write(Turn(persona_id=AMINA.id, question="Two?", answer="Cut").model_dump_json().encode()[:30])
    assert [t.question for t in await store.read(AMINA.id)] == ["One?"]
    await store.append(Turn(persona_id=AMINA.id, question="Three?", answer="Fine."))
    assert [t.question for t in await store.read(AMINA.id)] == ["One?", "Three?"]


@pytest.mark.asyncio
async def test_a_transcript_is_never_named_by_anything_but_an_id(tmp_path: Path) -> None:
    from persona_tui.storage import StoreError

    with pytest.raises(StoreError):
        TranscriptStore(tmp_path).path_for("../../etc/passwd")


KILLED_WRITER = """
import asyncio, sys
from persona_tui.models import Turn
from persona_tui.storage import TranscriptStore

async def main():
    store = TranscriptStore(sys.argv[1])
    n = 0
    while True:
        await store.append(Turn(persona_id=sys.argv[2], question=f"Question {n}?", answer="x" * 5000))
        n += 1
        print(n, flush=True)

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_a_transcript_survives_a_kill_mid_append(tmp_path: Path) -> None:
    folder = tmp_path / "transcripts"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(folder), AMINA.id], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    acknowledged = 0
    while acknowledged < 20 and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline() or 0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    store = TranscriptStore(folder)
    turns = await store.read(AMINA.id)
    assert len(turns) >= acknowledged >= 20  # every append that returned is there, whole
    assert [t.question for t in turns] == [f"Question {n}?" for n in range(len(turns))]
    await store.append(Turn(persona_id=AMINA.id, question="After the kill?", answer="Still here."))
    assert (await store.read(AMINA.id))[-1].question == "After the kill?"


def test_persona_fields_used_by_the_rule_pass_exist() -> None:
    assert {"age", "location", "occupation"} <= set(Persona.model_fields)


@pytest.mark.asyncio
async def test_nothing_is_asked_when_the_transcript_could_not_be_kept(server: FakeOpenAIServer, tmp_path: Path) -> None:
    (tmp_path / "transcripts").write_text("a file where the folder should be")
    provider = provider_for(server, tmp_path)
    transcripts = TranscriptStore(tmp_path / "transcripts")
    events: list[Any] = []
    async for item in interview_turn(
        AMINA, [], "Hello?", provider=provider, settings=fast(tmp_path), transcripts=transcripts
    ):
        events.append(item)
    await provider.aclose()
    kept = next((e for e in events if isinstance(e, Turn)), None)
    [failed] = [e for e in events if isinstance(e, ev.Failed)]
    assert failed.kind.value == "save" and "cannot be used" in failed.message
    assert kept is None and chat_posts(server) == []  # no answer was paid for that could not be kept
