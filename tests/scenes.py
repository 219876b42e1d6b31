"""Deterministic app states, shared by the snapshot tests and ``screenshots/make_screenshots.py``.

Each ``scene_xxx(pilot)`` is an ``async`` function usable as ``run_before``: it
puts a running :class:`PersonaApp` into one state a user lives through. Build
the app with :func:`build_app` (or :func:`app_for`), which gives it:

* a :class:`FakeClock` that moves only when a scene advances it, and a log
  clock (``now``) that starts at ``FIXED_NOW`` and follows that fake clock;
* fixed records (:func:`make_record`), a store in a folder the caller owns;
* a provider that never answers (a hanging :class:`ScriptedProvider` that
  reports ``gpt-4o-mini at api.openai.com``), or the offline generator.

No scene runs the real pipeline: a generation is started the way
``action_generate`` starts one (``PersonaApp.begin_run``) and then
hand-built engine events, with fixed numbers, go through ``app.handle_event``.
Every ``Input`` has its cursor blink turned off.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import Input, TextArea

from persona_tui.config import Settings
from persona_tui.engine import events as ev
from persona_tui.engine.diversity import diversity_report
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.events import Stage
from persona_tui.engine.parsing import parse_partial
from persona_tui.engine.plan import draw_plan
from persona_tui.engine.providers.base import Provider
from persona_tui.engine.providers.offline import OfflineProvider
from persona_tui.engine.providers.offline.refine import refine_offline
from persona_tui.models import GenerationRequest, PersonaRecord, Plan, Slot
from persona_tui.storage import PersonaStore
from persona_tui.tui.app import PersonaApp, make_app
from persona_tui.tui.screens.diff import DiffScreen
from persona_tui.tui.screens.edit import EditScreen
from persona_tui.tui.screens.help import HelpScreen
from persona_tui.tui.screens.report import ReportScreen
from tests.conftest import FIXED_NOW, SAMPLE_PEOPLE, FakeClock, make_record  # also pins TZ=UTC
from tests.helpers import ScriptedProvider, Step, persona_dict, tokens_of

if TYPE_CHECKING:
    from textual.pilot import Pilot

MODEL = "gpt-4o-mini"
ENDPOINT = "api.openai.com"
LABEL = f"{MODEL} at {ENDPOINT}"
DESCRIPTION = "field nurses in rural Kenya aged 40 to 60"
PLAN = Plan(
    seed=7,
    slots=(
        Slot(
            index=0,
            age=52,
            ages=(40, 60),
            pronouns="she/her",
            location="Rural area near Nyeri, Kenya",
            occupation="Community Health Nurse",
            tech_savviness="intermediate",
            life_stage="working",
        ),
    ),
)
"""The plan of a single persona: the slot the scenes' nurse (Wanjiru) was written to."""


def _slot(index: int, age: int, pronouns: str, town: str, job: str, tech: str, stage: str) -> Slot:
    return Slot.model_validate(
        {
            "index": index,
            "age": age,
            "ages": (age - 5, age + 5),
            "pronouns": pronouns,
            "location": f"{town}, Poland",
            "occupation": job,
            "tech_savviness": tech,
            "life_stage": stage,
        }
    )


BATCH_PLAN = Plan(
    seed=7,
    slots=(
        _slot(0, 29, "she/her", "Poznań", "Picker", "basic", "working"),
        _slot(1, 38, "she/her", "Łódź", "Warehouse Shift Lead", "intermediate", "parent"),
        _slot(2, 51, "he/him", "Wrocław", "Forklift Operator", "novice", "parent"),
    ),
)
"""The batch scene's plan: Ana and Dana are the slots' first two personas."""
BATCH_DESCRIPTION = "warehouse staff in Poland"


# ----- the app -----


@dataclass
class LookalikeProvider(ScriptedProvider):
    """A scripted provider that reports itself as OpenAI's gpt-4o-mini, so pictures read like a real run."""

    name: str = "openai"
    model: str = MODEL

    @property
    def endpoint(self) -> str:
        return ENDPOINT


def ai_provider() -> LookalikeProvider:
    """Never answers: if anything did send a request, it would wait, not draw."""
    return LookalikeProvider([Step(hang=True)])


def offline_provider() -> OfflineProvider:
    return OfflineProvider(seed=1, tokens_per_second=0)


def sample_records() -> list[PersonaRecord]:
    """The three personas of ``conftest.sample_records``: Amina (newest), Bo, Chen."""
    return [make_record(name, i * 7, **extra) for i, (name, extra) in enumerate(SAMPLE_PEOPLE)]


def build_app(
    data_dir: Path,
    *,
    records: list[PersonaRecord] | None = None,
    offline: bool = False,
    provider: Provider | None = None,
) -> PersonaApp:
    """The app as the CLI builds it, with everything that could vary pinned."""
    clock = FakeClock()
    start = clock.now

    def now() -> datetime:  # log timestamps: FIXED_NOW plus the fake clock's progress
        return FIXED_NOW + timedelta(seconds=clock.now - start)

    store = PersonaStore(data_dir / "personas")
    store.root.mkdir(parents=True, exist_ok=True)
    for record in records or []:
        (store.root / f"{record.id}.json").write_text(record.model_dump_json(indent=2))
    if provider is None:
        provider = offline_provider() if offline else ai_provider()
    return make_app(
        Settings(data_dir=data_dir, provider="auto" if offline else "openai"),
        provider,
        store,
        clock=clock,
        now=now,
        estimates=EstimateBook(None),
    )


# ----- building blocks -----


def fake_clock(app: PersonaApp) -> FakeClock:
    clock = app.clock
    assert isinstance(clock, FakeClock), "scenes need an app from build_app()"
    return clock


async def settle(pilot: Pilot[None]) -> None:
    """Loaded, drawn, and still: workers done, no blinking cursor, queued log text written."""
    app = pilot.app
    assert isinstance(app, PersonaApp)
    await app.workers.wait_for_complete()
    await pilot.pause()
    for field in app.query(Input):
        field.cursor_blink = False
    app.log_pane.flush()
    app.persona_view.draw_partial()
    await pilot.pause()


async def start_run(pilot: Pilot[None], description: str, count: int = 1) -> Feed:
    """What ``action_generate`` does before its worker starts, minus the worker; then one frame is drawn.

    The frame matters: the panel grows when a run begins, which shrinks the log, and the
    log's follow-the-end test depends on whether that layout came before or after its writes.
    """
    app = pilot.app
    assert isinstance(app, PersonaApp)
    for field, value in (("#description", description), ("#count", str(count))):
        typed = app.query_one(field, Input)
        typed.value = value
        typed.action_home()  # as if typed: the view follows the cursor to the end
        typed.action_end()
    app.begin_run(GenerationRequest.create(description, count))
    await pilot.pause()
    return Feed(app)


class Feed:
    """Sends events to the app at fixed moments of the fake clock (seconds since the run began)."""

    def __init__(self, app: PersonaApp) -> None:
        self.app = app
        self.clock = fake_clock(app)
        self.t0 = app.panel.started
        self.texts: dict[int, str] = {}
        """What each persona's stream has said so far."""

    def at(self, seconds: float) -> Feed:
        target = self.t0 + seconds
        assert target >= self.clock.now, f"the clock only moves forward ({seconds} s)"
        self.clock.advance(target - self.clock.now)
        return self

    @property
    def elapsed(self) -> float:
        return self.clock.now - self.t0

    def __call__(self, *events: ev.Event) -> Feed:
        for event in events:
            self.app.handle_event(event)
        return self

    def done(self) -> None:
        """Draw queued model text and the newest partial persona now, before anything awaits, so the
        picture does not depend on where the app's drawing clock happens to be."""
        self.app.log_pane.flush()
        self.app.persona_view.draw_partial()

    def prepare(self, count: int = 1) -> None:
        """Preparing, the two context stages skipped, and the population plan (1 ms), as for a plain request."""
        self(ev.StageStarted(Stage.PREPARING, f"{count} persona(s) with {LABEL}"))
        self.at(0.012)(ev.StageFinished(Stage.PREPARING, 0.012))
        self(
            ev.StageSkipped(Stage.ORGANIZATION, "no organization chosen"),
            ev.StageSkipped(Stage.ENRICHING, "not requested"),
            ev.StageStarted(Stage.PLANNING, "1 slot" if count == 1 else f"{count} slots"),
        )
        plan = PLAN if count == 1 else BATCH_PLAN
        self(ev.StageFinished(Stage.PLANNING, 0.0004, note=f"seed {plan.seed}"), ev.PlanDrawn(plan))

    def request(self, index: int = 0, attempt: int = 1, prompt: bool = True) -> None:
        """Prompt built (3 ms) and the request sent."""
        if prompt:
            start = self.elapsed
            self(ev.StageStarted(Stage.PROMPT, index=index))
            self.at(start + 0.003)(ev.StageFinished(Stage.PROMPT, 0.003, index))
        suffix = f" (attempt {attempt} of 4)" if attempt > 1 else ""
        self(
            ev.StageStarted(Stage.CALLING, f"{LABEL}{suffix}", index),
            ev.RequestSent(MODEL, ENDPOINT, attempt, 1.2, index, timeout=30.0, max_attempts=4),
        )

    def first_token(self, waited: float, index: int = 0) -> None:
        self(
            ev.FirstToken(waited, index),
            ev.StageFinished(Stage.CALLING, waited, index),
            ev.StageStarted(Stage.STREAMING, LABEL, index),
        )

    def stream(
        self,
        pieces: list[str],
        start: float,
        end: float,
        index: int = 0,
        *,
        already: int = 0,
        first: float | None = None,
    ) -> None:
        """Token deltas spread evenly over ``start``..``end``, with partial personas on the way.

        ``already`` tokens of this persona came before (from ``first``, its first token's moment),
        and ``text`` is what they said, so partial personas are parsed from the whole answer.
        """
        first = start if first is None else first
        for n, piece in enumerate(pieces, 1):
            at = start + (end - start) * n / len(pieces)
            self.at(at)
            text = self.texts.get(index, "") + piece
            self.texts[index] = text
            tokens = already + n
            self(ev.TokenDelta(piece, tokens, tokens / (at - first), index))
            if n % 20 == 0 or n == len(pieces):
                fields = parse_partial(text)
                if fields:
                    self(ev.PartialPersona(fields, index))


# ----- the personas being written -----

WANJIRU = persona_dict(
    "Wanjiru Kamau",
    age=52,
    pronouns="she/her",
    location="Nyeri County, Kenya",
    occupation="Community health nurse",
    background=(
        "Wanjiru has spent twenty-six years nursing in the hills around Nyeri, the last nine running a "
        "dispensary that serves eleven villages. She keeps a paper register and a phone full of photos of it, "
        "because the district system goes down whenever it rains. Her daughter set up WhatsApp groups for the "
        "community health volunteers, and Wanjiru now answers questions there late into the night. She is "
        "wary of new systems after two pilots left her with tablets nobody could charge, but she will back "
        "anything that gives her evenings back."
    ),
    goals=["Cut the time spent copying registers", "Get test results to mothers faster"],
    frustrations=["Forms that ask for the same thing twice", "Apps that need a signal to open"],
    personality_traits=["steady", "blunt", "protective"],
    tech_savviness="intermediate",
    communication_style="Direct, with a story to make the point.",
    quote="Show me it works offline, then we can talk.",
)

DANA = persona_dict(
    "Dana Kowalski",
    age=38,
    pronouns="she/her",
    location="Łódź, Poland",
    occupation="Warehouse shift lead",
    background=(
        "Dana runs the night shift at a parcel hub outside Łódź: forty pickers, three languages, one radio "
        "channel. She moved up from the loading dock six years ago and still covers a forklift when someone "
        "is sick. She plans the shift on a tablet but trusts the whiteboard more."
    ),
    goals=["Fewer mis-sorted parcels", "Train new pickers in one shift, not three"],
    frustrations=["Scanners that lose their pairing", "Dashboards nobody on the floor can read"],
    personality_traits=["calm", "exacting", "funny"],
    tech_savviness="intermediate",
    communication_style="Short radio-style sentences, then a thumbs up.",
    quote="If the scanner beeps twice, something is already wrong.",
)


def json_pieces(fields: dict[str, object]) -> list[str]:
    """The persona as a model would stream it: pretty JSON in pieces of about one token."""
    return tokens_of(json.dumps(fields, ensure_ascii=False, indent=2))


def saved_record(fields: dict[str, object], tokens: int, seconds: float, minutes_ago: int = -30) -> PersonaRecord:
    """A persona saved at FIXED_NOW (09:30), so it sorts above the sample personas (09:00 and before)."""
    name = str(fields["name"])
    extra = {k: v for k, v in fields.items() if k != "name"}
    record = make_record(name, minutes_ago, **extra)
    return record.model_copy(update={"tokens": tokens, "generation_seconds": seconds})


# ----- the scenes -----


async def scene_first_run(pilot: Pilot[None]) -> None:
    """1. Empty store, nothing typed, focus in the description."""
    await settle(pilot)


async def scene_loaded(pilot: Pilot[None]) -> None:
    """2. Three saved personas loaded into the table."""
    await settle(pilot)


async def _mid_stream(pilot: Pilot[None], tokens: int = 120, until: float = 6.0) -> Feed:
    """A single persona streaming: 1.1 s to the first token, then ``tokens`` tokens until ``until`` s."""
    feed = await start_run(pilot, DESCRIPTION)
    feed.prepare()
    feed(ev.Progress(0.0, feed.elapsed, 18.5))
    feed.request()
    sent = feed.elapsed
    feed.at(sent + 1.1).first_token(1.1)
    feed(ev.Progress(0.1, feed.elapsed, 17.4, 0.1))
    pieces = json_pieces(WANJIRU)[:tokens]
    feed.stream(pieces, feed.elapsed, until)
    return feed


async def scene_mid_stream(pilot: Pilot[None]) -> None:
    """3. Streaming: ~120 tokens, a half-written persona, 45 %, 6 s elapsed and ~13 s to go."""
    await settle(pilot)
    feed = await _mid_stream(pilot)
    feed(ev.Progress(0.45, 6.0, 13.0, 0.45))
    feed.done()
    await settle(pilot)


async def scene_waiting_slow(pilot: Pilot[None]) -> None:
    """4. Calling, no token yet, 17 s since the request; heartbeats logged and the slow warning shown."""
    await settle(pilot)
    feed = await start_run(pilot, DESCRIPTION)
    feed.prepare()
    feed(ev.Progress(0.0, feed.elapsed, 18.5))
    persona_start = feed.elapsed
    feed.request()
    sent = feed.elapsed
    for idle in (3.0, 6.0, 9.0, 12.0, 15.0):
        feed.at(sent + idle)
        if idle == 15.0:
            feed(ev.SlowWarning(feed.elapsed - persona_start, 15.0))
        feed(ev.Heartbeat(feed.elapsed, idle), ev.Progress(min(0.02 * idle / 3, 0.1), feed.elapsed, 9.0))
    feed.at(sent + 17.0)
    feed.done()
    await settle(pilot)


async def scene_retry(pilot: Pilot[None]) -> None:
    """5. Rate limited on the first attempt: counting down to attempt 2 of 4."""
    await settle(pilot)
    feed = await start_run(pilot, DESCRIPTION)
    feed.prepare()
    feed(ev.Progress(0.0, feed.elapsed, 18.5))
    feed.request()
    sent = feed.elapsed
    feed.at(sent + 0.6)(ev.Retrying(2, 4, 4.0, f"Rate limited by {ENDPOINT}."))
    feed.at(sent + 1.6)  # 3 s of the 4 left
    feed.done()
    await settle(pilot)


THINKER = "qwen3:14b"
THINKER_ENDPOINT = "localhost:11434"
REASONING = (
    "The user wants field nurses in rural Kenya aged 40 to 60. One persona, so pick someone typical but "
    "specific. A woman in her fifties fits the age range and the workforce. Where exactly? Rural, so not "
    "Nairobi or Mombasa: somewhere like Nyeri, Kitui or Homa Bay, with long distances between dispensaries. "
    "Nyeri gives hills, rain and patchy signal, which shapes how she uses technology.\n"
    "Name: a Kikuyu name suits Nyeri, so Wanjiru, with a common surname like Kamau. Age 52. She has been "
    "nursing for decades and runs a dispensary now. Goals should be concrete: less time copying registers, "
    "test results reaching mothers faster. Frustrations: duplicated forms, apps that need a signal. Tech "
    "savviness intermediate: she uses WhatsApp daily but distrusts pilots that left tablets nobody could "
    "charge. The quote should sound like her, short and practical"
)


@dataclass
class ThinkerProvider(LookalikeProvider):
    """A scripted provider that reports itself as a local reasoning model (qwen3 on Ollama)."""

    model: str = THINKER

    @property
    def endpoint(self) -> str:
        return THINKER_ENDPOINT


async def scene_thinking(pilot: Pilot[None]) -> None:
    """A reasoning model mid-thought: 812 reasoning tokens in 14 s, streamed into the log beside its margin."""
    await settle(pilot)
    feed = await start_run(pilot, DESCRIPTION)
    label = f"{THINKER} at {THINKER_ENDPOINT}"
    feed(ev.StageStarted(Stage.PREPARING, f"1 persona(s) with {label}"))
    feed.at(0.012)(ev.StageFinished(Stage.PREPARING, 0.012))
    feed(
        ev.StageSkipped(Stage.ORGANIZATION, "no organization chosen"),
        ev.StageSkipped(Stage.ENRICHING, "not requested"),
        ev.Progress(0.0, feed.elapsed, 40.0),
        ev.StageStarted(Stage.PROMPT),
    )
    feed.at(0.015)(ev.StageFinished(Stage.PROMPT, 0.003), ev.StageStarted(Stage.CALLING, label))
    feed(ev.RequestSent(THINKER, THINKER_ENDPOINT, 1, 2.0, timeout=30.0, max_attempts=4))
    feed.at(0.815)(ev.FirstToken(0.8), ev.StageFinished(Stage.CALLING, 0.8), ev.StageStarted(Stage.THINKING))
    pieces = tokens_of(REASONING)
    tokens, since, until = 812, feed.elapsed, 14.8
    for n, piece in enumerate(pieces, 1):
        at = since + (until - since) * n / len(pieces)
        feed.at(at)(ev.ReasoningDelta(piece, tokens * n // len(pieces), at - since))
        if n % 40 == 0:
            feed(ev.Progress(0.3 * n / len(pieces), feed.elapsed, 30.0 - 14 * n / len(pieces), 0.3 * n / len(pieces)))
    feed.done()
    await settle(pilot)


async def scene_success(pilot: Pilot[None]) -> None:
    """6. A persona saved: the new row highlighted at the top of the table, the notification shown."""
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, PersonaApp)
    feed = await start_run(pilot, BATCH_DESCRIPTION)
    feed.prepare()
    feed(ev.Progress(0.0, feed.elapsed, 18.5))
    feed.request()
    feed.at(feed.elapsed + 0.9).first_token(0.9)
    pieces = json_pieces(DANA)
    first = feed.elapsed
    feed.stream(pieces, first, 8.9)
    stream_seconds = feed.elapsed - first
    feed(ev.StageFinished(Stage.STREAMING, stream_seconds))
    feed(ev.StageStarted(Stage.VALIDATING, f"{len(pieces)} tokens"))
    feed.at(8.905)(ev.Progress(0.95, feed.elapsed, 0.5, 0.95), ev.StageFinished(Stage.VALIDATING, 0.005))
    feed(ev.StageStarted(Stage.SAVING))
    feed.at(8.93)(ev.StageFinished(Stage.SAVING, 0.025))
    record = saved_record(DANA, len(pieces), 8.93)
    rate = len(pieces) / stream_seconds
    feed(ev.PersonaSaved(record, app.store.root / f"{record.id}.json", 8.93, len(pieces), rate))
    feed(ev.Progress(1.0, 8.93, 0.0, 1.0))
    feed(ev.Finished(ev.Summary((record,), 0, False, 8.93, len(pieces))))
    feed.done()
    await settle(pilot)


async def scene_failure(pilot: Pilot[None]) -> None:
    """7. The API key was rejected: the reason and the fix, in the panel, the log and a notification."""
    await settle(pilot)
    feed = await start_run(pilot, DESCRIPTION)
    feed.prepare()
    feed(ev.Progress(0.0, feed.elapsed, 18.5))
    feed.request()
    feed.at(feed.elapsed + 0.4)
    feed(
        ev.Failed(
            "auth",
            f"The API key was rejected by {ENDPOINT}.",
            "Set OPENAI_API_KEY to a valid key, or run with --provider offline.",
        )
    )
    feed(ev.Finished(ev.Summary((), 1, False, feed.elapsed, 0)))
    feed.done()
    await settle(pilot)


async def scene_cancelled(pilot: Pilot[None]) -> None:
    """8. Esc pressed mid-stream: cancelled after 6.2 s, nothing saved."""
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, PersonaApp)
    feed = await _mid_stream(pilot, tokens=96, until=6.1)
    feed(ev.Progress(0.38, 6.1, 14.0, 0.38))
    feed.at(6.2)
    app.action_cancel()  # what Esc runs: sets the cancel event and says so in the log
    feed(ev.Cancelled(6.2, ()), ev.Finished(ev.Summary((), 0, True, 6.2, 96)))
    feed.done()
    await settle(pilot)


async def scene_input_error(pilot: Pilot[None]) -> None:
    """9. ctrl+g with nothing typed: the error beside the form, focus back in the field."""
    await settle(pilot)
    await pilot.press("ctrl+g")
    await settle(pilot)


async def scene_batch(pilot: Pilot[None]) -> None:
    """10. A batch of 3: the first saved, the second streaming ([2/3]), the third still waiting."""
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, PersonaApp)
    feed = await start_run(pilot, BATCH_DESCRIPTION, count=3)
    feed.prepare(3)
    feed(ev.Progress(0.0, feed.elapsed, 26.0))
    for index in range(3):  # concurrency 4: all three requests leave at once
        feed.request(index)
    sent = {0: 0.015, 1: 0.018, 2: 0.021}
    assert abs(feed.elapsed - sent[2]) < 1e-9
    feed.at(0.9).first_token(0.9 - sent[0], 0)
    feed.at(1.6).first_token(1.6 - sent[1], 1)
    ana = persona_dict("Ana Nowak", age=29, location="Poznań, Poland", occupation="Picker", pronouns="she/her")
    ana_pieces = json_pieces(ana)
    dana_pieces = json_pieces(DANA)[:130]
    ticks = 10
    heartbeats = [3.0, 6.0]
    for tick in range(ticks):  # the two streams interleave, half a second at a time; the third hears nothing
        t = 1.6 + tick * 0.5
        a0, a1 = len(ana_pieces) * tick // ticks, len(ana_pieces) * (tick + 1) // ticks
        feed.stream(ana_pieces[a0:a1], t, t + 0.25, 0, already=a0, first=0.9)
        d0, d1 = 110 * tick // ticks, 110 * (tick + 1) // ticks
        feed.stream(dana_pieces[d0:d1], t + 0.25, t + 0.5, 1, already=d0, first=1.6)
        if heartbeats and feed.elapsed - sent[2] >= heartbeats[0]:
            feed(ev.Heartbeat(feed.elapsed, heartbeats.pop(0), 2))
        feed(
            ev.Progress(0.04 * (tick + 1), feed.elapsed, 24.0 - 1.4 * tick, a1 / len(ana_pieces) * 0.9, 0),
            ev.Progress(0.04 * (tick + 1), feed.elapsed, 24.0 - 1.4 * tick, d1 / 220, 1),
        )
    done = feed.elapsed  # 6.6 s
    feed(ev.StageFinished(Stage.STREAMING, done - 0.9, 0))
    feed(ev.StageStarted(Stage.VALIDATING, f"{len(ana_pieces)} tokens", 0))
    feed(ev.StageFinished(Stage.VALIDATING, 0.004, 0), ev.StageStarted(Stage.SAVING, index=0))
    feed.at(done + 0.02)(ev.StageFinished(Stage.SAVING, 0.02, 0))
    seconds = round(feed.elapsed - sent[0] + 0.003, 2)
    record = saved_record(ana, len(ana_pieces), seconds)
    rate = len(ana_pieces) / (done - 0.9)
    feed(
        ev.PersonaSaved(record, app.store.root / f"{record.id}.json", seconds, len(ana_pieces), rate, 0),
        ev.Progress(0.42, feed.elapsed, 11.5, 1.0, 0),
    )
    feed.stream(dana_pieces[110:130], feed.elapsed, 7.5, 1, already=110, first=1.6)
    feed(ev.Progress(0.48, 7.5, 10.0, 0.59, 1), ev.Progress(0.48, 7.5, 10.0, 0.04, 2))
    feed.done()
    await settle(pilot)


POPULATION = "nurses in Kenya aged 30 to 60"


async def scene_plan(pilot: Pilot[None]) -> None:
    """11. A batch of 20 just planned: the plan's table in the log before the first call."""
    await settle(pilot)
    feed = await start_run(pilot, POPULATION, count=20)
    plan = draw_plan(GenerationRequest.create(POPULATION, 20), seed=5)
    feed(ev.StageStarted(Stage.PREPARING, f"20 persona(s) with {LABEL}"))
    feed.at(0.012)(ev.StageFinished(Stage.PREPARING, 0.012))
    feed(
        ev.StageSkipped(Stage.ORGANIZATION, "no organization chosen"),
        ev.StageSkipped(Stage.ENRICHING, "not requested"),
        ev.StageStarted(Stage.PLANNING, "20 slots"),
    )
    feed.at(0.014)(ev.StageFinished(Stage.PLANNING, 0.002, note="seed 5"), ev.PlanDrawn(plan))
    feed(ev.Progress(0.0, feed.elapsed, 52.0))
    feed.done()
    await settle(pilot)


BIG_BATCH = 50
BIG_NAMES = ["Ola Zielińska", "Piotr Wójcik", "Marta Lis"]


async def scene_big_batch(pilot: Pilot[None]) -> None:
    """12. A batch of 50 at K = 20: three saved, twenty in flight (calling, streaming, checking, saving),
    drawn as a whole: counts by stage, tokens a second summed, and the three slowest rows."""
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, PersonaApp)
    feed = await start_run(pilot, BATCH_DESCRIPTION, count=BIG_BATCH)
    plan = draw_plan(GenerationRequest.create(BATCH_DESCRIPTION, BIG_BATCH), seed=5)
    feed(ev.StageStarted(Stage.PREPARING, f"{BIG_BATCH} persona(s) with {LABEL}"))
    feed.at(0.012)(ev.StageFinished(Stage.PREPARING, 0.012))
    feed(
        ev.StageSkipped(Stage.ORGANIZATION, "no organization chosen"),
        ev.StageSkipped(Stage.ENRICHING, "not requested"),
        ev.StageStarted(Stage.PLANNING, f"{BIG_BATCH} slots"),
    )
    feed.at(0.014)(ev.StageFinished(Stage.PLANNING, 0.002, note="seed 5"), ev.PlanDrawn(plan))
    feed(ev.Progress(0.0, feed.elapsed, 60.0))
    for index in range(20):  # the first twenty leave at once
        feed.request(index)
    for index in range(16):  # all but four hear back within two seconds
        feed.at(0.9 + index * 0.05).first_token(feed.elapsed - 0.02, index)
    for tick in range(1, 13):  # six seconds of tokens, half a second at a time
        feed.at(1.8 + tick * 0.5)
        for index in range(16):
            tokens = tick * (18 + index % 5)
            feed(ev.TokenDelta("…", tokens, tokens / (feed.elapsed - 0.9), index))
            feed(ev.Progress(0.01 * tick, feed.elapsed, 60.0 - tick, min(tokens / 240, 0.95), index))
    for index, name in enumerate(BIG_NAMES):  # the first three are checked and saved; three more take their place
        feed(ev.StageFinished(Stage.STREAMING, feed.elapsed - 0.9, index))
        feed(ev.StageStarted(Stage.VALIDATING, "240 tokens", index), ev.StageFinished(Stage.VALIDATING, 0.004, index))
        feed(ev.StageStarted(Stage.SAVING, index=index), ev.StageFinished(Stage.SAVING, 0.02, index))
        record = saved_record(persona_dict(name, location="Łódź, Poland", occupation="Picker"), 240, 7.9)
        feed(ev.PersonaSaved(record, app.store.root / f"{record.id}.json", 7.9, 240, 34.0, index))
        feed.request(20 + index)
    for index in (3, 4):  # two being checked, two being saved
        feed(ev.StageFinished(Stage.STREAMING, feed.elapsed - 0.9, index))
        feed(ev.StageStarted(Stage.VALIDATING, "230 tokens", index))
    for index in (5, 6):
        feed(ev.StageFinished(Stage.STREAMING, feed.elapsed - 0.9, index), ev.StageStarted(Stage.SAVING, index=index))
    feed.at(8.4)
    for index in (16, 17, 18, 19):  # still silent since their request left: the slowest
        feed(ev.Heartbeat(feed.elapsed, feed.elapsed - 0.02, index))
    feed(ev.Progress(0.14, feed.elapsed, 44.0))
    feed.done()
    await settle(pilot)


def _twins() -> list[PersonaRecord]:
    """Five nurses of one run, two of them near-duplicates and one off its slot."""
    plan = draw_plan(GenerationRequest.create(POPULATION, 5), seed=5)
    stories = [
        "Runs a maternity ward in a county hospital and coaches a youth football team on Saturdays.",
        "Travels by motorbike between village clinics with a cool box of vaccines and a solar charger.",
        "Left banking to study nursing at thirty and now trains the new graduates on night shifts.",
        "Runs a maternity ward in a county hospital and coaches a youth football team on Saturdays.",
        "Keeps the dialysis unit going through power cuts and studies for a masters by phone.",
    ]
    names = ["Achieng Otieno", "Kiprono Langat", "Mary Wambui", "Grace Wanjiru", "Joseph Kamau"]
    records = []
    for i, (slot, story, name) in enumerate(zip(plan.slots, stories, names, strict=True)):
        fields = {
            "age": slot.age if i != 2 else slot.ages[0] - 9,
            "pronouns": slot.pronouns,
            "location": slot.location,
            "occupation": slot.occupation,
            "tech_savviness": slot.tech_savviness,
            "background": story,
            "quote": "The ward is mine at night." if i in (0, 3) else f"Every shift teaches me something ({i}).",
        }
        record = make_record(name, 40 - i, **fields)
        records.append(record.model_copy(update={"slot": slot, "run_id": "5" * 32}))
    return records


async def scene_report(pilot: Pilot[None]) -> None:
    """12. ctrl+d after a batch: the diversity report, a near-duplicate pair flagged, r offered."""
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, PersonaApp)
    app.last_report = diversity_report(_twins())
    app.last_description = POPULATION
    await pilot.press("ctrl+d")
    for _ in range(50):  # the report's worker waits on its screen: settle() would wait for it too
        await pilot.pause()
        if isinstance(app.screen, ReportScreen):
            break
    await pilot.pause()


async def _on_table(pilot: Pilot[None]) -> PersonaApp:
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, PersonaApp)
    app.table.focus()
    await pilot.pause()
    return app


async def _until(pilot: Pilot[None], screen: type) -> None:
    for _ in range(100):
        await pilot.pause()
        if isinstance(pilot.app.screen, screen):
            break
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    await pilot.pause()


async def scene_help(pilot: Pilot[None]) -> None:
    """13. F1 on the table: every key of the screen, grouped."""
    await _on_table(pilot)
    await pilot.press("f1")
    await _until(pilot, HelpScreen)


async def scene_edit_form(pilot: Pilot[None]) -> None:
    """14. e on a row: the edit form, an age out of range refused beside its field."""
    app = await _on_table(pilot)
    await pilot.press("e")
    await _until(pilot, EditScreen)
    app.screen.query_one("#age", Input).value = "200"
    await pilot.press("ctrl+s")
    await _until(pilot, EditScreen)


async def scene_refine_diff(pilot: Pilot[None]) -> None:
    """15. A refinement streamed in: the fields it changed, old → new, to accept (a) or discard (d)."""
    app = await _on_table(pilot)
    old = app.table.selected
    assert old is not None
    instruction = "more sceptical of AI, lives alone, less tech-savvy"
    new = old.with_change(refine_offline(old.persona, instruction), "refine", note=instruction)
    app.push_screen(DiffScreen(old, new, instruction))
    await _until(pilot, DiffScreen)


# ----- the catalogue -----


@dataclass(frozen=True)
class Scene:
    """One app state: how to build the app for it and how to get there."""

    name: str
    title: str
    run_before: Callable[[Pilot[None]], Awaitable[None]]
    records: bool = True
    offline: bool = False
    thinker: bool = False
    """The app's model is a local reasoning model rather than gpt-4o-mini."""


SCENES: dict[str, Scene] = {
    s.name: s
    for s in (
        Scene("first_run", "First run", scene_first_run, records=False),
        Scene("first_run_offline", "First run, offline generator", scene_first_run, records=False, offline=True),
        Scene("loaded", "Saved personas", scene_loaded),
        Scene("mid_stream", "Streaming a persona", scene_mid_stream),
        Scene("waiting_slow", "Waiting for the model", scene_waiting_slow),
        Scene("retry", "Rate limited, retrying", scene_retry),
        Scene("success", "Persona saved", scene_success),
        Scene("failure", "API key rejected", scene_failure),
        Scene("cancelled", "Cancelled", scene_cancelled),
        Scene("input_error", "Blank description", scene_input_error),
        Scene("batch", "A batch of three", scene_batch),
        Scene("thinking", "A reasoning model thinking", scene_thinking, thinker=True),
        Scene("plan", "A batch of 20 planned", scene_plan),
        Scene("big_batch", "A batch of 50, twenty in flight", scene_big_batch),
        Scene("report", "The diversity report", scene_report),
        Scene("help", "Help: the keys of the screen", scene_help),
        Scene("edit_form", "Editing a persona", scene_edit_form),
        Scene("refine_diff", "A refinement to accept or discard", scene_refine_diff),
    )
}


def app_for(scene: Scene, data_dir: Path) -> PersonaApp:
    records = sample_records() if scene.records else None
    provider = ThinkerProvider([Step(hang=True)]) if scene.thinker else None
    return build_app(data_dir, records=records, offline=scene.offline, provider=provider)
