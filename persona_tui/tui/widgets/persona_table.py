"""The table of saved personas, newest first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from persona_tui.models import PersonaRecord
from persona_tui.present import one_line

COLUMNS = (
    ("name", "Name", 20),
    ("age", "Age", 3),
    ("occupation", "Occupation", 20),
    ("location", "Location", 20),
    ("created", "Created", 16),
    ("model", "Model", 14),
)
"""Key, label and width: fixed widths spare the table from measuring every cell of thousands of rows.
The widths are then fitted to the room the table has (:func:`fit_columns`)."""
NARROWEST = {"name": 12, "age": 3, "occupation": 10, "location": 12, "created": 16, "model": 10}
WIDEST = {"name": 28, "age": 3, "occupation": 34, "location": 34, "created": 16, "model": 20}
SQUEEZED = {"name": 10, "occupation": 7, "location": 8}
"""The least the first four columns get when even NARROWEST does not fit, before the table scrolls sideways."""
GROWING = ("name", "occupation", "location", "model")
"""The columns that take spare room, a cell at a time in turn."""
CELL_PADDING = 2
"""DataTable's padding around each cell (one on each side)."""
ALWAYS_SHOWN = 4
"""Name, age, occupation and location always fit; created and model come into view when there is room."""
HIGHLIGHT_STYLE = "bold green"
FIRST_ROWS = 200


def fit_columns(room: int) -> dict[str, int]:
    """Column widths for a table ``room`` cells wide.

    The first four columns are always shown (they scroll sideways if even they
    do not fit); created and model join them only when the first four can keep
    their listed widths. The room left goes to the text columns in turn, up to
    their widest. Columns that do not fit keep their listed width, for whoever
    scrolls to them.
    """
    keys = [key for key, _, _ in COLUMNS]
    widths = {key: width for key, _, width in COLUMNS}
    needed = sum(widths[key] + CELL_PADDING for key in keys[:ALWAYS_SHOWN])
    shown = ALWAYS_SHOWN
    for key in keys[ALWAYS_SHOWN:]:
        needed += NARROWEST[key] + CELL_PADDING
        if needed > room:
            break
        shown += 1
    visible = keys[:shown]
    widths.update({key: NARROWEST[key] for key in visible})
    spare = room - sum(widths[key] + CELL_PADDING for key in visible)
    while spare < 0:  # a narrow table (80 columns): the text columns give up cells in turn, down to SQUEEZED
        narrower = [key for key in GROWING if key in visible and widths[key] > SQUEEZED.get(key, widths[key])]
        if not narrower:
            break
        for key in narrower[:-spare]:
            widths[key] -= 1
            spare += 1
    growing = [key for key in GROWING if key in visible]
    while spare > 0:
        wider = [key for key in growing if widths[key] < WIDEST[key]]
        if not wider:
            break
        for key in wider[:spare]:
            widths[key] += 1
            spare -= 1
    return widths


class Cell:
    """A plain cell, formatted only when its row is first drawn.

    DataTable asks a Rich renderable for its text only when it draws the row,
    and ``Text`` is never read as markup, which model text must not be. With
    10,000 personas, six ``Text`` per row made up a third of the startup.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw

    def __str__(self) -> str:
        return one_line(self.raw)[:60]

    def __rich__(self) -> Text:
        """Drawn as plain text, cut with an ellipsis where its column ends."""
        return Text(str(self), no_wrap=True, overflow="ellipsis", end="")


def _with_zone(label: str) -> str:
    """The 'created' column says which time zone its times are in: ``Created (CET)``."""
    zone = datetime.now().astimezone().tzname() or ""
    return f"{label} ({zone})" if zone and len(label) + len(zone) + 3 <= COLUMNS[4][2] else label


class Stamp:
    """The 'created' cell: shows minutes, sorts by the exact moment."""

    __slots__ = ("when",)

    def __init__(self, when: datetime) -> None:
        self.when = when

    @property
    def moment(self) -> float:
        return self.when.timestamp()

    def __str__(self) -> str:
        return self.when.astimezone().strftime("%Y-%m-%d %H:%M")


class _StyledStamp(Text):
    """A highlighted 'created' cell, sortable like :class:`Stamp`."""

    moment: float = 0.0


Row = list[Cell | Stamp | Text]


class PersonaTable(DataTable[Cell | Stamp | Text]):
    """Rows keyed by persona id; cells are never read as markup."""

    BINDINGS = [
        Binding("delete,d", "app.delete_selected", "Delete", id="delete-persona"),
        Binding("enter", "select_cursor", "Open", show=False, id="open-persona"),
        # Rows, not columns: DataTable's Home and End scroll sideways and hide the Name column.
        Binding("home,g", "scroll_top", "First", show=False, id="first-persona"),
        Binding("end,G", "scroll_bottom", "Last", show=False, id="last-persona"),
        Binding("j", "cursor_down", "Down", show=False, id="next-persona"),
        Binding("k", "cursor_up", "Up", show=False, id="previous-persona"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.records: dict[str, PersonaRecord] = {}
        """Every persona, newest first, shown or not."""
        self.organization: str | None = None
        """Show only the personas made for this organization (its name, shown in the title)."""
        self.organization_id: str | None = None
        """The filter's organization id: records that carry one match by it, older records by name (case ignored)."""
        self._cache: dict[str, Row] = {}
        """Each persona's cells, built once (they are plain text, cheap to keep)."""

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(_with_zone(label) if key == "created" else label, key=key, width=width)

    def on_resize(self) -> None:
        self._fit()

    def watch_show_vertical_scrollbar(self) -> None:
        # Rows added or removed can bring the scrollbar or take it away, with no resize to say so.
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """Fit the columns to the room beside the scrollbar (cells are cut at their column's width)."""
        widths = fit_columns(self.scrollable_content_region.width)
        changed = False
        for key, width in widths.items():
            column = self.columns.get(ColumnKey(key))
            if column is not None and column.width != width:
                column.width = width
                changed = True
        if changed:
            clear = getattr(self, "_clear_caches", None)  # rows drawn at the old widths
            if clear is not None:
                clear()
            self._require_update_dimensions = True
            self.refresh()

    def _cells(self, record: PersonaRecord) -> Row:
        p = record.persona
        model = "offline (not AI)" if record.provider == "offline" else record.model
        return [
            Cell(p.name),
            Cell(str(p.age)),
            Cell(p.occupation),
            Cell(p.location),
            Stamp(record.created_at),
            Cell(model),
        ]

    def _styled_cells(self, record: PersonaRecord, style: str) -> Row:
        cells: Row = [Text(str(cell), style=style, no_wrap=True, overflow="ellipsis") for cell in self._cells(record)]
        created = _StyledStamp(str(cells[4]), style=style, no_wrap=True, overflow="ellipsis")
        created.moment = record.created_at.timestamp()
        cells[4] = created
        return cells

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Skip measuring every cell of every new row: all columns here have fixed widths.

        DataTable measures each new cell to size auto-width columns; for 10,000
        rows that took most of a second during which the app could not draw.
        Only the scrollable size is needed. Falls back to DataTable's own work
        if its internals are not what this was written against.
        """
        try:
            label_width = self._row_label_column_width
            height = self._total_row_height
        except AttributeError:  # a Textual release that changed its internals
            super()._update_dimensions(new_rows)
            return
        width = sum(column.get_render_width(self) for column in self.columns.values()) + label_width
        self.virtual_size = Size(width, height + (self.header_height if self.show_header else 0))

    def _shown(self, record: PersonaRecord) -> bool:
        if self.organization is None:
            return True
        if self.organization_id is not None and record.request.organization_id is not None:
            return record.request.organization_id == self.organization_id  # renamed since: still the same one
        return (record.request.organization or "").casefold() == self.organization.casefold()

    def load(self, records: Iterable[PersonaRecord]) -> None:
        """Replace all rows (records come newest first)."""
        self.records = {r.id: r for r in records}
        self._cache = {r.id: self._cells(r) for r in self.records.values()}
        self._refill()

    async def load_async(self, records: list[PersonaRecord]) -> None:
        """Like :meth:`load`, for thousands of records: cells are built in a thread.

        The first screenful goes in alone so it is drawn at once; the rest follows
        in one go, because each slice added later makes the table redraw in full.
        """
        self.records = {r.id: r for r in records}
        self._cache = await asyncio.to_thread(lambda: {r.id: self._cells(r) for r in records})
        self.clear()
        shown = [r.id for r in records if self._shown(r)]
        for key in shown[:FIRST_ROWS]:
            self.add_row(*self._cache[key], key=key)
        await asyncio.sleep(0)
        for key in shown[FIRST_ROWS:]:
            self.add_row(*self._cache[key], key=key)

    def filter(self, organization: str | None, organization_id: str | None = None) -> None:
        """Show only one organization's personas (by id where records carry one, else by name), or all."""
        self.organization = organization
        self.organization_id = organization_id
        self._refill()

    def _refill(self) -> None:
        self.clear()
        for record in self.records.values():
            if self._shown(record):
                cells = self._cache.get(record.id) or self._cells(record)
                self.add_row(*cells, key=record.id)

    def add_record(self, record: PersonaRecord) -> None:
        """Add a new persona at the top, select it and highlight it for a moment."""
        self.records = {record.id: record, **self.records}
        self._cache[record.id] = self._cells(record)
        if not self._shown(record):
            return
        self._insert_row(self._styled_cells(record, HIGHLIGHT_STYLE), record)
        self.move_cursor(row=self.get_row_index(record.id), animate=False)
        self.set_timer(3.0, lambda: self._unhighlight(record))

    def _position(self, record: PersonaRecord, rows: int) -> int:
        """Where the record goes among the first ``rows`` rows, kept newest first: after the rows as new
        or newer (a binary search; a new record is usually the newest, so 0)."""
        moment = record.created_at
        lo, hi = 0, rows
        while lo < hi:
            mid = (lo + hi) // 2
            key = self._row_locations.get_key(mid)
            other = self.records.get(key.value) if key is not None and key.value is not None else None
            if other is not None and other.created_at >= moment:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _insert_row(self, cells: Row, record: PersonaRecord) -> None:
        """Add the row where it belongs, without sorting every row again.

        DataTable only appends; sorting after it costs every row's key (16 ms
        at 10,000 rows, 81 ms at 50,000). The new row is appended and the rows
        from its place on move down one: one pass over the row index, no key.
        Falls back to a sort if DataTable's internals are not what this was
        written against.
        """
        rows = self.row_count
        try:
            index = self._position(record, rows)
            forward = self._row_locations._forward
        except AttributeError:  # a Textual release that changed its internals
            self.add_row(*cells, key=record.id)
            self.sort("created", key=lambda stamp: stamp.moment, reverse=True)
            return
        row_key = self.add_row(*cells, key=record.id)
        if index == rows:  # the oldest: where add_row put it
            return
        moved = {key: place + 1 if place >= index else place for key, place in forward.items()}
        moved[row_key] = index
        self._row_locations = TwoWayDict(moved)
        self._update_count += 1
        self.refresh()

    def _unhighlight(self, record: PersonaRecord) -> None:
        if record.id not in self.records or not self._shown(record):
            return
        for (key, _, _), cell in zip(COLUMNS, self._cache.get(record.id) or self._cells(record), strict=True):
            self.update_cell(record.id, key, cell)

    def remove_persona(self, persona_id: str) -> None:
        record = self.records.pop(persona_id, None)
        self._cache.pop(persona_id, None)
        if record is not None and self._shown(record):
            self.remove_row(persona_id)

    @property
    def selected_id(self) -> str | None:
        """The id of the persona under the cursor (None with no rows)."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    @property
    def shown_ids(self) -> list[str]:
        """The ids of the rows shown, in the order shown."""
        return [str(row.key.value) for row in self.ordered_rows]

    @property
    def marked_ids(self) -> list[str]:
        """The ids of the rows the user marked, in the order shown (none can be marked yet)."""
        return []

    @property
    def selected(self) -> PersonaRecord | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.records.get(key) if key is not None else None
