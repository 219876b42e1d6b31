"""Issues 16 and 17: the table at scale (rows index, trash) and find, sort, marks, bulk delete with undo."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import Input

from persona_tui.models import PersonaRecord
from persona_tui.storage import PersonaStore, file_name_for
from persona_tui.tui.screens.confirm import ConfirmScreen
from persona_tui.tui.widgets.persona_table import PersonaTable
from tests.conftest import AppFactory, make_record
from tests.test_app import notifications, persona_files, wait_until

pytestmark = pytest.mark.asyncio

# ----- the rows index -----


async def saved_store(tmp_path: Path, records: list[PersonaRecord]) -> PersonaStore:
    store = PersonaStore(tmp_path / "personas")
    for record in records:
        await store.save(record)
    return store


def write_by_hand(store: PersonaStore, record: PersonaRecord) -> Path:
    """As another program would: straight into the folder, the index not told."""
    path = store.root / file_name_for(record)
    path.write_text(record.model_dump_json())
    return path


async def test_the_rows_come_from_the_index_newest_first_without_reading_the_files(
    tmp_path: Path, sample_records: list[PersonaRecord]
) -> None:
    store = await saved_store(tmp_path, list(reversed(sample_records)))
    first = await store.table_rows()  # built from the files once
    assert [row.name for row in first.rows] == ["Amina Otieno", "Bo Lindqvist", "Chen Wei"]
    row = first.rows[1]
    assert (row.age, row.occupation, row.location, row.model) == (
        34,
        "Warehouse lead",
        "Gothenburg, Sweden",
        "gpt-4o-mini",
    )
    assert row.created == sample_records[1].created_at.timestamp() and row.file == file_name_for(sample_records[1])
    for path in persona_files_of(store):  # changed in place, as no writer here does: the folder's time stays
        path.write_bytes(b"not json")
    again = await store.table_rows()
    assert [r.name for r in again.rows] == ["Amina Otieno", "Bo Lindqvist", "Chen Wei"], "no persona file was read"
    texts = store.search_texts_sync()
    assert "he/him" in texts[row.id] and "twelve years" in texts[row.id], "every field, the pronouns and background too"


def persona_files_of(store: PersonaStore) -> list[Path]:
    return sorted(store.root.glob("*.json"))


async def test_files_added_or_removed_by_another_program_are_noticed(
    tmp_path: Path, sample_records: list[PersonaRecord]
) -> None:
    store = await saved_store(tmp_path, sample_records[:2])
    assert len((await store.table_rows()).rows) == 2
    write_by_hand(store, sample_records[2])
    assert {row.name for row in (await store.table_rows()).rows} == {"Amina Otieno", "Bo Lindqvist", "Chen Wei"}
    (store.root / file_name_for(sample_records[0])).unlink()
    assert {row.name for row in (await store.table_rows()).rows} == {"Bo Lindqvist", "Chen Wei"}
    await store.save(make_record("Dana Kowalski", -5))  # this process's save: appended, the index stays fresh
    assert store.index.fresh()
    assert (await store.table_rows()).rows[0].name == "Dana Kowalski"


async def test_a_stale_index_reads_only_the_files_that_came_or_changed(
    tmp_path: Path, sample_records: list[PersonaRecord]
) -> None:
    store = await saved_store(tmp_path, sample_records[:2])
    await store.table_rows()
    kept = store.root / file_name_for(sample_records[0])
    times = os.stat(kept)
    kept.write_bytes(b"not json")  # changed in place, its time put back: a refresh does not read it again
    os.utime(kept, ns=(times.st_atime_ns, times.st_mtime_ns))
    changed = store.root / file_name_for(sample_records[1])
    renamed = sample_records[1].model_copy(
        update={"persona": sample_records[1].persona.model_copy(update={"name": "Bo Berg"})}
    )
    changed.with_suffix(".tmp").write_text(renamed.model_dump_json())
    os.replace(changed.with_suffix(".tmp"), changed)  # another program's edit: a new file, a new time
    write_by_hand(store, sample_records[2])
    assert not store.index.fresh()
    rows = (await store.table_rows()).rows
    assert [row.name for row in rows] == ["Amina Otieno", "Bo Berg", "Chen Wei"], "refreshed, not rebuilt"
    assert store.index.fresh()
    changed.unlink()
    assert [row.name for row in (await store.table_rows()).rows] == ["Amina Otieno", "Chen Wei"]
    assert {e.name for e in await store.names("field nurses in rural Kenya")} == {"Amina Otieno", "Chen Wei"}


async def test_a_file_saved_while_the_index_is_rebuilt_is_not_lost(
    tmp_path: Path, sample_records: list[PersonaRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder's time is read before it is listed: a file that comes after the listing leaves the index stale."""
    store = await saved_store(tmp_path, sample_records[:2])
    shutil.rmtree(store.index.folder, ignore_errors=True)  # rebuilt at the next read
    listing = store._persona_files

    def listed_then_saved():  # type: ignore[no-untyped-def]
        entries = listing()
        monkeypatch.setattr(store, "_persona_files", listing)
        write_by_hand(store, sample_records[2])  # saved between the listing and the end of the rebuild
        stamp = os.stat(store.root).st_mtime_ns + 1_000_000  # the clock moved on, whatever its granularity
        os.utime(store.root, ns=(stamp, stamp))
        return entries

    monkeypatch.setattr(store, "_persona_files", listed_then_saved)
    first = await store.table_rows()
    assert len(first.rows) == 2, "the listing came before the file"
    assert not store.index.fresh(), "so the index is stale, not fresh without it"
    assert {row.name for row in (await store.table_rows()).rows} == {"Amina Otieno", "Bo Lindqvist", "Chen Wei"}


async def test_unreadable_files_are_reported_from_a_fresh_index_too(
    tmp_path: Path, sample_records: list[PersonaRecord]
) -> None:
    store = await saved_store(tmp_path, sample_records)
    (store.root / "broken-0000.json").write_text("{")
    first = await store.table_rows()
    again = await store.table_rows()
    assert store.index.fresh()
    for result in (first, again):
        assert [(p.path.name, p.reason) for p in result.problems] == [("broken-0000.json", "is not valid JSON")]


async def test_trash_moves_files_aside_restores_them_and_empties(
    tmp_path: Path, sample_records: list[PersonaRecord]
) -> None:
    store = await saved_store(tmp_path, sample_records)
    rows = (await store.table_rows()).rows
    batch = await store.trash(rows[:2])
    assert [f.name for f in persona_files_of(store)] == [rows[2].file]
    assert sorted(p.name for p in batch.folder.iterdir()) == sorted(r.file for r in rows[:2])
    assert batch.folder.parent == tmp_path / ".trash" / "personas"
    assert store.index.fresh() and [r.id for r in (await store.table_rows()).rows] == [rows[2].id]
    assert await store.names("field nurses in rural Kenya") == [
        e for e in await store.names("field nurses in rural Kenya")
    ]
    assert {e.id for e in await store.names("field nurses in rural Kenya")} == {rows[2].id}
    back = await store.restore(batch)
    assert [r.id for r in back] == [r.id for r in rows[:2]]
    assert len(persona_files_of(store)) == 3 and not batch.folder.exists()
    assert {r.id for r in (await store.table_rows()).rows} == {r.id for r in rows}
    again = await store.trash(rows[2:])
    store.empty_trash([again])
    assert not (tmp_path / ".trash").exists() and len(persona_files_of(store)) == 2


# ----- the app: find, sort, marks, delete and undo -----


async def loaded(pilot, app) -> PersonaTable:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()
    table = app.query_one(PersonaTable)
    table.focus()
    await pilot.pause()
    return table


async def test_slash_finds_as_you_type_over_every_field_and_esc_clears(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.id == "find"
        await pilot.press(*"he/him")
        await pilot.pause()
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["Bo Lindqvist"], "pronouns: not a column"
        assert table.border_title == "Personas (1 of 3 · 'he/him')"
        await pilot.press("enter")
        assert app.focused is table and table.row_count == 1, "Enter goes back to the rows, the filter kept"
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 3 and table.border_title == "Personas (3)"


async def test_find_combines_with_the_organization_filter(app_factory: AppFactory) -> None:
    from textual.widgets import Select

    from persona_tui.models import Organization, RequestInfo

    acme = Organization(name="Acme Care")

    def made_for(record: PersonaRecord, org: Organization | None) -> PersonaRecord:
        request = RequestInfo(
            description="nurses", organization=org.name if org else None, organization_id=org.id if org else None
        )
        return record.model_copy(update={"request": request})

    records = [
        made_for(make_record("Amina Otieno", 1), acme),
        made_for(make_record("Achieng Kamau", 2, occupation="Midwife"), acme),
        made_for(make_record("Bo Berg", 3, occupation="Midwife"), None),
    ]
    app = app_factory(records=records)
    await app.org_store.save(acme)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)
        app.query_one("#table-filter", Select).value = acme.id
        await pilot.pause()
        await pilot.press("slash", *"midwife")
        await pilot.pause()
        assert table.get_row_at(0)[0] == "Achieng Kamau" and table.row_count == 1
        assert table.border_title == "Personas (1 of 3, Acme Care · 'midwife')"


async def test_sort_keys_and_a_header_click_show_the_direction(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)

        def names() -> list[str]:
            return [table.get_row_at(i)[0] for i in range(table.row_count)]

        assert names() == ["Amina Otieno", "Bo Lindqvist", "Chen Wei"], "newest first"
        await pilot.press("s", "s", "s")  # model, name, age
        assert table.sort_key == "age" and names() == ["Chen Wei", "Bo Lindqvist", "Amina Otieno"]
        assert str(table.columns["age"].label) == "Age ▲"
        await pilot.press("S")
        assert names() == ["Amina Otieno", "Bo Lindqvist", "Chen Wei"] and str(table.columns["age"].label) == "Age ▼"
        x = sum(column.get_render_width() for column in list(table.columns.values())[:2]) + 1  # the occupation's header
        await pilot.click(PersonaTable, offset=(x, 0))
        await pilot.pause()
        assert table.sort_key == "occupation" and names() == ["Amina Otieno", "Chen Wei", "Bo Lindqvist"]
        assert str(table.columns["occupation"].label) == "Occupation ▲" and str(table.columns["age"].label) == "Age"


async def test_marks_then_one_question_deletes_them_and_u_brings_them_back(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)
        await pilot.press("space", "down", "space")
        assert table.marked_ids == [sample_records[0].id, sample_records[2].id]
        assert table.border_title == "Personas (3 · 2 marked)"
        assert table._cells(table.rows[sample_records[0].id])[0].plain == "✓ Amina Otieno"  # type: ignore[union-attr]
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete 2 personas?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert [p.name for p in persona_files(app)] == [table.rows[sample_records[1].id].file]
        assert table.marked_ids == [] and table.border_title == "Personas (1)"
        assert any("Deleted 2 personas. u undoes it." in n for n in notifications(app))
        await pilot.press("u")
        await wait_until(pilot, lambda: table.row_count == 3)
        assert len(persona_files(app)) == 3 and table.shown_ids == [r.id for r in sample_records]
        await pilot.press("d")  # no marks: the selected one
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: table.row_count == 2)
        trash = app.settings.data_dir / ".trash" / "personas"
        assert len(list(trash.rglob("*.json"))) == 1
    assert not trash.exists(), "emptied when the app closes"
    assert len(persona_files(app)) == 2


async def test_star_marks_all_shown_and_export_takes_the_marked_or_the_shown(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)
        await pilot.press("slash", *"kisumu", "enter")
        await pilot.press("asterisk")
        assert table.marked_ids == [sample_records[0].id], "only the rows shown"
        await pilot.press("escape", "ctrl+s")
        await wait_until(pilot, lambda: any("Exported" in n for n in notifications(app)))
        [export] = list((app.settings.data_dir / "exports").glob("*.json"))
        assert [r["persona"]["name"] for r in json.loads(export.read_text())] == ["Amina Otieno"]
        assert any("Exported 1 marked persona to" in n for n in notifications(app))
        export.unlink()
        await pilot.press("asterisk")  # not all shown were marked: now all are
        await pilot.press("asterisk")  # all were: none is
        assert table.marked_ids == []
        await pilot.press("slash", *"sweden", "enter", "ctrl+s")
        await wait_until(pilot, lambda: len(list((app.settings.data_dir / "exports").glob("*.json"))) == 1)
        [export] = list((app.settings.data_dir / "exports").glob("*.json"))
        assert [r["persona"]["name"] for r in json.loads(export.read_text())] == ["Bo Lindqvist"]
        assert any("Exported 1 persona shown ('sweden') to" in n for n in notifications(app))


async def test_the_new_keys_are_bindings_and_palette_entries(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        keys = {b.id: b.key for b in PersonaTable.BINDINGS if not isinstance(b, tuple) and b.id}  # type: ignore[union-attr]
        assert keys["find-personas"] == "slash" and keys["sort-column"] == "s" and keys["sort-direction"] == "S"
        assert keys["mark-persona"] == "space" and keys["mark-all"] == "asterisk" and keys["undo-delete"] == "u"
        titles = {command.title for command in app.get_system_commands(app.screen)}
        wanted = {"Find personas", "Sort by the next column", "Reverse the sort", "Mark all shown", "Clear marks"}
        assert wanted | {"Undo delete"} <= titles
        await pilot.pause()


async def test_undo_with_nothing_deleted_says_so(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await app.workers.wait_for_complete()
        app.query_one(PersonaTable).focus()
        await pilot.press("u")
        await wait_until(pilot, lambda: any("Nothing to undo" in n for n in notifications(app)))


async def test_a_persona_deleted_by_another_program_says_so_in_the_pane(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)
        os.unlink(app.store.root / table.rows[sample_records[1].id].file)
        await pilot.press("down")
        from persona_tui.tui.widgets.persona_view import PersonaView
        from tests.test_issue14_widgets import pane_text

        view = app.query_one(PersonaView)
        await wait_until(pilot, lambda: "is no longer in" in pane_text(view))
        assert table.selected_id == sample_records[1].id


async def test_a_persona_saved_again_replaces_its_row(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        table = await loaded(pilot, app)
        edited = sample_records[1].model_copy(
            update={"persona": sample_records[1].persona.model_copy(update={"name": "Bo Berg"})}
        )
        table.add_record(edited)
        await pilot.pause()
        assert table.shown_ids == [r.id for r in sample_records] and table.row_count == 3
        assert table.get_row_at(1)[0] == "Bo Berg" and table.selected_id == edited.id


async def test_the_help_screen_lists_the_table_keys(
    app_factory: AppFactory, sample_records: list[PersonaRecord]
) -> None:
    from persona_tui.tui.screens.help import key_rows

    app = app_factory(records=sample_records)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot, app)
        rows = {(row.group, row.keys, row.description) for row in key_rows(app.screen)}
        for keys, description in [
            ("/", "Find"),
            ("s", "Sort"),
            ("S", "Flip sort"),
            ("space", "Mark"),
            ("*", "Mark all"),
        ]:
            assert any(g == "Personas table" and description == d and keys in k for g, k, d in rows), (keys, rows)
        assert any(d == "Mark all" for _, _, d in rows) and any(d == "Undo delete" for _, _, d in rows)
