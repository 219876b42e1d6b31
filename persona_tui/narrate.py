"""Every sentence a run is told in: one place that turns an event into words.

:func:`describe_event` turns one engine event into a :class:`Line` (a symbol,
the text, a :class:`Tone` and a :class:`Scope`), and the smaller functions
below word the states that the panel and the bars show between events. The
app's log writes ``Line.text``, the headless renderer maps the tone to a rich
style, and the panel draws from the same functions, so "Retrying in 4.0 s,
attempt 2 of 4" is written once. Where the front ends word a thing
differently on purpose (the key that cancels, the aligned columns of a
terminal), a :class:`Voice` says how.

Model and server text goes through :func:`one_line` before it is put in a
sentence. Nothing here builds markup, and nothing imports Textual or rich.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from persona_tui.batch_state import PER_PERSONA, QUIET_AFTER, Aggregate, Lane
from persona_tui.engine import events as ev
from persona_tui.engine.events import Stage
from persona_tui.models import Plan, Slot, Usage
from persona_tui.present import fmt_seconds, one_line

if TYPE_CHECKING:  # the report's module (and the plan's tables under it) loads only where a report is made
    from persona_tui.engine.diversity import DiversityReport, FieldSpread, PlanHeld, Repeat, SimilarPair

SHORT = {
    Stage.PREPARING: "Prep",
    Stage.ORGANIZATION: "Org",
    Stage.ENRICHING: "Enrich",
    Stage.PLANNING: "Plan",
    Stage.PROMPT: "Prompt",
    Stage.CALLING: "Call",
    Stage.THINKING: "Think",
    Stage.STREAMING: "Stream",
    Stage.VALIDATING: "Check",
    Stage.SAVING: "Save",
}
"""Stage names where room is short (the panel's one-row checklist and its batch rows)."""
STAGE_WORDS = {Stage.VALIDATING: "checking"}
"""A stage as a count of a big batch's personas in it says ("checking 2"); the others by their value ("calling 20")."""


class Tone(StrEnum):
    """What a line means, for a front end to colour."""

    INFO = "info"
    PROGRESS = "progress"
    OK = "ok"
    SUCCESS = "success"
    DIM = "dim"
    WARN = "warn"
    STOPPED = "stopped"
    ERROR = "error"
    HINT = "hint"
    """The advice under an error."""


class Scope(StrEnum):
    """Whom a line is about, so a front end can leave out what it shows another way."""

    RUN = "run"
    """The whole run (preparing, the context stages, cancelled, finished)."""
    PERSONA = "persona"
    """A milestone of one persona (saved, failed, a retry, a slow warning)."""
    LANE = "lane"
    """A step of one persona that a batch's per-persona bar already shows."""


@dataclass(frozen=True, slots=True)
class Line:
    symbol: str
    text: str
    """Already carries the persona's ``[2/5] `` in a batch, for per-persona lines."""
    tone: Tone
    scope: Scope = Scope.PERSONA
    note: str = ""
    """A second line to show under this one (a path, an error's hint), in :attr:`note_tone`."""
    note_tone: Tone = Tone.DIM


@dataclass(frozen=True, slots=True)
class Voice:
    """How one front end words what the others word differently."""

    cancel_key: str = "Esc"
    console: bool = False
    """A terminal's lines: stage times in a column, paths and hints on lines of their own,
    only the milestones of a stage announced."""
    waiting_for: str = ""
    """Whom a heartbeat names as silent; empty for "Still waiting: nothing for …"."""


APP = Voice()


APP_WORDS: tuple[tuple[str, str], ...] = (
    ("run with --provider offline", 'set provider = "offline" in the config file (or PERSONA_TUI_PROVIDER=offline)'),
    ("choose another model with --model", "choose another model with ctrl+l"),
    (
        "give the model by name with --model, PERSONA_TUI_MODEL or `model` in the config file",
        "set model in the config file (or PERSONA_TUI_MODEL)",
    ),
    ("give the model by name with --model", "set model in the config file (or PERSONA_TUI_MODEL)"),
    ("name the model with --model", "set model in the config file (or PERSONA_TUI_MODEL)"),
    ("--model or PERSONA_TUI_MODEL; `persona-tui models` lists them", "ctrl+l lists them"),
    ("with --data-dir (or PERSONA_TUI_DATA_DIR)", "with PERSONA_TUI_DATA_DIR or data_dir in the config file"),
    ("with --data-dir", "with PERSONA_TUI_DATA_DIR or data_dir in the config file"),
    ("raise --connect-timeout / the read timeouts", "raise connect_timeout or the read timeouts in the config file"),
    ("OPENAI_BASE_URL, --base-url", "OPENAI_BASE_URL, or base_url in the config file"),
)
"""The engine's hints name the CLI's flags; the app says what to do in the app instead."""


def app_hint(hint: str) -> str:
    """A hint in the app's words: each CLI flag it names replaced by what to set or press in the app."""
    for cli, app in APP_WORDS:
        index = hint.lower().find(cli.lower())
        while index >= 0:
            replacement = app[0].upper() + app[1:] if index == 0 or hint[index - 2 : index] == ". " else app
            hint = hint[:index] + replacement + hint[index + len(cli) :]
            index = hint.lower().find(cli.lower(), index + len(replacement))
    return hint


def console_voice(provider_label: str) -> Voice:
    """The headless CLI's voice: Ctrl-C cancels there."""
    return Voice(cancel_key="Ctrl-C", console=True, waiting_for=provider_label)


@dataclass(frozen=True, slots=True)
class _Say:
    """What every event's wording may need beside the event."""

    count: int
    voice: Voice
    lane: Lane | None

    def tag(self, index: int) -> str:
        return f"[{index + 1}/{self.count}] " if self.count > 1 and index >= 0 else ""


def describe_event(event: ev.Event, count: int, voice: Voice = APP, *, lane: Lane | None = None) -> Line | None:
    """The line an event adds to a log, or None for events drawn another way (tokens, progress).

    ``lane`` is the persona's state after the event was folded in, for what the event
    itself does not carry (how many tokens the model thought).
    """
    words = _WORDS.get(type(event))
    return words(event, _Say(count, voice, lane)) if words is not None else None


# ----- sentences shared with the panel and the bars -----


def slow_sentence(threshold: float, voice: Voice = APP) -> str:
    key = f"; {voice.cancel_key} cancels" if voice.console else f". {voice.cancel_key} cancels."
    return f"Slower than usual: past {fmt_seconds(threshold)}{key}"


def retry_sentence(event: ev.Retrying, countdown: float | None = None) -> str:
    """ "… Retrying in 4.0 s, attempt 2 of 4", or with a live ``countdown`` "… Retrying, attempt 2 of 4 in 3 s"."""
    turn = f"attempt {event.attempt} of {event.max_attempts}"
    if countdown is not None:
        return f"{one_line(event.reason)} Retrying, {turn} in {countdown:.0f} s"
    wait = f"Retrying in {fmt_seconds(event.delay)}" if event.delay > 0 else "Retrying"
    return f"{one_line(event.reason)} {wait}, {turn}"


def saved_summary(event: ev.PersonaSaved, *, full: bool = False) -> str:
    """ "Ana Nowak in 6.6 s, 220 tokens, 38 tok/s"; ``full`` adds the age and the occupation."""
    p = event.record.persona
    who = one_line(f"{p.name} ({p.age}, {p.occupation})" if full else p.name)
    reasoning = event.usage.reasoning_tokens if event.usage is not None else 0
    thought = f" ({reasoning} reasoning)" if reasoning else ""
    rate = f", {event.tokens_per_second:.0f} tok/s" if event.tokens_per_second >= 0.5 else ""  # none: not streamed
    speed = f"{event.tokens} tokens{thought}{rate}"
    return f"{who} in {fmt_seconds(event.seconds)}, {speed}"


def finished_summary(summary: ev.Summary, count: int, *, tokens: bool = False) -> str:
    """ "3 of 5 saved in 41.2 s, 2 failed" (with the tokens spent, for a notification); personas that
    never started are told apart: "0 of 3 saved in 0.4 s, 1 failed, 2 not started"."""
    spent = f", {summary.tokens} tokens" if tokens else ""
    failed_count = summary.failed - summary.not_started
    failed = f", {failed_count} failed" if failed_count else ""
    not_started = f", {summary.not_started} not started" if summary.not_started else ""
    saved = len(summary.saved) + summary.already
    now = f" ({len(summary.saved)} now)" if summary.already else ""  # a resumed run: the rest were saved before
    return f"{saved} of {count} saved in {fmt_seconds(summary.seconds)}{now}{spent}{failed}{not_started}"


def cancelled_sentence(event: ev.Cancelled, count: int, *, always_count: bool = False) -> str:
    if event.discarded:
        return f"Revision discarded after {fmt_seconds(event.elapsed)}; nothing saved"
    kept = f"; {len(event.saved)} of {count} saved" if count > 1 or always_count else ""
    return f"Cancelled after {fmt_seconds(event.elapsed)}{kept}"


def usage_sentence(usage: Usage) -> str:
    reasoning = f" ({usage.reasoning_tokens} reasoning)" if usage.reasoning_tokens else ""
    return f"Usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens{reasoning}"


def streaming_status(tokens: int, rate: float) -> str:
    return f"Streaming: {tokens} tokens" + (f", {rate:.0f} tok/s" if rate else "")


def thinking_status(tokens: int, seconds: float | None = None, *, rate: float = 0.0, detail: str = "") -> str:
    """ "Thinking: 812 tokens, 58 tok/s, 14 s"; with a ``detail`` (the model hides its reasoning)
    "Thinking (hidden by the model), 12 s", or with the server's count "… (hidden by the model): 812 tokens, 12 s"."""
    if detail:
        words = f"Thinking ({one_line(detail)})" + (f": {tokens} tokens" if tokens else "")
    else:
        words = f"Thinking: {tokens} tokens" + (f", {rate:.0f} tok/s" if rate else "")
    return words + (f", {seconds:.0f} s" if seconds is not None else "")


def reasoning_rate(tokens: int, seconds: float) -> float:
    """Reasoning tokens a second, once there is enough time to say (0 before half a second)."""
    return tokens / seconds if seconds >= 0.5 else 0.0


def lane_thinking(lane: Lane, now: float | None = None) -> str:
    """A persona's thinking, its seconds on the clock ``now`` when given (else as last reported)."""
    seconds = lane.reasoning_seconds
    if now is not None and lane.thinking_since is not None:
        seconds = max(seconds, now - lane.thinking_since)
    rate = reasoning_rate(lane.reasoning_tokens, lane.reasoning_seconds)
    return thinking_status(lane.reasoning_tokens, seconds, rate=rate, detail=lane.thinking_detail)


def stage_done(name: str, seconds: float, tokens: int = 0, *, tall: bool = True) -> str:
    """A finished stage in the checklist: "Model thinking 12.3 s, 310 reasoning tokens" ("Think 12.3 s, 310 tok")."""
    count = (f", {tokens} reasoning tokens" if tall else f", {tokens} tok") if tokens else ""
    return f"{name} {fmt_seconds(seconds)}{count}"


def folded_thinking(tokens: int, key: str) -> str:
    """The log's one line for reasoning it does not show: "Model thinking… (812 tokens, folded: ctrl+r shows)"."""
    return f"Model thinking… ({tokens} tokens, folded: {key} shows)"


def thinking_fold_sentence(shown: bool, key: str) -> str:
    """What the fold key just did."""
    if shown:
        return f"The model's thinking is shown in the log; {key} folds it."
    return f"The model's thinking is folded in the log; {key} shows it."


def step_sentence(event: ev.Retrying) -> str:
    """A step that suited the request to the server, as the server's refusal was put: one sentence, no retry."""
    return one_line(event.reason)


def waiting_status(idle: float, timeout: float = 0.0) -> str:
    """ "Waiting for the model: 9 s", and before the first token "…, gives up in 21 s" when the limit is known."""
    gives_up = f", gives up in {max(timeout - idle, 0):.0f} s" if timeout else ""
    return f"Waiting for the model: {idle:.0f} s{gives_up}"


def batch_status(
    count: int, saved: int, failed: int, in_flight: int, *, console: bool = False, done: str = "saved"
) -> str:
    if console:
        return f"{saved} of {count} {done}, {in_flight} in flight"
    failures = f", {failed} failed" if failed else ""
    return f"Generating {count} personas: {saved} saved{failures}, {in_flight} in flight"


def plain_progress(words: str, seconds: float) -> str:
    """A progress line for a stderr that is not a terminal (no bars there): "Streaming: 212 tokens, 48 tok/s, 6 s"."""
    return f"{words}, {seconds:.0f} s"


def lane_brief(lane: Lane, now: float) -> str:
    """A batch row in the panel, where room is short: "182 tok, 41/s", "waiting 4 s", "Check"."""
    if lane.stage is Stage.STREAMING:
        return f"{lane.tokens} tok" + (f", {lane.rate:.0f}/s" if lane.rate else "")
    if lane.stage is Stage.THINKING:
        if lane.thinking_detail and lane.thinking_since is not None:  # hidden: only its time to show
            return f"thinking {now - lane.thinking_since:.0f} s"
        return f"thinking {lane.reasoning_tokens} tok"
    if lane.stage is Stage.CALLING and lane.waiting_since is not None:
        return f"waiting {now - lane.waiting_since:.0f} s"
    return SHORT.get(lane.stage, lane.stage.label)


def stage_counts(aggregate: Aggregate, *, short: bool = False) -> str:
    """How many personas are in each stage: "calling 20 · thinking 8 · streaming 30 · saving 2", or where
    room is short "call 20 · think 8 · stream 30 · save 2"."""

    def word(stage: Stage) -> str:
        return SHORT[stage].lower() if short else STAGE_WORDS.get(stage, stage.value)

    return " · ".join(f"{word(stage)} {n}" for stage, n in aggregate.stages)


def aggregate_line(aggregate: Aggregate, *, short: bool = False) -> str:
    """A big batch's personas in flight in one line: their tokens a second summed, then how many are in
    each stage: "1,840 tok/s · calling 20 · thinking 8 · streaming 30 · saving 2"."""
    rate = f"{aggregate.rate:,.0f} tok/s" if aggregate.rate else ""
    return " · ".join(part for part in (rate, stage_counts(aggregate, short=short)) if part)


def slowest_heading(shown: int, in_flight: int) -> str:
    """Above a big batch's few rows: "Slowest 3 of 20 in flight"."""
    return f"Slowest {shown} of {in_flight} in flight"


def silence(lane: Lane, now: float) -> float:
    """Seconds since the persona's last sign of life, 0 until it counts (:data:`QUIET_AFTER`)."""
    silent = now - lane.heard if lane.heard is not None else 0.0
    return silent if silent > QUIET_AFTER else 0.0


def slow_lane_brief(lane: Lane, now: float) -> str:
    """A slow persona's row in the panel: its brief, and how long it has been silent when it has.
    A wait for the first token already counts its seconds."""
    brief = lane_brief(lane, now)
    quiet = silence(lane, now)
    if not quiet or (lane.stage is Stage.CALLING and lane.waiting_since is not None):
        return brief
    return f"{brief}, silent {quiet:.0f} s"


def slow_lane_status(lane: Lane, now: float) -> str:
    """A slow persona's bar on a terminal: its words, with the seconds it has been silent counted on
    between heartbeats ("Waiting for the model: 12 s, gives up in 18 s")."""
    quiet = silence(lane, now)
    if not quiet or lane.idle is not None or lane.stage is Stage.THINKING:
        return lane_status(lane, now=now)
    if lane.stage is Stage.CALLING and lane.waiting_since is not None:
        return waiting_status(now - lane.waiting_since, lane.timeout)
    return f"{lane_status(lane, now=now)}, silent {quiet:.0f} s"


def lane_status(lane: Lane, *, idle: bool = True, now: float | None = None) -> str:
    """A terminal bar's words for one persona; ``idle`` shows the last heartbeat's silence (and before
    the first token how long until the wait gives up); ``now`` keeps a thinking model's clock."""
    if lane.stage is Stage.THINKING:
        return lane_thinking(lane, now)
    if idle and lane.idle is not None:
        return waiting_status(lane.idle, lane.timeout if lane.stage is Stage.CALLING else 0.0)
    if lane.stage is Stage.STREAMING and lane.tokens:
        return streaming_status(lane.tokens, lane.rate)
    if lane.model:
        return f"Waiting for {lane.model}"
    return lane.stage.label


def waiting_hint(
    stage: Stage | None, idle: float, count: int, predicted: float | None, first: float, timeout: float = 0.0
) -> Line | None:
    """The panel's hint while a request or the next token is awaited, if there is one; ``timeout`` (the
    seconds the request may wait for its first token) turns a silent wait into a countdown."""
    if stage is Stage.CALLING and idle < 3:
        usual = ""
        if predicted:
            scope = "for this model" if count == 1 else "for the batch"
            usual = f"usually ~{fmt_seconds(predicted)} {scope}; "
        return Line("", f"Request sent: {usual}first token in ~{fmt_seconds(first)}", Tone.DIM, Scope.LANE)
    if idle >= 3 and stage is Stage.CALLING and timeout:
        left = max(timeout - idle, 0)
        return Line("…", f"no first token after {idle:.0f} s: gives up in {left:.0f} s", Tone.WARN, Scope.LANE)
    if idle >= 3:
        what = "the model" if stage is Stage.CALLING else "the next token"
        return Line("…", f"still waiting for {what}, {idle:.0f} s", Tone.WARN, Scope.LANE)
    return None


def outcome_line(event: ev.PersonaSaved | ev.Failed | ev.Cancelled | ev.Finished, count: int) -> Line:
    """How the panel says a run (or its latest persona) ended."""
    match event:
        case ev.PersonaSaved():
            return Line("✔", f"Saved {saved_summary(event)}", Tone.SUCCESS)
        case ev.Failed(message=message, hint=hint):
            return Line("✘", message, Tone.ERROR, note=app_hint(hint), note_tone=Tone.HINT)
        case ev.Cancelled():
            return Line("■", cancelled_sentence(event, count), Tone.STOPPED, Scope.RUN)
        case ev.Finished(summary=summary):
            ok = summary.ok
            return Line("✔" if ok else "■", finished_summary(summary, count), Tone.SUCCESS if ok else Tone.STOPPED)


# ----- the population plan -----


def slot_summary(slot: Slot) -> str:
    """One slot in a line: "43 · she/her · Kisumu, Kenya · Ward Nurse · basic · parent"."""
    parts = [str(slot.age), slot.pronouns, slot.location or "any place", slot.occupation or "any job"]
    parts += [slot.tech_savviness, slot.life_stage]
    return one_line(" · ".join(parts))


def _counted(values: Sequence[str], most: int = 6) -> str:
    """ "Nairobi 3, Mombasa 3, Kisumu 2, +4 more": values by how often they come, the most frequent first."""
    counts = Counter(values)
    shown = [f"{value} {n}" for value, n in counts.most_common(most)]
    more = f", +{len(counts) - most} more" if len(counts) > most else ""
    return one_line(", ".join(shown) + more)


def plan_lines(plan: Plan) -> list[str]:
    """The plan as a small table, one row a dimension: what each value gets, and where it came from."""
    slots = plan.slots
    warnings = [f"  ! {one_line(warning)}" for warning in plan.warnings]
    if len(slots) == 1:
        return [f"  slot         {slot_summary(slots[0])}", *warnings]
    src = plan.sources
    ages = sorted(slot.age for slot in slots)
    decades = Counter(f"{age // 10 * 10}s" for age in ages)
    rows = [
        ("ages", f"{ages[0]}-{ages[-1]}: " + ", ".join(f"{d} {n}" for d, n in sorted(decades.items())), "ages"),
        ("pronouns", _counted([slot.pronouns for slot in slots]), "pronouns"),
        ("places", _counted([_town(slot.location) for slot in slots]), "places"),
        ("occupations", _counted([slot.occupation or "writer's choice" for slot in slots], 4), "occupations"),
        ("tech", _counted([slot.tech_savviness for slot in slots]), "tech"),
        ("life stages", _counted([slot.life_stage for slot in slots]), "stages"),
    ]
    lines = []
    for name, values, key in rows:
        where = f"  ({src[key]})" if key in src and "your mix" in src[key] else ""
        lines.append(f"  {name:<12} {values}{where}")
    for field, value in plan.mix.pins.items():
        lines.append(f"  {'pinned':<12} {field} = {one_line(value)}")
    return lines + warnings


def _town(location: str | None) -> str:
    return location.removeprefix("Rural area near ").split(",")[0] if location else "writer's choice"


def event_details(event: ev.Event) -> list[str]:
    """Lines to show under an event's own line: the plan's table, the diversity report."""
    if isinstance(event, ev.PlanDrawn):
        if len(event.plan.slots) == 1:  # one slot is said in its own line
            return [f"  ! {one_line(warning)}" for warning in event.plan.warnings]
        return plan_lines(event.plan)
    if isinstance(event, ev.DiversityReported):
        return report_lines(event.report)
    return []


# ----- one function per event type -----


def _stage_started(event: ev.StageStarted, say: _Say) -> Line | None:
    stage, detail = event.stage, event.detail
    if say.voice.console:
        if stage in (Stage.PREPARING, Stage.ENRICHING) or (event.index < 0 and detail):  # < 0: a Batch API batch
            return Line("›", one_line(detail), Tone.PROGRESS, Scope.RUN)
        if stage is Stage.THINKING:
            why = f" ({one_line(detail)})" if detail else ""
            return Line("›", f"{say.tag(event.index)}{stage.label}{why}", Tone.PROGRESS, Scope.LANE)
        return None
    if stage not in PER_PERSONA:
        return Line("›", f"{stage.label}… {detail}", Tone.PROGRESS, Scope.RUN)
    shown = f" {detail}" if detail and stage is not Stage.STREAMING else ""
    return Line("›", f"{say.tag(event.index)}{stage.label}…{shown}", Tone.PROGRESS, Scope.LANE)


def _stage_finished(event: ev.StageFinished, say: _Say) -> Line:
    stage, note = event.stage, event.note
    if not note and stage is Stage.THINKING and say.lane is not None and say.lane.reasoning_tokens:
        note = f"{say.lane.reasoning_tokens} tokens"
    per_persona = stage in PER_PERSONA
    prefix = say.tag(event.index) if per_persona else ""
    scope = Scope.LANE if per_persona else Scope.RUN
    took = fmt_seconds(event.seconds)
    if say.voice.console:
        found = f"  {one_line(note)}" if note else ""
        return Line("✓", f"{prefix}{stage.label:<30} {took}{found}", Tone.OK, scope)
    found = f" ({one_line(note)})" if note else ""
    return Line("✓", f"{prefix}{stage.label}: done in {took}{found}", Tone.OK, scope)


def _stage_skipped(event: ev.StageSkipped, say: _Say) -> Line:
    label, reason = event.stage.label, one_line(event.reason)
    text = f"{label:<30} skipped: {reason}" if say.voice.console else f"{label}: skipped ({reason})"
    return Line("–", text, Tone.DIM, Scope.RUN)


def _request_sent(event: ev.RequestSent, say: _Say) -> Line:
    sent = f"Request sent to {event.model} at {event.endpoint}"
    if say.voice.console:
        sent += f"; first token usually in ~{fmt_seconds(event.expected_first_token)}"
    elif event.attempt > 1:
        sent += f" (attempt {event.attempt})"
    return Line("→", say.tag(event.index) + sent, Tone.PROGRESS, Scope.LANE)


def _first_token(event: ev.FirstToken, say: _Say) -> Line:
    return Line("✓", f"{say.tag(event.index)}First token after {fmt_seconds(event.seconds)}", Tone.OK, Scope.LANE)


def _heartbeat(event: ev.Heartbeat, say: _Say) -> Line:
    if say.lane is not None and say.lane.stage is Stage.THINKING:  # thinking in hidden is no silence
        text = f"{say.tag(event.index)}Still thinking: nothing shown for {fmt_seconds(event.idle)}"
        return Line("…", text, Tone.PROGRESS, Scope.LANE)
    who = f" for {say.voice.waiting_for}" if say.voice.waiting_for else ""
    text = f"{say.tag(event.index)}Still waiting{who}: nothing for {fmt_seconds(event.idle)}"
    return Line("…", text, Tone.WARN, Scope.LANE)


def _slow(event: ev.SlowWarning, say: _Say) -> Line:
    return Line("!", say.tag(event.index) + slow_sentence(event.threshold, say.voice), Tone.WARN)


def _retrying(event: ev.Retrying, say: _Say) -> Line:
    if event.adapted:  # a step, not a fault: no countdown, no attempt used
        return Line("↷", say.tag(event.index) + step_sentence(event), Tone.PROGRESS)
    return Line("↻", say.tag(event.index) + retry_sentence(event), Tone.WARN)


def _usage(event: ev.UsageReported, say: _Say) -> Line:
    return Line("·", say.tag(event.index) + usage_sentence(event.usage), Tone.DIM)


def _notice(event: ev.ServerNotice, say: _Say) -> Line:
    if not event.from_server:  # our own sentence about the server, already in our words
        return Line("›", f"{say.tag(event.index)}{one_line(event.text)}", Tone.INFO)
    return Line("!", f"{say.tag(event.index)}The server says: {one_line(event.text)}", Tone.WARN)


def _saved(event: ev.PersonaSaved, say: _Say) -> Line:
    tag = say.tag(event.index)
    if say.voice.console:
        return Line("✔", f"{tag}Saved {saved_summary(event, full=True)}", Tone.SUCCESS, note=str(event.path))
    return Line("✔", f"{tag}Saved {saved_summary(event)} → {event.path.name}", Tone.SUCCESS)


def _failed(event: ev.Failed, say: _Say) -> Line:
    tag = say.tag(event.index)
    if say.voice.console:
        return Line("✘", f"{tag}{event.message}", Tone.ERROR, note=event.hint, note_tone=Tone.HINT)
    return Line("✘", f"{tag}Failed ({event.kind}): {event.message} {app_hint(event.hint)}", Tone.ERROR)


def _plan_drawn(event: ev.PlanDrawn, say: _Say) -> Line:
    plan = event.plan
    if len(plan.slots) == 1:
        return Line("◇", f"Slot: {slot_summary(plan.slots[0])}", Tone.INFO, Scope.RUN)
    return Line("◇", f"Population plan for {len(plan.slots)} personas:", Tone.INFO, Scope.RUN)


def _slot_broken(event: ev.SlotBroken, say: _Say) -> Line:
    text = f"{say.tag(event.index)}Kept, though off its slot: {one_line('; '.join(event.breaks))}"
    return Line("!", text, Tone.WARN)


def _near_duplicate(event: ev.NearDuplicate, say: _Say) -> Line:
    like = f"Reads like {one_line(event.other)} ({event.similarity:.2f} similar)"
    if event.kept:
        return Line("≈", f"{say.tag(event.index)}{like}; kept, the report flags it", Tone.WARN)
    return Line("≈", f"{say.tag(event.index)}{like}; writing someone else, once", Tone.WARN)


def _replaced(event: ev.PersonaReplaced, say: _Say) -> Line:
    new, old = one_line(event.new.persona.name), one_line(event.old.persona.name)
    return Line("↺", f"{say.tag(event.index)}{new} replaces {old}, whose file is removed", Tone.SUCCESS)


def _diversity(event: ev.DiversityReported, say: _Say) -> Line:
    return Line("◆", report_summary(event.report), Tone.INFO, Scope.RUN)


def _cancelled(event: ev.Cancelled, say: _Say) -> Line:
    return Line("■", cancelled_sentence(event, say.count, always_count=say.voice.console), Tone.STOPPED, Scope.RUN)


def _finished(event: ev.Finished, say: _Say) -> Line | None:
    summary = event.summary
    if summary.cancelled or (say.count == 1 and (say.voice.console or not summary.saved)):
        return None  # a single persona's saved or failed line already said it; a cancelled run said so
    done = finished_summary(summary, say.count)
    if say.voice.console:
        return Line("✔" if summary.ok else "■", done, Tone.INFO, Scope.RUN)
    return Line("✔" if summary.ok else "■", f"Finished: {done}", Tone.INFO, Scope.RUN)


def answered_summary(event: ev.AnswerDone) -> str:
    """ "Amina Otieno answered in 3.1 s, 120 tokens, 40 tok/s"."""
    speed = f", {event.tokens} tokens, {event.tokens_per_second:.0f} tok/s" if event.tokens_per_second else ""
    return f"{one_line(event.name) or 'The persona'} answered in {fmt_seconds(event.seconds)}{speed}"


def flags_sentence(flags: Sequence[str]) -> str:
    """The rule pass's findings in one line (model text in them is made one line)."""
    return "Out of character? " + "; ".join(one_line(flag) for flag in flags)


def talk_summary(event: ev.TalkFinished) -> str:
    """ "5 of 5 answered in 4.2 s", "3 of 5 answered in 9.0 s, 1 failed, 1 stopped"."""
    stopped = event.count - event.answered - event.failed
    failed = f", {event.failed} failed" if event.failed else ""
    kept = f", {stopped} stopped (what arrived is kept)" if stopped else ""
    return f"{event.answered} of {event.count} answered in {fmt_seconds(event.seconds)}{failed}{kept}"


def _answered(event: ev.AnswerDone, say: _Say) -> Line:
    note = flags_sentence(event.flags) if event.flags else ""
    return Line("✔", f"{say.tag(event.index)}{answered_summary(event)}", Tone.SUCCESS, note=note, note_tone=Tone.WARN)


def _talk_finished(event: ev.TalkFinished, say: _Say) -> Line | None:
    if event.count == 1 and not event.cancelled:
        return None  # the answer's own line (or its failure's) said it
    if event.count == 1:
        return Line("■", f"Stopped after {fmt_seconds(event.seconds)}; what arrived is kept", Tone.STOPPED, Scope.RUN)
    return Line("✔" if event.ok else "■", talk_summary(event), Tone.INFO, Scope.RUN)


_WORDS: dict[type, Callable[[Any, _Say], Line | None]] = {
    ev.StageStarted: _stage_started,
    ev.StageFinished: _stage_finished,
    ev.StageSkipped: _stage_skipped,
    ev.RequestSent: _request_sent,
    ev.FirstToken: _first_token,
    ev.Heartbeat: _heartbeat,
    ev.SlowWarning: _slow,
    ev.Retrying: _retrying,
    ev.UsageReported: _usage,
    ev.ServerNotice: _notice,
    ev.PersonaSaved: _saved,
    ev.Failed: _failed,
    ev.Cancelled: _cancelled,
    ev.Finished: _finished,
    ev.PlanDrawn: _plan_drawn,
    ev.SlotBroken: _slot_broken,
    ev.NearDuplicate: _near_duplicate,
    ev.DiversityReported: _diversity,
    ev.PersonaReplaced: _replaced,
    ev.AnswerDone: _answered,
    ev.TalkFinished: _talk_finished,
}


# ----- the diversity report -----

REPORT_WIDTH = 80
"""The report's lines fit a terminal this wide (model text in them is cut with "…")."""
_LABEL = 11
_INDENT = " " * (2 + _LABEL + 2)
_LISTED = 3
"""Broken slots and near-duplicate pairs named one a line before "and N more"."""
_SPREADS: tuple[tuple[str, str, str], ...] = (
    ("age", "ages", "decade"),
    ("pronouns", "pronouns", "kind"),
    ("occupation", "occupations", "title"),
    ("tech_savviness", "tech", "level"),
    ("life_stage", "life stages", "stage"),
)
"""A field of the report, the label it gets, and what one of its values is called."""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _fit(text: str, width: int = REPORT_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _row(label: str, text: str) -> str:
    return _fit(f"  {label:<{_LABEL}}  {text}")


def _spread_words(spread: FieldSpread, unit: str) -> str:
    words = f"{_plural(spread.distinct, unit)}, spread {spread.entropy:.2f}"
    if spread.distinct > 1 and spread.top_count > 1:
        words += _most(spread)
    return words


def _places_words(report: DiversityReport) -> str | None:
    towns, countries = report.spread("town"), report.spread("country")
    if towns is None or countries is None or not towns.counted:
        return None
    lands = f"{countries.distinct} countries" if countries.distinct != 1 else "1 country"
    words = f"{_plural(towns.distinct, 'town')} in {lands}"
    words += f", spread {towns.entropy:.2f}"
    if towns.distinct > 1 and towns.top_count > 1:
        words += _most(towns)
    return words


def _most(spread: FieldSpread) -> str:
    """ ", most Kisumu (4)", or with others as common ", most Kisumu and 2 more (2 each)"."""
    if spread.tied:
        return f", most {one_line(spread.top)} and {spread.tied} more ({spread.top_count} each)"
    return f", most {one_line(spread.top)} ({spread.top_count})"


def _plan_lines(plan: PlanHeld) -> list[str]:
    held = f"{plan.held} of {plan.planned} held " + ("its slot" if plan.planned == 1 else "their slot")
    if not plan.broken:
        return [_row("plan", f"{held}, none broke it")]
    lines = [_row("plan", f"{held}; {plan.broke} broke it:")]
    for broken in plan.broken[:_LISTED]:
        lines.append(_fit(f"{_INDENT}{one_line(broken.name)}: {'; '.join(one_line(b) for b in broken.breaks)}"))
    if plan.broke > _LISTED:
        lines.append(f"{_INDENT}and {plan.broke - _LISTED} more")
    return lines


def _pair_words(pair: SimilarPair) -> str:
    return f"{pair.similarity:.2f} {one_line(pair.a_name)} ~ {one_line(pair.b_name)}"


def _pair_lines(report: DiversityReport) -> list[str]:
    if report.count < 2:
        return [_row("nearest", "needs two personas or more")]
    at = f"{report.threshold:.2f}"
    flagged = report.near_duplicates
    if not flagged:
        nearest = report.nearest
        words = _pair_words(nearest) if nearest is not None else "no two personas share a word"
        return [_row("nearest", words), _row("near-dups", f"none at {at} or above")]
    lines = [_row("near-dups", f"{_plural(len(flagged), 'near-duplicate pair')} at {at} or above:")]
    lines += [_fit(_INDENT + _pair_words(pair)) for pair in flagged[:_LISTED]]
    if len(flagged) > _LISTED:
        lines.append(f"{_INDENT}and {len(flagged) - _LISTED} more")
    return lines


def _repeat_words(repeats: Sequence[Repeat], quoted: bool) -> str:
    """ "no repeats", or "3 repeated, most 4 times: “…”" (the count first: a long quote is cut, not the count)."""
    if not repeats:
        return "no repeats"
    worst = repeats[0]
    value = f"“{one_line(worst.value)}”" if quoted else one_line(worst.value)
    return f"{len(repeats)} repeated, most {worst.count} times: {value}"


def _repeat_lines(report: DiversityReport) -> list[str]:
    if not report.repeated_names and not report.repeated_quotes:
        return [_row("repeats", "no name or quote repeated")]
    return [
        _row("names", _repeat_words(report.repeated_names, quoted=False)),
        _row("quotes", _repeat_words(report.repeated_quotes, quoted=True)),
    ]


def report_lines(report: DiversityReport) -> list[str]:
    """The diversity report as lines of at most :data:`REPORT_WIDTH` characters, for stderr and the app's log."""
    if report.count == 0:
        return ["Diversity: no personas to report on"]
    lines = [f"Diversity of {_plural(report.count, 'persona')}"]
    for field, label, unit in _SPREADS:
        spread = report.spread(field)
        if spread is not None and spread.counted:
            lines.append(_row(label, _spread_words(spread, unit)))
        if field == "pronouns" and (places := _places_words(report)):
            lines.append(_row("places", places))
    if report.plan is not None:
        lines += _plan_lines(report.plan)
    lines += _pair_lines(report)
    lines += _repeat_lines(report)
    if report.approximate:
        lines.append(_row("note", "large batch: a pair sharing only common words may be missing"))
    return lines


def report_summary(report: DiversityReport) -> str:
    """The report in one line, for a notification: what needs a look first, or that nothing does."""
    if report.count == 0:
        return "Diversity: no personas to report on"
    issues = []
    if report.near_duplicates:
        issues.append(f"{_plural(len(report.near_duplicates), 'near-duplicate pair')} (≥ {report.threshold:.2f})")
    if report.plan is not None and report.plan.broke:
        issues.append(f"{report.plan.broke} of {report.plan.planned} broke their slot")
    if report.repeated_names:
        issues.append(_plural(len(report.repeated_names), "name") + " repeated")
    if report.repeated_quotes:
        issues.append(_plural(len(report.repeated_quotes), "quote") + " repeated")
    head = f"Diversity of {_plural(report.count, 'persona')}: "
    if issues:
        return head + ", ".join(issues)
    nearest = report.nearest
    closest = f", nearest pair {nearest.similarity:.2f}" if nearest is not None else ""
    return head + f"no near-duplicates{closest}" + (", plan held" if report.plan is not None else "")
