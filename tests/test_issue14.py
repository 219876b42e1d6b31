"""Issue 14: what the user sees after deleting, after a failed batch, after a resize, and at 80x24."""

from __future__ import annotations

import pytest
from rich.text import Text

from persona_tui.tui.screens.confirm import ConfirmScreen
from persona_tui.tui.widgets.persona_table import PersonaTable
from persona_tui.tui.widgets.persona_view import PersonaView
from tests.conftest import AppFactory
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
        first = table.selected
        assert first is not None and first.persona.name in pane_text(view)
        await delete_selected(pilot, table)
        left = table.selected
        assert left is not None and left.id != first.id
        assert left.persona.name in pane_text(view)
        assert first.persona.name not in pane_text(view)
        await delete_selected(pilot, table)
        assert table.border_title == "Personas (0)"
        assert "No personas yet" in pane_text(view)
        assert left.persona.name not in pane_text(view)
