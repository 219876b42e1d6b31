"""What the app does with the personas in its table: show, open, find, delete and undo, export.

The table holds rows, not records: a persona's full record is read from its file
when it is needed (a worker thread), so the app never keeps 50,000 records.
Deleted personas are moved aside into the data folder's trash, restored by undo,
and removed for good when the app closes cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

from textual import on
from textual.app import SystemCommand
from textual.widgets import Input

from persona_tui.export import export_target, export_text
from persona_tui.models import PersonaRecord
from persona_tui.narrate import app_hint
from persona_tui.present import one_line
from persona_tui.storage import StoreError, TableRow, TrashBatch, atomic_write
from persona_tui.tui.screens.confirm import ConfirmScreen
from persona_tui.tui.widgets.persona_table import PersonaTable

PersonaApp = Any
"""The app (persona_tui.tui.app imports this module, so it is not imported back)."""

NO_PERSONAS = "No personas yet. Describe the people you want and press ctrl+g."


class FindBar(Input):
    """The find field above the table (``/``): filters the rows as you type; Enter goes back to the
    rows with the filter kept, Esc clears it."""

    BINDINGS = [("escape", "clear", "Clear find")]
    HELP_GROUP = "Find in the table"

    DEFAULT_CSS = """
    FindBar {
        display: none;
        &.-shown { display: block; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="find: any words, any field (Enter: back to the rows, Esc: clear)", id=id)
        self.compact = True

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()  # the app's form handles its own fields' changes
        self.app.query_one(PersonaTable).find(event.value)

    @on(Input.Submitted)
    def _back_to_rows(self, event: Input.Submitted) -> None:
        event.stop()  # not a generation's Enter
        self.app.query_one(PersonaTable).focus()

    def action_clear(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self.app.query_one(PersonaTable).focus()


def deletion_question(rows: list[TableRow], trash: str) -> str:
    """The one question asked before a delete: one persona by name, more by count."""
    if len(rows) == 1:
        row = rows[0]
        return (
            f"Delete {one_line(row.name)} ({row.id[:8]})? Its file is moved to {trash} until the app closes; "
            "u brings it back."
        )
    return f"Delete {len(rows):,} personas? Their files are moved to {trash} until the app closes; u brings them back."


def gone_sentence(row: TableRow, root: object) -> str:
    return (
        f"{one_line(row.name)}'s file ({row.file}) is no longer in {root}: moved or deleted by another program? "
        "Restart the app to list the folder again."
    )


class PersonaActions:
    """The table's actions for one app: its trash of this session's deletes, newest last."""

    def __init__(self, app: PersonaApp) -> None:
        self.app = app
        self.trashed: list[TrashBatch] = []

    def later(self, action: Callable[..., Awaitable[None]], *args: str, group: str = "show") -> None:
        """Run ``action`` in a worker that replaces the group's last one (a row highlighted after another
        shows the later one); the coroutine is made only when the worker starts."""
        self.app.run_worker(partial(action, *args), group=group, exclusive=True, exit_on_error=False)

    @property
    def table(self) -> PersonaTable:
        return self.app.table

    async def record(self, row: TableRow, *, quiet: bool = False) -> PersonaRecord | None:
        """The full record of a row (saved in this session, else read from its file); None when it is gone
        (said in the log unless ``quiet``)."""
        recent = self.table.recent.get(row.id)
        if recent is not None:
            return recent
        try:
            record, path = await self.app.store.read(row.id, row.file)
        except StoreError:
            if not quiet:
                self.app.log_pane.message(gone_sentence(row, self.app.store.root))
            return None
        self.app.paths[record.id] = path
        return record

    async def show(self, persona_id: str) -> None:
        """Show this persona in the pane, unless the cursor moved on while its file was read."""
        row = self.table.rows.get(persona_id)
        if row is None:
            return
        record = await self.record(row, quiet=True)
        if self.table.selected_id != persona_id or self.app.running:
            return
        if record is not None:
            self.app.persona_view.show_record(record)
        else:
            self.app.persona_view.show_message(gone_sentence(row, self.app.store.root))

    async def show_selected(self) -> None:
        """The pane shows the table's selected row, or says why there is none."""
        row = self.table.selected_row
        if row is not None:
            await self.show(row.id)
        elif self.table.find_text.strip():
            self.app.persona_view.show_message("No persona has those words; Esc in the table shows them all.")
        elif self.table.rows:
            self.app.persona_view.show_message("No persona of this organization; choose another in the filter.")
        else:
            self.app.persona_view.show_message(NO_PERSONAS)

    async def open(self, persona_id: str) -> None:
        from persona_tui.tui.screens.detail import DetailScreen

        row = self.table.rows.get(persona_id)
        record = await self.record(row) if row is not None else None
        if record is not None:
            self.app.push_screen(DetailScreen(record, self.app.paths.get(record.id)))

    def find(self) -> None:
        bar = self.app.query_one(FindBar)
        bar.add_class("-shown")
        bar.value = self.table.find_text
        bar.focus()

    async def delete(self) -> None:
        """Delete the marked rows shown, else the selected one: asked once, undone with u until the app closes."""
        table = self.table
        marked = [row for row in table.shown_rows if row.id in table.marked]
        rows = marked or ([table.selected_row] if table.selected_row is not None else [])
        if not rows:
            return
        if not await self.app.push_screen_wait(
            ConfirmScreen(deletion_question(rows, str(self.app.store.trash_folder)))
        ):
            return
        try:
            batch = await self.app.store.trash(rows)
        except StoreError as exc:
            sentence = f"{exc.message} {app_hint(exc.hint)}".strip()
            self.app.notify(sentence, title="Not deleted", severity="error", markup=False)
            return
        self.trashed.append(batch)
        gone = [persona_id for persona_id, _ in batch.moved]
        table.remove_personas(gone)
        for persona_id in gone:
            self.app.paths.pop(persona_id, None)
        if not self.app.running:
            await self.show_selected()
        if len(rows) == 1 and len(gone) == 1:
            words = f"Deleted {one_line(rows[0].name)} ({rows[0].id[:8]})"
        else:
            words = f"Deleted {len(gone):,} personas"
        missed = len(rows) - len(gone)
        if missed:
            words += f"; {missed:,} could not be moved (see the log)"
        self.app.log_pane.message(f"{words}; u brings them back until the app closes")
        self.app.notify(f"{words}. u undoes it.", markup=False)

    async def undo(self) -> None:
        """Bring back the personas of the last delete."""
        if not self.trashed:
            self.app.notify("Nothing to undo: no persona was deleted since the app started.", markup=False)
            return
        batch = self.trashed.pop()
        try:
            rows = await self.app.store.restore(batch)
        except OSError as exc:
            self.trashed.append(batch)
            self.app.notify(
                f"The deleted personas could not be restored: {exc.strerror or exc}.", severity="error", markup=False
            )
            return
        self.table.add_rows(rows)
        noun = "persona" if len(rows) == 1 else "personas"
        self.app.log_pane.message(f"Restored {len(rows):,} {noun}")
        self.app.notify(f"Restored {len(rows):,} {noun}.", markup=False)

    async def empty_trash(self) -> None:
        """Remove this session's deleted files for good (the app closes cleanly)."""
        if self.trashed:
            batches, self.trashed = self.trashed, []
            await asyncio.to_thread(self.app.store.empty_trash, batches)

    async def export(self, fmt: str) -> None:
        """Export the marked rows shown, else every row shown (with the filters on, only those)."""
        table = self.table
        rows = table.target_rows()
        marked = bool(table.marked_ids)
        records = await self.app.store.read_many(rows)
        target = export_target(self.app.settings.data_dir / "exports", self.app.now(), fmt)
        try:
            data = await asyncio.to_thread(lambda: export_text(records, fmt).encode("utf-8"))
            await atomic_write(target, data)
        except OSError as exc:
            self.app.notify(
                f"Could not write {target}: {exc.strerror or exc}.",
                title="Export failed",
                severity="error",
                markup=False,
            )
            return
        sentence = export_words(len(records), table, target, marked=marked)
        self.app.log_pane.message(sentence)
        self.app.notify(sentence, title="Exported", markup=False)


def export_words(count: int, table: PersonaTable, target: object, *, marked: bool) -> str:
    """What an export wrote: the marked ones, or those shown with the filters on (which), or all."""
    noun = "persona" if count == 1 else "personas"
    if marked:
        return f"Exported {count:,} marked {noun} to {target}"
    which = [one_line(table.organization)] if table.organization is not None else []
    if table.find_text.strip():
        which.append(repr(one_line(table.find_text.strip())[:40]))
    if not which:
        return f"Exported {count:,} {noun} to {target}"
    return f"Exported {count:,} {noun} shown ({', '.join(which)}) to {target}"


def commands(app: PersonaApp) -> Iterator[SystemCommand]:
    """The palette's entries for the table's find, sort, marks and undo (the keys are the table's)."""
    table = app.table
    yield SystemCommand("Undo delete", "Bring back the personas of the last delete (u)", app.action_undo_delete)
    yield SystemCommand("Find personas", "Filter the table by any words, as you type (/)", app.action_find)
    yield SystemCommand("Sort by the next column", f"Now by {table.sort_text} (s; S reverses)", table.action_sort_next)
    yield SystemCommand("Reverse the sort", "Flip the table's order (S)", table.action_sort_flip)
    yield SystemCommand("Mark all shown", "Mark every row shown; again clears the marks (*)", table.action_mark_all)
    yield SystemCommand("Clear marks", "Unmark every persona", table.clear_marks)
