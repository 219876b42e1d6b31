"""Issue 16, item 5: feedback that scales (big batches drawn as a whole, layout only when the panel's
height changes, a save inserting its row in place)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from persona_tui.batch_state import AGGREGATE_ABOVE, BatchState
from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind
from persona_tui.engine.events import Stage
from persona_tui.narrate import aggregate_line, slow_lane_brief, slowest_heading, stage_counts
from persona_tui.render import HeadlessRenderer
from persona_tui.tui.widgets.generation_panel import GenerationPanel
from persona_tui.tui.widgets.persona_table import PersonaTable
from tests.conftest import AppFactory, make_record


def twenty_in_flight(state: Any, now: list[float]) -> None:
    """Twenty personas: 5 calling (16-19 silent since 0 s, 15 just sent), 2 thinking, 10 streaming, 2 checking,
    1 saving; the streams at 10 + index tokens a second."""

    def at(t: float, event: ev.Event) -> None:
        now[0] = t
        if isinstance(state, BatchState):
            state.apply(event, t)
        elif isinstance(state, HeadlessRenderer):
            state.handle(event)
        else:
            state.apply(event)

    for index in range(20):
        at(0.0, ev.StageStarted(Stage.PROMPT, index=index))
        at(0.0, ev.StageStarted(Stage.CALLING, "m", index))
        at(0.0, ev.RequestSent("m", "e", 1, 1.0, index, timeout=30.0))
    for index in (13, 14):
        at(1.0, ev.StageStarted(Stage.THINKING, index=index))
        at(9.5, ev.ReasoningDelta("…", 40, 8.5, index))
    for index in range(10):
        at(1.0, ev.FirstToken(1.0, index))
        at(1.0, ev.StageStarted(Stage.STREAMING, "m", index))
        at(9.8, ev.TokenDelta("x", 100 + index, 10.0 + index, index))
        at(9.8, ev.Progress(0.1, 9.8, 50.0, 0.1 + index * 0.05, index))
    for index in (10, 11):
        at(9.9, ev.StageStarted(Stage.VALIDATING, index=index))
    at(9.9, ev.StageStarted(Stage.SAVING, index=12))
    at(9.9, ev.RequestSent("m", "e", 2, 1.0, 15, timeout=30.0))  # sent again just now: not silent
    now[0] = 10.0


def test_the_aggregate_of_twenty_lanes_counts_stages_sums_rates_and_finds_the_slowest() -> None:
    state = BatchState.begin(50, 0.0)
    twenty_in_flight(state, [0.0])
    assert state.aggregated and len(state.lanes) == 20 > AGGREGATE_ABOVE
    summary = state.aggregate(10.0)
    assert dict(summary.stages) == {
        Stage.CALLING: 5,
        Stage.THINKING: 2,
        Stage.STREAMING: 10,
        Stage.VALIDATING: 2,
        Stage.SAVING: 1,
    }
    assert summary.rate == pytest.approx(sum(10.0 + i for i in range(10)))
    assert [index for index, _ in summary.slowest] == [16, 17, 18], "the longest silent first, earliest on a tie"
    assert stage_counts(summary) == "calling 5 · thinking 2 · streaming 10 · checking 2 · saving 1"
    assert aggregate_line(summary) == "145 tok/s · calling 5 · thinking 2 · streaming 10 · checking 2 · saving 1"
    assert aggregate_line(summary, short=True) == "145 tok/s · call 5 · think 2 · stream 10 · check 2 · save 1"
    assert slowest_heading(3, 20) == "Slowest 3 of 20 in flight"
    assert slow_lane_brief(state.lanes[16], 10.0) == "waiting 10 s", "a wait counts its own seconds"
    state.apply(ev.TokenDelta("x", 9, 3.0, 0), 10.0)
    assert slow_lane_brief(state.lanes[0], 14.0) == "9 tok, 3/s, silent 4 s"


def test_the_slowest_are_the_least_far_along_when_none_is_silent() -> None:
    state = BatchState.begin(30, 0.0)
    for index in range(14):
        state.apply(ev.StageStarted(Stage.STREAMING, index=index), 0.0)
        state.apply(ev.Progress(0.1, 1.0, 9.0, 0.9 - index * 0.05, index), 1.0)
    assert [index for index, _ in state.aggregate(1.5).slowest] == [13, 12, 11]


def test_a_batch_stays_drawn_as_a_whole_once_more_than_a_dozen_were_in_flight() -> None:
    state = BatchState.begin(20, 0.0)
    for index in range(AGGREGATE_ABOVE):
        state.apply(ev.StageStarted(Stage.PROMPT, index=index), 0.0)
    assert not state.aggregated
    state.apply(ev.StageStarted(Stage.PROMPT, index=AGGREGATE_ABOVE), 0.0)
    assert state.aggregated
    state.apply(ev.Failed(FailureKind.SERVER_ERROR, "boom", "", index=0), 1.0)
    assert len(state.lanes) == AGGREGATE_ABOVE and state.aggregated, "no flip back and forth at the edge"


def test_stderr_draws_a_big_batch_as_a_whole_not_a_bar_each() -> None:
    now = [0.0]
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True)
    with HeadlessRenderer(console, count=50, provider_label="m", clock=lambda: now[0]) as view:
        for index in range(AGGREGATE_ABOVE):
            view.handle(ev.StageStarted(Stage.PROMPT, index=index))
        assert len(view.lanes) == AGGREGATE_ABOVE, "a dozen in flight: a bar each"
        twenty_in_flight(view, now)
        view.handle(ev.StageStarted(Stage.VALIDATING, index=11))  # not a token: the aggregate is drawn at once
        assert view.lanes == {}
        tasks = view.progress.tasks
        assert len(tasks) == 4, "the overall bar and the three slowest"
        assert [t.description for t in tasks[1:]] == [
            f"  [{i}/50] Waiting for the model: 10 s, gives up in 20 s" for i in (17, 18, 19)
        ]
        assert view.progress.summary is not None
        summary = view.progress.summary.plain
        assert "145 tok/s · calling 5 · thinking 2 · streaming 10 · checking 2 · saving 1" in summary
        assert "Slowest 3 of 20 in flight" in summary
        assert tasks[0].description == "0 of 50 saved, 20 in flight"
        console.print(view.progress)  # draws: the overall bar, the summary lines, the slowest bars
        view.handle(ev.Finished(ev.Summary((), 20, False, 12.0, 0)))
        assert len(view.progress.tasks) == 1 and view.progress.summary is None


def test_a_pipe_gets_the_aggregate_in_its_plain_progress_line() -> None:
    now = [0.0]
    out = io.StringIO()
    with HeadlessRenderer(Console(file=out, width=200), count=50, provider_label="m", clock=lambda: now[0]) as view:
        twenty_in_flight(view, now)
        now[0] = 20.0
        view.handle(ev.Heartbeat(10.0, 10.0, 16))
    assert "0 of 50 saved, 20 in flight; 145 tok/s · calling 5" in out.getvalue()


@pytest.mark.asyncio
async def test_the_panel_draws_more_than_a_dozen_as_a_whole(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        panel = app.query_one(GenerationPanel)
        now = [0.0]
        panel.clock = lambda: now[0]
        panel.begin(50)
        twenty_in_flight(panel, now)
        await pilot.pause()
        console = Console(file=io.StringIO(), width=80)
        console.print(panel.render())
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert "Generating 50 personas: 0 saved, 20 in flight" in text
        assert "145 tok/s · call 5 · think 2 · stream 10 · check 2 · save 1" in text
        assert "Slowest 3 of 20 in flight" in text
        assert "[17/50] waiting 10 s" in text and "[1/50]" not in text
        assert panel.size.height <= 10, "a few rows, not twenty"


@pytest.mark.asyncio
async def test_the_panel_lays_out_only_when_its_height_changes(app_factory: AppFactory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        panel = app.query_one(GenerationPanel)
        now = [100.0]
        panel.clock = lambda: now[0]
        panel.begin(3)
        calls: list[bool] = []
        refresh = panel.refresh

        def counted(*regions: Any, layout: bool = False, **kwargs: Any) -> Any:
            calls.append(layout)
            return refresh(*regions, layout=layout, **kwargs)

        monkeypatch.setattr(panel, "refresh", counted)
        panel.apply(ev.StageStarted(Stage.PROMPT, index=0))  # a row more: taller
        assert calls == [True]
        panel.apply(ev.StageFinished(Stage.PROMPT, 0.003, 0))
        panel.apply(ev.StageStarted(Stage.CALLING, "m", 0))
        panel.apply(ev.RequestSent("m", "e", 1, 1.0, 0, timeout=30.0))
        panel.apply(ev.FirstToken(0.5, 0))
        panel.apply(ev.StageStarted(Stage.STREAMING, "m", 0))
        panel.tick()
        assert calls == [True, False, False, False, False, False, False], "text only: no layout"
        panel.apply(ev.StageStarted(Stage.PROMPT, index=1))
        assert calls[-1] is True
        await pilot.pause()


@pytest.mark.asyncio
async def test_a_save_inserts_its_row_in_place_and_selects_it(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        sorts: list[object] = []
        table.sort_by = lambda *a, **k: sorts.append(a)  # type: ignore[method-assign]
        newest = make_record("Newest Person", -60)
        table.add_record(newest)
        middle = make_record("Middle Person", 0).model_copy(
            update={"created_at": sample_records[1].created_at + timedelta(seconds=1)}
        )
        table.add_record(middle)
        oldest = make_record("Oldest Person", 0).model_copy(
            update={"created_at": min(r.created_at for r in sample_records) - timedelta(days=1)}
        )
        table.add_record(oldest)
        await pilot.pause()
        assert sorts == [], "no sort of every row"
        order = table.shown_ids
        expected = sorted(table.rows.values(), key=lambda r: r.created, reverse=True)
        assert order == [r.id for r in expected]
        assert order.index(middle.id) == 2 and order[0] == newest.id and order[-1] == oldest.id
        assert table.selected_id == oldest.id
        table.add_record(make_record("Another New", -90))
        await pilot.pause()
        assert table.cursor_row == 0 and table.selected_row is not None and table.selected_row.name == "Another New"
        assert str(table.get_row_at(0)[0]) == "Another New"


@pytest.mark.asyncio
async def test_a_hint_that_wraps_onto_another_line_counts_as_a_change_of_height(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        panel = app.query_one(GenerationPanel)
        panel.begin(3)
        await pilot.pause()
        short = panel.shape()
        width = panel.content_size.width
        panel._hint = lambda: Text("x " * width)  # type: ignore[method-assign]
        assert panel.shape() != short, "no line break in it, yet a line more"
