"""The batch state and the describer, driven by hand-made events: no app, no terminal, no clock.

These are the pure halves of the front ends (``persona_tui.batch_state`` folds
events into what the panel and the bars draw, ``persona_tui.narrate`` words
them), so each rule is checked here in microseconds.
"""

from __future__ import annotations

from pathlib import Path

from persona_tui.batch_state import CHECKLIST, BatchState
from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.events import Stage
from persona_tui.models import Usage
from persona_tui.narrate import (
    APP,
    Scope,
    Tone,
    console_voice,
    describe_event,
    folded_thinking,
    lane_brief,
    lane_status,
    outcome_line,
    stage_done,
    thinking_status,
    waiting_hint,
)
from tests.conftest import make_record

CLI = console_voice("gpt-4o-mini at api.openai.com")


def fold(state: BatchState, *events: ev.Event, at: float = 0.0) -> BatchState:
    for event in events:
        state.apply(event, at)
    return state


def thinking_run() -> BatchState:
    """A reasoning model's single persona, up to the first answer token."""
    return fold(
        BatchState.begin(1, 0.0),
        ev.StageStarted(Stage.PROMPT),
        ev.StageFinished(Stage.PROMPT, 0.003),
        ev.StageStarted(Stage.CALLING, "gpt-5 at api.openai.com"),
        ev.RequestSent("gpt-5", "api.openai.com", 1, 1.2),
        ev.FirstToken(0.8),
        ev.StageFinished(Stage.CALLING, 0.8),
        ev.StageStarted(Stage.THINKING),
        ev.ReasoningDelta("Let me think", 3, 0.4),
        ev.ReasoningDelta(" about nurses", 812, 12.0),
    )


# ----- the reducer -----


def test_a_model_that_does_not_think_lists_no_thinking_stage() -> None:
    state = fold(BatchState.begin(1, 0.0), ev.StageStarted(Stage.PROMPT), ev.StageStarted(Stage.CALLING))
    assert state.checklist() == list(CHECKLIST)
    assert Stage.THINKING not in state.checklist()


def test_thinking_joins_the_checklist_after_calling_and_counts_its_tokens() -> None:
    state = thinking_run()
    shown = state.checklist()
    assert shown[shown.index(Stage.CALLING) + 1] is Stage.THINKING
    assert state.stage is Stage.THINKING and state.stages[Stage.THINKING].status == "active"
    assert state.reasoning_tokens == 812 and state.lanes[0].reasoning_tokens == 812
    assert state.waiting_since is None, "reasoning is a sign of life: no 'still waiting' hint"
    fold(state, ev.StageFinished(Stage.THINKING, 12.3), ev.StageStarted(Stage.STREAMING))
    assert state.stages[Stage.THINKING].status == "done" and state.stages[Stage.THINKING].seconds == 12.3
    assert state.thinking_since is None


def test_a_new_persona_starts_its_stages_over_and_drops_thinking() -> None:
    state = thinking_run()
    fold(state, ev.StageStarted(Stage.PROMPT, index=1))
    assert state.index == 1
    assert all(state.stages[s].status == "pending" for s in CHECKLIST[CHECKLIST.index(Stage.PROMPT) + 1 :])
    assert Stage.THINKING not in state.stages


def test_tokens_update_the_run_and_the_lane_and_mark_when_the_last_one_came() -> None:
    state = fold(BatchState.begin(2, 0.0), ev.StageStarted(Stage.CALLING, index=1))
    state.apply(ev.RequestSent("m", "e", 1, 1.0, 1), 1.0)
    assert state.lanes[1].waiting_since == 1.0 and state.lanes[1].model == "m"
    state.apply(ev.TokenDelta("{", 7, 30.0, 1), 2.5)
    lane = state.lanes[1]
    assert (state.tokens, state.rate, state.waiting_since) == (7, 30.0, 2.5)
    assert (lane.tokens, lane.rate, lane.waiting_since, lane.model) == (7, 30.0, None, "m")


def test_progress_never_goes_backwards_and_predicts_the_total() -> None:
    state = fold(BatchState.begin(2, 0.0), ev.StageStarted(Stage.PROMPT, index=0))
    fold(state, ev.Progress(0.4, 4.0, 6.0, 0.5, 0), ev.Progress(0.3, 5.0, None, 0.2, 0))
    assert state.fraction == 0.4 and state.lanes[0].fraction == 0.5
    assert state.predicted_total == 10.0, "an unknown ETA keeps the last prediction"


def test_batch_wide_stages_make_no_lane_and_lanes_end_when_saved_or_failed() -> None:
    record = make_record("Ana Nowak", 0)
    state = fold(
        BatchState.begin(3, 0.0),
        ev.StageStarted(Stage.PREPARING),
        ev.StageStarted(Stage.ENRICHING, "searching"),
        ev.StageStarted(Stage.PROMPT, index=0),
        ev.StageStarted(Stage.PROMPT, index=1),
    )
    assert sorted(state.lanes) == [0, 1]
    fold(
        state,
        ev.PersonaSaved(record, Path("a.json"), 2.0, 100, 50.0, 0),
        ev.Failed(FailureKind.TIMEOUT, "Timed out.", "", 1),
    )
    assert state.lanes == {} and (state.saved, state.failed) == (1, 1)
    assert isinstance(state.outcome, ev.Failed)


def test_a_retry_counts_down_and_marks_the_call_failed() -> None:
    state = fold(BatchState.begin(1, 0.0), ev.StageStarted(Stage.CALLING))
    state.apply(ev.Retrying(2, 4, 4.0, "Rate limited."), 10.0)
    assert state.retry_until == 14.0 and state.retry is not None
    assert state.stages[Stage.CALLING].status == "failed" and state.stages[Stage.CALLING].note == "retrying"
    state.apply(ev.RequestSent("m", "e", 2, 1.0), 14.0)
    assert state.retry_until is None, "the countdown ends when the request leaves again"


def test_cancel_marks_the_active_stage_and_finished_freezes_the_clock() -> None:
    state = fold(BatchState.begin(1, 100.0), ev.StageStarted(Stage.STREAMING))
    state.apply(ev.Cancelled(6.2), 106.2)
    assert state.stages[Stage.STREAMING].note == "cancelled"
    state.apply(ev.Finished(ev.Summary((), 0, True, 6.2, 96)), 106.3)
    assert not state.running and state.elapsed(500.0) == 6.2
    assert isinstance(state.outcome, ev.Cancelled), "a single run keeps saying it was cancelled"


def test_a_finished_batch_is_its_own_outcome_and_done_only_when_ok() -> None:
    record = make_record("Ana Nowak", 0)
    state = BatchState.begin(2, 0.0)
    state.apply(ev.Finished(ev.Summary((record,), 1, False, 9.0, 300)), 9.0)
    assert isinstance(state.outcome, ev.Finished) and state.stage is not Stage.DONE and state.fraction < 1
    ok = BatchState.begin(1, 0.0)
    ok.apply(ev.Finished(ev.Summary((record,), 0, False, 9.0, 300)), 9.0)
    assert ok.stage is Stage.DONE and ok.fraction == 1.0


def test_events_the_state_does_not_need_change_nothing() -> None:
    state = BatchState.begin(1, 0.0)
    before = repr(state)
    fold(state, ev.PartialPersona({"name": "A"}), ev.UsageReported(Usage(prompt_tokens=5)), ev.ServerNotice("hi"))
    assert repr(state) == before


# ----- the words -----


def test_one_event_is_worded_for_each_front_end() -> None:
    slow = ev.SlowWarning(16.0, 15.0, 1)
    app = describe_event(slow, 3, APP)
    cli = describe_event(slow, 3, CLI)
    assert app is not None and app.text == "[2/3] Slower than usual: past 15.0 s. Esc cancels."
    assert cli is not None and cli.text == "[2/3] Slower than usual: past 15.0 s; Ctrl-C cancels"
    assert app.tone is Tone.WARN and app.scope is Scope.PERSONA


def test_retry_stage_and_request_lines_keep_their_wording() -> None:
    retry = describe_event(ev.Retrying(2, 4, 4.0, "Rate limited."), 1)
    assert retry is not None and retry.text == "Rate limited. Retrying in 4.0 s, attempt 2 of 4"
    done = describe_event(ev.StageFinished(Stage.PREPARING, 0.002), 1, CLI)
    assert done is not None and done.text == f"{'Preparing request':<30} 2 ms" and done.scope is Scope.RUN
    sent = describe_event(ev.RequestSent("m", "e", 2, 1.0, 0), 2)
    assert sent is not None and sent.text == "[1/2] Request sent to m at e (attempt 2)" and sent.scope is Scope.LANE
    beat = describe_event(ev.Heartbeat(9.0, 6.0), 1, CLI)
    assert beat is not None and beat.text == "Still waiting for gpt-4o-mini at api.openai.com: nothing for 6.0 s"


def test_thinking_is_announced_and_its_end_counts_the_tokens() -> None:
    state = thinking_run()
    start = describe_event(ev.StageStarted(Stage.THINKING, "hidden by the model"), 1, CLI)
    assert start is not None and start.text == "Model thinking (hidden by the model)"
    end = ev.StageFinished(Stage.THINKING, 12.3)
    cli = describe_event(end, 1, CLI, lane=state.lanes[0])
    app = describe_event(end, 1, APP, lane=state.lanes[0])
    assert cli is not None and cli.text == f"{'Model thinking':<30} 12.3 s  812 tokens"
    assert app is not None and app.text == "Model thinking: done in 12.3 s (812 tokens)"
    assert lane_status(state.lanes[0]) == "Thinking: 812 tokens, 68 tok/s, 12 s"
    assert lane_brief(state.lanes[0], 0.0) == "thinking 812 tok"
    assert describe_event(ev.ReasoningDelta("[/bold] x", 1, 0.1), 1) is None, "reasoning streams, it is not a line"


def test_usage_and_server_notices_are_one_line_each() -> None:
    usage = describe_event(ev.UsageReported(Usage(prompt_tokens=512, completion_tokens=734, reasoning_tokens=310)), 1)
    assert usage is not None and usage.tone is Tone.DIM
    assert usage.text == "Usage: 512 prompt + 734 completion tokens (310 reasoning)"
    plain = describe_event(ev.UsageReported(Usage(prompt_tokens=5, completion_tokens=6), 1), 2)
    assert plain is not None and plain.text == "[2/2] Usage: 5 prompt + 6 completion tokens"
    notice = describe_event(ev.ServerNotice("model\x1b[31m deprecated\nsoon"), 1, CLI)
    assert notice is not None and notice.tone is Tone.WARN
    assert "\x1b" not in notice.text and "\n" not in notice.text and "deprecated soon" in notice.text


def test_saved_line_adds_reasoning_only_when_the_server_counted_it() -> None:
    record = make_record("Ana Nowak", 0)
    plain = ev.PersonaSaved(record, Path("/d/a.json"), 6.6, 220, 38.0)
    line = describe_event(plain, 1)
    assert line is not None and line.text == "Saved Ana Nowak in 6.6 s, 220 tokens, 38 tok/s → a.json"
    counted = ev.PersonaSaved(record, Path("/d/a.json"), 6.6, 220, 38.0, usage=Usage(reasoning_tokens=90))
    line = describe_event(counted, 1, CLI)
    assert line is not None and "220 tokens (90 reasoning), 38 tok/s" in line.text and line.note == "/d/a.json"


def test_failures_say_their_kind_in_the_log_and_their_hint_under_them_on_a_terminal() -> None:
    failed = ev.Failed(FailureKind.AUTH, "The API key was rejected.", "Set OPENAI_API_KEY.")
    app = describe_event(failed, 1)
    assert app is not None and app.text == "Failed (auth): The API key was rejected. Set OPENAI_API_KEY."
    cli = describe_event(failed, 1, CLI)
    assert cli is not None and (cli.text, cli.note, cli.note_tone) == (
        "The API key was rejected.",
        "Set OPENAI_API_KEY.",
        Tone.HINT,
    )


def test_endings() -> None:
    record = make_record("Ana Nowak", 0)
    cancelled = ev.Cancelled(6.2, (record,))
    assert outcome_line(cancelled, 1).text == "Cancelled after 6.2 s"
    assert outcome_line(cancelled, 3).text == "Cancelled after 6.2 s; 1 of 3 saved"
    single_cli = describe_event(cancelled, 1, CLI)
    assert single_cli is not None and single_cli.text == "Cancelled after 6.2 s; 1 of 1 saved"
    finished = ev.Finished(ev.Summary((record,), 1, False, 9.0, 300))
    app = describe_event(finished, 2)
    assert app is not None and app.text == "Finished: 1 of 2 saved in 9.0 s, 1 failed" and app.symbol == "■"
    assert describe_event(ev.Finished(ev.Summary((record,), 0, False, 9.0, 300)), 1, CLI) is None
    assert describe_event(ev.Finished(ev.Summary((), 0, True, 1.0, 0)), 2) is None


def test_the_waiting_hint_never_calls_a_fresh_request_silent() -> None:
    fresh = waiting_hint(Stage.CALLING, 1.0, 1, 18.5, 1.2)
    assert fresh is not None and fresh.tone is Tone.DIM
    assert fresh.text == "Request sent: usually ~18.5 s for this model; first token in ~1.2 s"
    silent = waiting_hint(Stage.CALLING, 4.0, 3, None, 1.2)
    assert silent is not None and (silent.symbol, silent.text) == ("…", "still waiting for the model, 4 s")
    assert waiting_hint(Stage.STREAMING, 1.0, 1, None, 1.2) is None


# ----- issue 13: thinking, adapted steps, stalls, usage -----


def hidden_thinking_run() -> BatchState:
    """OpenAI's o-series or gpt-5: thinking starts at 1.0 s and streams nothing."""
    state = fold(
        BatchState.begin(1, 0.0),
        ev.StageStarted(Stage.PROMPT),
        ev.StageStarted(Stage.CALLING, "gpt-5-mini at api.openai.com"),
        ev.RequestSent("gpt-5-mini", "api.openai.com", 1, 1.2, timeout=30.0, max_attempts=4),
    )
    fold(state, ev.FirstToken(1.0), ev.StageFinished(Stage.CALLING, 1.0), at=1.0)
    return fold(state, ev.StageStarted(Stage.THINKING, "hidden by the model"), ev.ReasoningDelta("", 0, 0.0), at=1.0)


def test_thinking_reads_with_its_rate_and_clock_or_as_hidden() -> None:
    assert thinking_status(812, 14.2, rate=58.0) == "Thinking: 812 tokens, 58 tok/s, 14 s"
    assert thinking_status(812, 14.2) == "Thinking: 812 tokens, 14 s", "no rate before there is one"
    assert thinking_status(0, 12.4, detail="hidden by the model") == "Thinking (hidden by the model), 12 s"
    assert thinking_status(96, 12.4, detail="hidden") == "Thinking (hidden): 96 tokens, 12 s", "a server's count"
    state = hidden_thinking_run()
    lane = state.lanes[0]
    assert state.thinking_detail == "hidden by the model" and lane.thinking_since == 1.0
    assert lane_status(lane, now=13.0) == "Thinking (hidden by the model), 12 s", "the clock runs with nothing said"
    assert lane_brief(lane, 13.0) == "thinking 12 s"


def test_hidden_thinking_is_not_a_silence() -> None:
    state = hidden_thinking_run()
    state.apply(ev.Heartbeat(10.0, 9.0), 10.0)
    assert lane_status(state.lanes[0], now=10.0) == "Thinking (hidden by the model), 9 s"
    beat = describe_event(ev.Heartbeat(10.0, 9.0), 1, CLI, lane=state.lanes[0])
    assert beat is not None and beat.text == "Still thinking: nothing shown for 9.0 s" and beat.tone is Tone.PROGRESS
    assert state.waiting_since is None, "no 'still waiting' hint in the panel while the model thinks"


def test_the_servers_reasoning_count_reaches_the_finished_thinking_stage() -> None:
    state = hidden_thinking_run()
    state.apply(ev.StageFinished(Stage.THINKING, 12.3), 13.3)
    assert state.stages[Stage.THINKING].tokens == 0, "hidden: nothing counted yet"
    state.apply(ev.UsageReported(Usage(prompt_tokens=120, completion_tokens=412, reasoning_tokens=310)), 15.0)
    item = state.stages[Stage.THINKING]
    assert item.tokens == 310
    assert stage_done("Model thinking", item.seconds, item.tokens) == "Model thinking 12.3 s, 310 reasoning tokens"
    assert stage_done("Think", item.seconds, item.tokens, tall=False) == "Think 12.3 s, 310 tok"
    assert stage_done("Calling model", 0.8) == "Calling model 800 ms"
    visible = thinking_run()
    visible.apply(ev.StageFinished(Stage.THINKING, 12.3), 12.3)
    assert visible.stages[Stage.THINKING].tokens == 812, "streamed reasoning is counted as it comes"


def test_an_adapted_step_reads_as_a_step_and_fails_nothing() -> None:
    reason = "gpt-5-mini takes only its default temperature; sent without it."
    step = ev.Retrying(1, 4, 0.0, reason, adapted=True)
    for voice in (APP, CLI):
        line = describe_event(step, 1, voice)
        assert line is not None and (line.symbol, line.text, line.tone) == ("↷", reason, Tone.PROGRESS)
    tagged = describe_event(ev.Retrying(1, 4, 0.0, reason, 1, adapted=True), 3)
    assert tagged is not None and tagged.text == f"[2/3] {reason}"
    state = fold(BatchState.begin(1, 0.0), ev.StageStarted(Stage.CALLING), ev.RequestSent("m", "e", 1, 1.0))
    state.apply(step, 0.4)
    assert state.stages[Stage.CALLING].status == "active", "not a failure"
    assert state.retry is None and state.retry_until is None and state.step is step
    fold(state, ev.StageStarted(Stage.CALLING), ev.RequestSent("m", "e", 1, 1.0), ev.FirstToken(0.5), at=0.5)
    assert state.step is None, "the step is told until the answer begins"


def test_a_wait_for_the_first_token_counts_down_to_its_timeout() -> None:
    hint = waiting_hint(Stage.CALLING, 6.0, 1, None, 1.2, 30.0)
    assert hint is not None and (hint.symbol, hint.text) == ("…", "no first token after 6 s: gives up in 24 s")
    late = waiting_hint(Stage.CALLING, 31.0, 1, None, 1.2, 30.0)
    assert late is not None and late.text.endswith("gives up in 0 s")
    streaming = waiting_hint(Stage.STREAMING, 6.0, 1, None, 1.2, 30.0)
    assert streaming is not None and streaming.text == "still waiting for the next token, 6 s"
    state = fold(BatchState.begin(1, 0.0), ev.StageStarted(Stage.CALLING))
    fold(state, ev.RequestSent("m", "e", 1, 1.2, timeout=30.0, max_attempts=2), ev.Heartbeat(9.0, 9.0))
    assert state.first_token_timeout == 30.0
    assert lane_status(state.lanes[0]) == "Waiting for the model: 9 s, gives up in 21 s"


def test_a_stall_is_told_with_the_whole_wait_and_the_setting_to_raise() -> None:
    stall = ev.Failed(
        FailureKind.STALLED,
        "127.0.0.1:8000 sent nothing for 30 s while waiting for the first token. Waited 61 s in all over 2 attempts.",
        "The server may be overloaded or the model slow to start: try again, or raise first_token_timeout (now 30 s).",
    )
    cli = describe_event(stall, 1, CLI)
    assert cli is not None and cli.text == stall.message and cli.note == stall.hint
    retry = describe_event(ev.Retrying(2, 2, 1.0, "127.0.0.1:8000 sent nothing for 30 s."), 1, CLI)
    assert retry is not None and retry.text == "127.0.0.1:8000 sent nothing for 30 s. Retrying in 1.0 s, attempt 2 of 2"


def test_the_saved_line_reads_real_counts() -> None:
    record = make_record("Amina Otieno", 0, age=47, occupation="Field nurse")
    usage = Usage(prompt_tokens=120, completion_tokens=412, reasoning_tokens=310)
    saved = ev.PersonaSaved(record, Path("/d/a.json"), 9.4, 412, 48.2, usage=usage)
    line = describe_event(saved, 1, CLI)
    assert line is not None
    assert line.text == "Saved Amina Otieno (47, Field nurse) in 9.4 s, 412 tokens (310 reasoning), 48 tok/s"
    assert folded_thinking(812, "ctrl+r") == "Model thinking… (812 tokens, folded: ctrl+r shows)"


# ----- the terminal, drawn from both -----


def test_the_terminal_shows_thinking_usage_and_a_batch_summary() -> None:
    import io

    from rich.console import Console

    from persona_tui.render import HeadlessRenderer

    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    with HeadlessRenderer(console, count=1, provider_label="gpt-5", clock=lambda: 0.0) as view:
        for event in (
            ev.StageStarted(Stage.CALLING),
            ev.RequestSent("gpt-5", "api.openai.com", 1, 1.0),
            ev.FirstToken(0.5),
            ev.StageFinished(Stage.CALLING, 0.5),
            ev.StageStarted(Stage.THINKING, "hidden by the model"),
            ev.ReasoningDelta("", 812, 12.0),
        ):
            view.handle(event)
        assert view.progress.tasks[0].description == "Thinking (hidden by the model): 812 tokens, 12 s"
        view.handle(ev.StageFinished(Stage.THINKING, 12.3))
        view.handle(ev.UsageReported(Usage(prompt_tokens=1, completion_tokens=2, reasoning_tokens=1)))
    text = out.getvalue()
    assert "› Model thinking (hidden by the model)" in text
    assert f"✓ {'Model thinking':<30} 12.3 s  812 tokens" in text
    assert "· Usage: 1 prompt + 2 completion tokens (1 reasoning)" in text

    out = io.StringIO()
    record = make_record("Ana Nowak", 0)
    with HeadlessRenderer(Console(file=out, width=120), count=2, provider_label="m", clock=lambda: 0.0) as view:
        view.handle(ev.StageStarted(Stage.PROMPT, index=0))
        view.handle(ev.StageStarted(Stage.PROMPT, index=1))
        assert len(view.lanes) == 2 and "0 of 2 saved, 2 in flight" in view.progress.tasks[0].description
        view.handle(ev.StageFinished(Stage.PROMPT, 0.003, 1))
        view.handle(ev.PersonaSaved(record, Path("a.json"), 2.0, 100, 50.0, 0))
        view.handle(ev.Failed(FailureKind.TIMEOUT, "Timed out.", "Try again.", 1))
        assert view.lanes == {} and view.saved == 1
        view.handle(ev.Finished(ev.Summary((record,), 1, False, 3.0, 100)))
    text = out.getvalue()
    assert "Prompt" not in text, "a batch leaves per-persona stage lines to its bars"
    assert "✔ [1/2] Saved Ana Nowak" in text and "✘ [2/2] Timed out." in text and "  Try again." in text
    assert "■ 1 of 2 saved in 3.0 s, 1 failed" in text


def test_the_terminal_tells_a_wait_once_and_counts_it_on_the_bar() -> None:
    import io

    from rich.console import Console

    from persona_tui.render import HeadlessRenderer

    out = io.StringIO()
    now = [0.0]
    step = "gpt-5-mini takes only its default temperature; sent without it."
    with HeadlessRenderer(Console(file=out, width=120), count=1, provider_label="m", clock=lambda: now[0]) as view:
        view.handle(ev.StageStarted(Stage.CALLING))
        view.handle(ev.Retrying(1, 4, 0.0, step, adapted=True))
        view.handle(ev.StageStarted(Stage.CALLING))
        view.handle(ev.RequestSent("m", "e", 1, 1.0, timeout=30.0, max_attempts=4))
        for idle in (3.0, 6.0, 9.0):
            now[0] = idle
            view.handle(ev.Heartbeat(idle, idle))
        assert view.progress.tasks[0].description == "Waiting for the model: 9 s, gives up in 21 s"
        now[0] = 9.5
        view.handle(ev.FirstToken(9.5))
        view.handle(ev.StageFinished(Stage.CALLING, 9.5))
        view.handle(ev.StageStarted(Stage.THINKING, "hidden by the model"))
        view.handle(ev.ReasoningDelta("", 0, 0.0))
        now[0] = 21.5
        view.handle(ev.Heartbeat(21.5, 12.0))
        assert view.progress.tasks[0].description == "Thinking (hidden by the model), 12 s"
    text = out.getvalue()
    assert f"↷ {step}" in text and "Retrying" not in text
    assert text.count("Still waiting for m") == 1 and "nothing for 3.0 s" in text, "the first heartbeat only"
    assert "Still thinking: nothing shown for 12.0 s" in text
