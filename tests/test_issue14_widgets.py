"""Issue 14 (widgets and layout): what the user sees after deleting, after a failed batch, after a resize, and at 80x24."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

from persona_tui.batch_state import BatchState
from persona_tui.engine import events as ev
from persona_tui.engine.errors import FailureKind, GenerationError
from persona_tui.engine.events import Stage
from persona_tui.narrate import console_voice, describe_event
from persona_tui.present import describe, fmt_when, hanging
from persona_tui.render import HeadlessRenderer
from persona_tui.tui.screens.confirm import ConfirmScreen
from persona_tui.tui.screens.detail import DetailScreen
from persona_tui.tui.widgets.generation_panel import GenerationPanel
from persona_tui.tui.widgets.live_log import LiveLog
from persona_tui.tui.widgets.persona_table import PersonaTable
from persona_tui.tui.widgets.persona_view import PersonaView
from tests.conftest import AppFactory, make_record
from tests.helpers import ScriptedProvider, Step
from tests.test_app import wait_until


def pane_text(view: PersonaView) -> str:
    content = view.body.renderable if hasattr(view.body, "renderable") else view.body.content
    return content.plain if isinstance(content, Text) else str(content)


async def delete_selected(pilot, table: PersonaTable) -> None:  # type: ignore[no-untyped-def]
    count = table.row_count
    await pilot.press("d")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    await pilot.press("y")
    await wait_until(pilot, lambda: table.row_count == count - 1)
    await pilot.pause()


@pytest.mark.asyncio
async def test_deleting_shows_the_next_selected_persona_then_the_empty_message(
    app_factory: AppFactory, sample_records
) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records[:2])
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        view = app.query_one(PersonaView)
        table.focus()
        first = table.selected_row
        assert first is not None and first.name in pane_text(view)
        await delete_selected(pilot, table)
        left = table.selected_row
        assert left is not None and left.id != first.id
        await wait_until(pilot, lambda: left.name in pane_text(view))
        assert first.name not in pane_text(view)
        await delete_selected(pilot, table)
        assert table.border_title == "Personas (0)"
        await wait_until(pilot, lambda: "No personas yet" in pane_text(view))
        assert left.name not in pane_text(view)


# ----- item 8: a failed batch leaves no lanes, and says what became of the others -----


def rejected_batch_events() -> list[ev.Event]:
    """What the engine reports for a rejected key with three personas, two of them already sent."""
    events: list[ev.Event] = [ev.StageStarted(Stage.PREPARING, "3 persona(s)")]
    for index in range(3):
        events += [
            ev.StageStarted(Stage.PROMPT, index=index),
            ev.StageFinished(Stage.PROMPT, 0.001, index),
            ev.StageStarted(Stage.CALLING, "m at e", index),
            ev.RequestSent("m", "e", 1, 1.2, index, timeout=5.0, max_attempts=4),
        ]
    events += [
        ev.Failed(FailureKind.AUTH, "The API key was rejected.", "Set OPENAI_API_KEY.", 0),
        ev.Finished(ev.Summary((), 3, False, 4.0, 0, not_started=2)),
    ]
    return events


def test_finished_clears_the_lanes_of_personas_that_ended_or_never_started() -> None:
    state = BatchState.begin(3, 0.0)
    events = rejected_batch_events()
    for event in events[:-1]:
        state.apply(event, 0.0)
    assert sorted(state.lanes) == [1, 2]
    state.apply(events[-1], 0.0)
    assert state.lanes == {}


def test_the_summary_line_says_how_many_never_started() -> None:
    finished = ev.Finished(ev.Summary((), 3, False, 4.0, 0, not_started=2))
    console = describe_event(finished, 3, console_voice("m at e"))
    assert console is not None and console.text == "0 of 3 saved in 4.0 s, 1 failed, 2 not started"
    app = describe_event(finished, 3)
    assert app is not None and app.text == "Finished: 0 of 3 saved in 4.0 s, 1 failed, 2 not started"
    assert describe_event(ev.Finished(ev.Summary((), 1, False, 4.0, 0)), 1) is None, "the failure said it"


def test_stderr_after_a_rejected_batch_has_no_lanes_and_a_summary() -> None:
    out = io.StringIO()
    with HeadlessRenderer(Console(file=out, width=120), count=3, provider_label="m", clock=lambda: 0.0) as view:
        for event in rejected_batch_events():
            view.handle(event)
        assert view.lanes == {} and len(view.progress.tasks) == 1
    assert "0 of 3 saved in 4.0 s, 1 failed, 2 not started" in out.getvalue()


@pytest.mark.asyncio
async def test_the_panel_drops_waiting_lanes_when_a_batch_fails(app_factory: AppFactory) -> None:
    denied = GenerationError("auth", "The API key was rejected.", "Set OPENAI_API_KEY.")
    app = app_factory(ScriptedProvider([Step(error=denied)]), concurrency=3)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        app.query_one("#description", Input).value = "field nurses"
        app.query_one("#count", Input).value = "3"
        app.start_generation()
        panel = app.query_one(GenerationPanel)
        await wait_until(pilot, lambda: not panel.running)
        await pilot.pause()
        assert panel.lanes == {}
        shown = panel.render()
        console = Console(file=io.StringIO(), width=100)
        console.print(shown)
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert "[2/3]" not in text and "[3/3]" not in text and "waiting" not in text


# ----- item 9: the checklist's layout follows the terminal's new size -----


@pytest.mark.asyncio
async def test_the_checklist_layout_follows_the_new_terminal_size(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(GenerationPanel)
        assert not panel.has_class("-tall")
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert panel.has_class("-tall")
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        assert not panel.has_class("-tall")


# ----- item 10: the log re-wraps its lines when its width changes -----

LONG = " ".join(f"word{i:02d}" for i in range(40))


def words_of(log: LiveLog) -> list[str]:
    return [word for word in " ".join(log.lines).split() if word != "┊"]


@pytest.mark.asyncio
async def test_the_log_rewraps_at_the_new_width(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(160, 40)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        log.message(f"A long message {LONG}", key="wait")
        log.tokens(LONG + "\n" + LONG)
        log.tokens(" thinking " + LONG, thinking=True)
        log.end_tokens()
        log.message("After the stream")
        await pilot.pause()
        wide_lines = len(log.lines)
        before = words_of(log)
        await pilot.resize_terminal(90, 30)
        await pilot.pause()
        await pilot.pause()
        width = log._fold_width()
        assert all(cell_len(line) <= width for line in log.lines), "no line is cut at the narrower width"
        assert words_of(log) == before, "every word is still there, in order"
        assert len(log.lines) > wide_lines
        assert any(line.startswith("    ┊ ") for line in log.lines[1:]), "the reasoning keeps its margin"
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        await pilot.pause()
        assert len(log.lines) == wide_lines and words_of(log) == before
        log.message("A long message again", key="wait")  # a keyed line is no longer last: a new line
        assert "After the stream" in log.lines[-3]
        log.message("Still waiting: 3 s", key="beat")
        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        await pilot.pause()
        log.message("Still waiting: 6 s", key="beat")
        assert [line for line in log.lines if "Still waiting" in line] == ["09:30:00  Still waiting: 6 s"]


# ----- item 16: the slow warning never lands in the middle of the streamed text -----


@pytest.mark.asyncio
async def test_the_slow_warning_does_not_split_the_streamed_text(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        app.count = 1
        app.panel.begin(1)
        for event in (
            ev.StageStarted(Stage.CALLING, "m at e"),
            ev.RequestSent("m", "e", 1, 1.0, timeout=30.0, max_attempts=4),
            ev.FirstToken(0.5),
            ev.StageFinished(Stage.CALLING, 0.5),
            ev.StageStarted(Stage.STREAMING),
            ev.TokenDelta('{"name": "Amina ', 4, 20.0),
        ):
            app.handle_event(event)
        app.log_pane.flush()
        app.handle_event(ev.SlowWarning(16.0, 15.0))
        app.handle_event(ev.TokenDelta('Otieno", "age": 47}', 12, 20.0))
        app.handle_event(ev.StageFinished(Stage.STREAMING, 2.0))
        await pilot.pause()
        lines = list(app.log_pane.lines)
        assert '    {"name": "Amina Otieno", "age": 47}' in lines, lines
        streamed = lines.index('    {"name": "Amina Otieno", "age": 47}')
        assert not any("Slower than usual" in line for line in lines[: streamed + 1])
        assert "Slower than usual" in app.panel._hint().plain, "the panel says it while the tokens stream"


# ----- item 17: in a batch the pane taking shape follows one persona until it ends -----


@pytest.mark.asyncio
async def test_taking_shape_stays_on_one_persona_until_it_is_saved(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        view = app.query_one(PersonaView)
        app.count = 3
        app.panel.begin(3)
        for index in range(3):
            app.handle_event(ev.StageStarted(Stage.PROMPT, index=index))
        for round_ in range(3):
            for index in (1, 0, 2):
                app.handle_event(ev.PartialPersona({"name": f"Person {index} r{round_}"}, index))
            view.draw_partial()
            assert view.border_title == "Taking shape (2 of 3)", "the first in flight stays"
            assert f"Person 1 r{round_}" in pane_text(view)
        app.handle_event(ev.PersonaSaved(make_record("Person One", 0), Path("a.json"), 2.0, 100, 50.0, 1))
        view.draw_partial()
        assert view.border_title == "Taking shape (1 of 3)", "then the next in flight"
        assert "Person 0 r2" in pane_text(view)
        app.handle_event(ev.PartialPersona({"name": "Person 2 r3"}, 2))
        view.draw_partial()
        assert view.border_title == "Taking shape (1 of 3)"
        app.handle_event(ev.Failed(FailureKind.TIMEOUT, "Timed out.", "Try again.", 0))
        view.draw_partial()
        assert view.border_title == "Taking shape (3 of 3)" and "Person 2 r3" in pane_text(view)
        await pilot.pause()


# ----- item 19: the confirm dialog's footer shows its own keys -----


@pytest.mark.asyncio
async def test_the_confirm_dialog_footer_shows_yes_and_no(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.query_one(PersonaTable).focus()
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        keys = [key.key for key in footer.query(FooterKey)]
        assert keys[:3] == ["y", "n", "escape"], keys
        assert "delete" not in keys
        await pilot.press("escape")


# ----- item 21: Home and End go to the first and last row; g, G, j and k too -----


@pytest.mark.asyncio
async def test_home_end_and_vi_keys_move_between_rows_not_sideways(app_factory: AppFactory, sample_records) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(records=sample_records)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(PersonaTable)
        table.focus()
        for key, row in (("end", 2), ("home", 0), ("G", 2), ("g", 0), ("j", 1), ("j", 2), ("k", 1)):
            await pilot.press(key)
            await pilot.pause()
            assert (key, table.cursor_row, table.scroll_x) == (key, row, 0)


# ----- item 26: wrapped bullets hang under their text; a tidy footer in local time -----

LONG_GOAL = "Keep every vaccine record accurate even when the signal drops for days at a time"


def drawn(renderable: object, width: int = 40) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_wrapped_bullets_and_labels_hang_under_their_text() -> None:
    record = make_record("Amina Otieno", 0, goals=[LONG_GOAL])
    lines = drawn(hanging(describe(record, Path("/data/personas/amina.json"))))
    start = next(i for i, line in enumerate(lines) if line.startswith("  • Keep every"))
    assert lines[start + 1].startswith("    ") and lines[start + 1].strip(), lines
    communication = next(i for i, line in enumerate(lines) if line.startswith("Communication:"))
    assert lines[communication + 1].startswith(" " * len("Communication: ")), lines
    footer = "\n".join(lines)
    assert f"Created:  {fmt_when(record.created_at)}" in footer
    assert "T09:00" not in footer and "+00:00" not in footer
    assert any(line.startswith("Request:  field nurses") for line in lines)
    assert any(line.startswith("File:     /data/personas/amina.json") for line in lines)


@pytest.mark.asyncio
async def test_the_persona_and_detail_panes_hang_wrapped_bullets(app_factory: AppFactory) -> None:
    app = app_factory(records=[make_record("Amina Otieno", 0, goals=[LONG_GOAL])])
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = app.query_one(PersonaView)
        for content in (view.body.content, None):
            if content is None:
                app.query_one(PersonaTable).focus()
                await pilot.press("enter")
                await wait_until(pilot, lambda: isinstance(app.screen, DetailScreen))
                content = app.screen.query_one("#detail-body", Static).content
            lines = drawn(content)
            start = next(i for i, line in enumerate(lines) if line.startswith("  • Keep every"))
            assert lines[start + 1].startswith("    "), lines


# ----- item 27: stderr that is not a terminal still hears how the stream goes -----


def stream_for(view: HeadlessRenderer, now: list[float], seconds: int) -> None:
    view.handle(ev.StageStarted(Stage.CALLING, "m at e"))
    view.handle(ev.RequestSent("m", "e", 1, 1.0, timeout=30.0, max_attempts=4))
    view.handle(ev.FirstToken(0.5))
    view.handle(ev.StageFinished(Stage.CALLING, 0.5))
    view.handle(ev.StageStarted(Stage.STREAMING))
    for tenth in range(1, seconds * 10 + 1):
        now[0] = 100 + tenth / 10
        view.handle(ev.TokenDelta("x", tenth * 4, 40.0))


@pytest.mark.parametrize("where", ["pipe", "dumb"])
def test_a_plain_progress_line_every_few_seconds_when_stderr_is_no_terminal(where: str) -> None:
    out = io.StringIO()
    console = (
        Console(file=out, width=120)
        if where == "pipe"
        else Console(file=out, width=120, force_terminal=True, _environ={"TERM": "dumb"})
    )
    now = [100.0]
    with HeadlessRenderer(console, count=1, provider_label="m", clock=lambda: now[0]) as view:
        stream_for(view, now, 12)
    text = out.getvalue()
    progress = [line for line in text.splitlines() if line.startswith("… Streaming")]
    assert progress == ["… Streaming: 200 tokens, 40 tok/s, 5 s", "… Streaming: 400 tokens, 40 tok/s, 10 s"], text
    assert "\x1b" not in text


def test_a_terminal_gets_its_bars_and_no_progress_lines() -> None:
    out = io.StringIO()
    now = [100.0]
    console = Console(file=out, width=120, force_terminal=True, _environ={"TERM": "xterm-256color"})
    with HeadlessRenderer(console, count=1, provider_label="m", clock=lambda: now[0]) as view:
        stream_for(view, now, 12)
    assert "… Streaming" not in out.getvalue()


# ----- item 25: 80x24 shows the essentials; below 70x20 a clear notice -----


@pytest.mark.asyncio
async def test_below_the_minimum_size_a_notice_replaces_the_layout(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(66, 18)) as pilot:
        await pilot.pause()
        notice = app.query_one("#too-small", Static)
        assert notice.display and not app.query_one("#main").display and not app.query_one("#form").display
        assert "need 70x20" in str(notice.content) and "66x18" in str(notice.content)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not notice.display and app.query_one("#main").display


@pytest.mark.asyncio
async def test_typing_goes_where_it_went_once_the_terminal_is_big_enough_again(app_factory: AppFactory) -> None:
    """Found by hand: after the too-small notice, keys went nowhere until the user clicked a field."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.resize_terminal(60, 18)
        await pilot.pause()
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.press("n", "u", "r", "s", "e", "s")
        assert app.query_one("#description", Input).value == "nurses"


def region_text(app, widget) -> str:  # type: ignore[no-untyped-def]
    """What the screen shows inside a widget's region."""
    region = widget.region
    strips = app.screen._compositor.render_strips()
    rows = ["".join(seg.text for seg in strip) for strip in strips]
    return "\n".join(row[region.x : region.right] for row in rows[region.y : region.bottom])


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["first_run_offline", "success"])
async def test_80x24_shows_the_essentials(tmp_path: Path, name: str) -> None:
    from tests.scenes import SCENES, app_for

    scene = SCENES[name]
    app = app_for(scene, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await scene.run_before(pilot)
        await pilot.pause()
        description = app.query_one("#description", Input)
        assert cell_len(description.placeholder) <= description.content_region.width, "the placeholder is whole"
        header = f"{app.title} — {app.sub_title}"
        assert cell_len(header) <= 80 - 16, f"the header is whole: {header}"
        table = app.query_one(PersonaTable)
        first_four = sum(column.get_render_width(table) for column in list(table.columns.values())[:4])
        assert first_four <= table.scrollable_content_region.width, "Name to Location fit"
        panel = app.query_one(GenerationPanel)
        needed = panel.get_content_height(panel.size, app.size, panel.content_region.width)
        assert needed <= panel.content_region.height, "the checklist's last row is shown"
        if name == "success":
            shown = region_text(app, panel)
            assert "Save" in shown and "Saved" in shown, shown


@pytest.mark.asyncio
async def test_text_queued_during_a_rewrap_keeps_its_margin(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(160, 40)) as pilot:
        await app.workers.wait_for_complete()
        log = app.query_one(LiveLog)
        log.tokens("thinking about it ", thinking=True)
        log.flush()
        log.tokens("the answer ")  # queued with the answer's margin, not yet drawn
        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        await pilot.pause()
        log.flush()
        assert log.lines[-1].startswith("    the answer"), list(log.lines)


@pytest.mark.asyncio
async def test_the_created_column_names_its_time_zone(app_factory, sample_records) -> None:  # type: ignore[no-untyped-def]
    """Issue 14 (12): times in the table are local, and the column says which zone (tests pin TZ=UTC)."""
    app = app_factory(records=sample_records)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        table = app.query_one(PersonaTable)
        assert str(table.columns["created"].label) == "Created (UTC)"
