"""The app's interview (i) and focus group (a): pilot tests with the offline generator and scripted streams."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.models import FocusGroup, PersonaRecord
from persona_tui.storage import TranscriptStore
from persona_tui.tui.screens.detail import DetailScreen
from persona_tui.tui.screens.focus_group import FocusGroupScreen
from persona_tui.tui.screens.interview import InterviewScreen
from persona_tui.tui.widgets.talk import LaneCard
from tests.conftest import AppFactory
from tests.helpers import ScriptedProvider, Step

pytestmark = pytest.mark.asyncio


async def ready(app, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


async def ask(app, pilot, selector: str, question: str) -> None:  # type: ignore[no-untyped-def]
    field = app.screen.query_one(selector, Input)
    field.value = question
    await pilot.press("enter")
    for _ in range(200):  # the answer's worker, then the screen's next tick
        await app.workers.wait_for_complete()
        await pilot.pause(0.02)
        if getattr(app.screen, "cancel", None) is None:
            break
    await pilot.pause(0.15)


def plain(widget: Static) -> str:
    return str(widget.render())


async def test_i_opens_an_interview_that_answers_saves_and_reopens(
    app_factory: AppFactory, sample_records: list[PersonaRecord], tmp_path: Path
) -> None:
    app = app_factory(OfflineProvider(tokens_per_second=0), records=sample_records)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.table.focus()
        await pilot.press("i")
        await ready(app, pilot)
        screen = app.screen
        assert isinstance(screen, InterviewScreen) and screen.record.id == app.table.selected_id
        assert "No conversation with" in plain(screen.query_one("#earlier", Static))
        await ask(app, pilot, "#question", "What frustrates you most?")
        earlier = plain(screen.query_one("#earlier", Static))
        assert "You: What frustrates you most?" in earlier and "Honestly?" in earlier
        assert "Answered" in screen.panel._status().plain
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, InterviewScreen)
        app.table.focus()
        await pilot.press("i")
        await ready(app, pilot)
        assert "1 turn(s) so far" in plain(app.screen.query_one("#earlier", Static))
        await pilot.press("ctrl+e")
        await ready(app, pilot)
    turns = TranscriptStore(tmp_path / "transcripts").read_sync(sample_records[0].id)
    assert [t.question for t in turns] == ["What frustrates you most?"]
    exported = list((tmp_path / "exports").glob("interview-*.md"))
    assert exported and "What frustrates you most?" in exported[0].read_text()


async def test_i_in_the_detail_view_interviews_that_persona(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(OfflineProvider(tokens_per_second=0), records=sample_records)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.table.focus()
        await pilot.press("down", "enter")
        await ready(app, pilot)
        assert isinstance(app.screen, DetailScreen)
        shown = app.screen.record.id
        await pilot.press("i")
        await ready(app, pilot)
        assert isinstance(app.screen, InterviewScreen) and app.screen.record.id == shown


async def test_escape_stops_an_answer_and_keeps_the_conversation(
    app_factory: AppFactory, sample_records: list[PersonaRecord], tmp_path: Path
) -> None:
    provider = ScriptedProvider(
        [Step(pieces=["First ", "answer."]), Step(pieces=["Half ", "an "], hang=True), Step(pieces=["Third."])]
    )
    app = app_factory(provider, records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.table.focus()
        await pilot.press("i")
        await ready(app, pilot)
        screen = app.screen
        assert isinstance(screen, InterviewScreen)
        await ask(app, pilot, "#question", "One?")
        screen.query_one("#question", Input).value = "Two?"
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.02)
            if len(screen.streamed) >= 2:
                break
        await pilot.press("escape")  # stops the answer: the screen stays
        await app.workers.wait_for_complete()
        await pilot.pause(0.15)
        assert isinstance(app.screen, InterviewScreen)
        assert "Stopped after" in screen.panel._status().plain
        await ask(app, pilot, "#question", "Three?")
        earlier = plain(screen.query_one("#earlier", Static))
        assert "First answer." in earlier and "Half an" in earlier and "Third." in earlier
    turns = TranscriptStore(tmp_path / "transcripts").read_sync(sample_records[0].id)
    assert [(t.question, t.stopped) for t in turns] == [("One?", False), ("Two?", True), ("Three?", False)]
    third = provider.calls[-1].messages
    assert [m["content"] for m in third[1:]] == ["One?", "First answer.", "Three?"]


async def test_a_asks_the_personas_shown_side_by_side_and_saves_the_group(
    app_factory: AppFactory, sample_records: list[PersonaRecord], tmp_path: Path
) -> None:
    app = app_factory(OfflineProvider(tokens_per_second=0), records=sample_records)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.table.focus()
        await pilot.press("a")
        await ready(app, pilot)
        screen = app.screen
        assert isinstance(screen, FocusGroupScreen)
        cards = list(screen.query(LaneCard))
        assert [c.persona_id for c in cards] == app.table.shown_ids
        await ask(app, pilot, "#group-question", "What do you hope to achieve?")
        for card, record in zip(cards, sample_records, strict=True):
            assert any(g.lower() in card.answer for g in record.persona.goals)
        assert "3 of 3 answered" in screen.panel._status().plain
        await pilot.press("ctrl+t")  # a follow-up to the first persona alone
        assert "only" in str(screen.query_one("#to").render())
        await ask(app, pilot, "#group-question", "How old are you?")
        assert cards[0].answer == f"I'm {sample_records[0].persona.age}."
        assert cards[1].earlier == [] and cards[0].earlier[0][0] == "What do you hope to achieve?"
    [saved] = (tmp_path / "groups").glob("group-*.json")
    group = FocusGroup.model_validate_json(saved.read_bytes())
    assert [q.question for q in group.questions] == ["What do you hope to achieve?", "How old are you?"]
    assert len(group.questions[0].answers) == 3 and list(group.questions[1].answers) == [sample_records[0].id]


async def test_the_palette_offers_both(app_factory: AppFactory, sample_records: list[PersonaRecord]) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Interview the selected persona" in titles and "Ask the marked personas" in titles
        app.table.focus()
        await pilot.pause()
        keys = {key: active.binding.action for key, active in app.active_bindings.items()}
        assert keys.get("i") == "interview" and keys.get("a") == "ask_group"


async def test_esc_in_an_interview_leaves_a_running_generation_alone(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(ScriptedProvider([Step(hang=True)]), records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        app.query_one("#description", Input).value = "nurses"
        await pilot.press("ctrl+g")
        await pilot.pause(0.1)
        assert app.running
        app.table.focus()
        await pilot.press("i")
        await pilot.pause(0.2)
        assert isinstance(app.screen, InterviewScreen)
        await pilot.press("escape")  # closes the interview; the generation goes on
        await pilot.pause(0.1)
        assert not isinstance(app.screen, InterviewScreen) and app.running
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert not app.running
