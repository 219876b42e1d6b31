"""Scenes of talking to personas (issue 18): an interview mid-answer, a focus group in flight and its answers
side by side. Like ``tests/scenes.py``: the fake clock, fixed personas and hand-built engine events; the
screens' provider never answers (it would hang, not draw)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual.widgets import Input

from persona_tui.engine import events as ev
from persona_tui.engine.events import Stage
from persona_tui.models import PersonaRecord, Turn, Usage
from persona_tui.storage import TranscriptStore
from persona_tui.tui.app import PersonaApp
from persona_tui.tui.screens.focus_group import FocusGroupScreen
from persona_tui.tui.screens.interview import InterviewScreen
from tests.conftest import make_record
from tests.scenes import ENDPOINT, LABEL, MODEL, fake_clock, sample_records, settle

if TYPE_CHECKING:
    from textual.pilot import Pilot

ASKED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
EARLIER = [
    Turn(
        persona_id=sample_records()[0].id,
        asked_at=ASKED_AT,
        question="What does a normal week look like for you?",
        answer="Two days in the clinic, three on the road. The Land Cruiser knows every pothole between Kisumu and "
        "the lake villages, and so do I.",
        provider="openai",
        model=MODEL,
        seconds=4.1,
        tokens=38,
    ),
    Turn(
        persona_id=sample_records()[0].id,
        asked_at=ASKED_AT,
        question="And how old are you, if I may ask?",
        answer="I'm 39, though the rainy season adds a few years.",
        provider="openai",
        model=MODEL,
        seconds=2.2,
        tokens=14,
        flags=["says they are 39; the persona is 47"],
    ),
]
ANSWER = (
    "Honestly? Forms that survive the rain. Half my registers come back soaked, and then I copy them again at "
    "night by torchlight. If a tablet could hold the vaccine records offline and send them when we reach the "
    "road, I would"
)


def words(text: str) -> list[str]:
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(("" if not pieces else " ") + word)
    return pieces


async def _screen_ready(pilot: Pilot[None]) -> None:
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def scene_interview(pilot: Pilot[None]) -> None:
    """An interview with two earlier turns (one flagged), the third answer streaming."""
    app = pilot.app
    assert isinstance(app, PersonaApp)
    await settle(pilot)
    record = sample_records()[0]
    store = TranscriptStore(app.settings.transcripts_dir)
    for turn in EARLIER:
        await store.append(turn)
    clock = fake_clock(app)
    screen = InterviewScreen(record, provider=app.provider, settings=app.settings, clock=clock)
    await app.push_screen(screen)
    await _screen_ready(pilot)
    screen.begin("What would make your rainy-season rounds easier?")
    t0 = clock.now

    def at(seconds: float) -> None:
        clock.advance(t0 + seconds - clock.now)

    screen.handle_event(ev.StageStarted(Stage.PREPARING, f"Asking {record.persona.name} with {LABEL}"))
    at(0.001)
    screen.handle_event(ev.StageFinished(Stage.PREPARING, 0.001))
    screen.handle_event(ev.StageStarted(Stage.CALLING, LABEL))
    screen.handle_event(ev.RequestSent(MODEL, ENDPOINT, 1, 0.9, timeout=30.0, max_attempts=4))
    at(0.95)
    screen.handle_event(ev.FirstToken(0.95))
    screen.handle_event(ev.StageFinished(Stage.CALLING, 0.95))
    screen.handle_event(ev.StageStarted(Stage.STREAMING, LABEL))
    pieces = words(ANSWER)
    for n, piece in enumerate(pieces, 1):
        at(0.95 + n * 0.09)
        screen.handle_event(ev.TokenDelta(piece, n, n / (n * 0.09)))
    screen.handle_event(ev.Progress(0.62, clock.now - t0, 2.4, 0.62))
    screen.tick()
    await pilot.pause()


def group_records() -> list[PersonaRecord]:
    people = [
        ("Amina Otieno", {"age": 47, "occupation": "Field nurse", "location": "Kisumu, Kenya"}),
        ("Bo Lindqvist", {"age": 34, "occupation": "Warehouse lead", "location": "Gothenburg, Sweden"}),
        ("Chen Wei", {"age": 29, "occupation": "UX researcher", "location": "Chengdu, China"}),
        ("Dana Kowalski", {"age": 58, "occupation": "School bus driver", "location": "Łódź, Poland"}),
    ]
    return [make_record(name, i, **extra) for i, (name, extra) in enumerate(people)]


QUESTION = "What would make you trust a new app at work?"
GROUP_ANSWERS = [
    "If it works when the signal drops. Show me it keeps my records on the phone and I'll give it a month.",
    "Fewer taps than the scanner we have now. My team judges a tool in the first hour of a night shift.",
    "Honest empty states and an export button. I trust tools that let me leave.",
    "As an AI I would say reliability, but truly: big buttons and someone to call",
]


async def _group(pilot: Pilot[None], *, finish: bool) -> None:
    app = pilot.app
    assert isinstance(app, PersonaApp)
    await settle(pilot)
    records = group_records()
    clock = fake_clock(app)
    screen = FocusGroupScreen(records, provider=app.provider, settings=app.settings, clock=clock)
    await app.push_screen(screen)
    await _screen_ready(pilot)
    screen.begin(QUESTION, [r.id for r in records])
    t0 = clock.now

    def at(seconds: float) -> None:
        clock.advance(t0 + seconds - clock.now)

    screen.handle_event(ev.StageStarted(Stage.PREPARING, f"Asking 4 personas with {LABEL}"))
    screen.handle_event(ev.StageFinished(Stage.PREPARING, 0.001))
    for index in range(4):
        screen.handle_event(ev.StageStarted(Stage.PROMPT, records[index].persona.name, index))
        screen.handle_event(ev.StageStarted(Stage.CALLING, LABEL, index))
        screen.handle_event(ev.RequestSent(MODEL, ENDPOINT, 1, 0.9, index, timeout=30.0, max_attempts=4))
    streamed = {0: 1.0, 1: 1.0, 2: 0.55, 3: 0.3}
    for index, share in streamed.items():
        at(0.8 + index * 0.2)
        screen.handle_event(ev.FirstToken(0.8, index))
        screen.handle_event(ev.StageFinished(Stage.CALLING, 0.8, index))
        screen.handle_event(ev.StageStarted(Stage.STREAMING, LABEL, index))
        pieces = words(GROUP_ANSWERS[index])
        shown = pieces[: max(1, int(len(pieces) * share))]
        for n, piece in enumerate(shown, 1):
            screen.handle_event(ev.TokenDelta(piece, n, 21.0 + index, index))
        screen.handle_event(ev.Progress(0.2 * (index + 1), 1.4, 3.1, min(share, 0.95), index))
    at(2.6)
    for index in (0, 1):
        done = ev.AnswerDone(records[index].id, GROUP_ANSWERS[index], 2.5, 24, 22.0, index, Usage(), (), "")
        screen.handle_event(done)
    screen.handle_event(ev.Progress(0.64, 2.6, 1.6, 0.0, 0))
    if finish:
        at(4.2)
        screen.handle_event(ev.AnswerDone(records[2].id, GROUP_ANSWERS[2], 3.9, 16, 20.0, 2))
        flags = ("calls itself an AI, unasked",)
        screen.handle_event(ev.AnswerDone(records[3].id, GROUP_ANSWERS[3], 4.1, 19, 19.0, 3, flags=flags))
        screen.handle_event(ev.TalkFinished(4, 0, False, 4.2, 83, 4))
    screen.tick()
    await pilot.pause()


async def scene_focus_group_live(pilot: Pilot[None]) -> None:
    """Four personas asked at once: two answered, two still streaming."""
    await _group(pilot, finish=False)


async def scene_focus_group_done(pilot: Pilot[None]) -> None:
    """The same question answered: four answers side by side, one flagged."""
    await _group(pilot, finish=True)
