"""The table of saved personas: a virtual table over rows from the store's rows index.

Only the lines on screen are drawn (Textual's line API), so 50,000 personas cost
a list of small rows, not 50,000 widgets' worth of cells: filtering, sorting and
a save's new row are list operations. It looks like the DataTable it replaced
(the same component classes and styles): a fixed header, zebra stripes, a row
cursor, fixed column widths fitted to the room it has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets.data_table import RowKey

from persona_tui.models import PersonaRecord
from persona_tui.present import one_line
from persona_tui.storage import TableRow, find_words, has_words, table_row

COLUMNS = (
    ("name", "Name", 20),
    ("age", "Age", 3),
    ("occupation", "Occupation", 20),
    ("location", "Location", 20),
    ("created", "Created", 16),
    ("model", "Model", 14),
)
"""Key, label and width. The widths are fitted to the room the table has (:func:`fit_columns`)."""
NARROWEST = {"name": 12, "age": 3, "occupation": 10, "location": 12, "created": 16, "model": 10}
WIDEST = {"name": 28, "age": 3, "occupation": 34, "location": 34, "created": 16, "model": 20}
SQUEEZED = {"name": 10, "occupation": 7, "location": 8}
"""The least the first four columns get when even NARROWEST does not fit, before the table scrolls sideways."""
GROWING = ("name", "occupation", "location", "model")
"""The columns that take spare room, a cell at a time in turn."""
CELL_PADDING = 2
"""The padding around each cell (one on each side)."""
ALWAYS_SHOWN = 4
"""Name, age, occupation and location always fit; created and model come into view when there is room."""
HIGHLIGHT_STYLE = "bold green"
HIGHLIGHT_SECONDS = 3.0
MARK = "✓ "
"""Before a marked row's name."""
MARKED_STYLE = "bold"
DEFAULT_SORT = ("created", True)
"""Newest first: the order with no arrow in the header."""
LINE_CACHE = 4000
RECENT = 64


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


def _with_zone(label: str) -> str:
    """The 'created' column says which time zone its times are in: ``Created (CET)``."""
    zone = datetime.now().astimezone().tzname() or ""
    return f"{label} ({zone})" if zone and len(label) + len(zone) + 3 <= COLUMNS[4][2] else label


@dataclass
class Column:
    """A column's header and width (cells, without the padding)."""

    key: str
    label: Text
    width: int

    def get_render_width(self, table: object = None) -> int:
        return self.width + CELL_PADDING


def model_label(row: TableRow) -> str:
    return "offline (not AI)" if row.provider == "offline" else row.model


def when(row: TableRow) -> str:
    return datetime.fromtimestamp(row.created).astimezone().strftime("%Y-%m-%d %H:%M")


def cell_texts(row: TableRow) -> list[str]:
    """The row's six cells as shown: one line each, control characters gone (model text is untrusted)."""
    return [
        one_line(row.name)[:60],
        str(row.age),
        one_line(row.occupation)[:60],
        one_line(row.location)[:60],
        when(row),
        one_line(model_label(row))[:60],
    ]


SORT_KEYS: dict[str, Callable[[TableRow], Any]] = {
    "name": lambda row: row.name.casefold(),
    "age": lambda row: row.age,
    "occupation": lambda row: row.occupation.casefold(),
    "location": lambda row: row.location.casefold(),
    "created": lambda row: row.created,
    "model": lambda row: model_label(row).casefold(),
}


def matches(row: TableRow, words: list[str]) -> bool:
    """Whether every word is in the row's text (every field once the search text is loaded; the columns before)."""
    return has_words(row.search, words)


class PersonaTable(ScrollView, can_focus=True):
    """Rows keyed by persona id; cells are plain text, never read as markup."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("delete,d", "app.delete_selected", "Delete", id="delete-persona"),
        Binding("enter", "select_cursor", "Open", show=False, id="open-persona"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        # Rows, not columns: Home and End go to the first and last persona, keeping the Name column in view.
        Binding("home,g,ctrl+home", "scroll_top", "First", show=False, id="first-persona"),
        Binding("end,G,ctrl+end", "scroll_bottom", "Last", show=False, id="last-persona"),
        Binding("j", "cursor_down", "Down", show=False, id="next-persona"),
        Binding("k", "cursor_up", "Up", show=False, id="previous-persona"),
        Binding("slash", "app.find", "Find", show=False, id="find-personas", tooltip="Filter the table as you type"),
        Binding("s", "sort_next", "Sort", show=False, id="sort-column", tooltip="Sort by the next column"),
        Binding("S", "sort_flip", "Flip sort", show=False, id="sort-direction", tooltip="Reverse the order"),
        Binding("space", "toggle_mark", "Mark", show=False, id="mark-persona", tooltip="Mark or unmark the row"),
        Binding(
            "asterisk", "mark_all", "Mark all", show=False, id="mark-all", tooltip="Mark every row shown (again: none)"
        ),
        Binding("u", "app.undo_delete", "Undo delete", show=False, id="undo-delete", tooltip="Restore the last delete"),
        Binding("escape", "clear_find", "Clear find", show=False, id="clear-find", tooltip="Show every row again"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--header",
        "datatable--cursor",
        "datatable--even-row",
        "datatable--odd-row",
        "datatable--header-cursor",
    }

    DEFAULT_CSS = """
    PersonaTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark {
            & > .datatable--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--odd-row {
        }
        & > .datatable--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .datatable--header-cursor {
            background: $accent-darken-1;
            color: $foreground;
        }
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class RowHighlighted(Message):
        """The cursor is on another persona."""

        def __init__(self, table: PersonaTable, persona_id: str) -> None:
            super().__init__()
            self.table = table
            self.persona_id = persona_id
            self.row_key = RowKey(persona_id)

        @property
        def control(self) -> PersonaTable:
            return self.table

    class RowSelected(Message):
        """Enter (or a click) on a persona's row: open it."""

        def __init__(self, table: PersonaTable, persona_id: str) -> None:
            super().__init__()
            self.table = table
            self.persona_id = persona_id
            self.row_key = RowKey(persona_id)

        @property
        def control(self) -> PersonaTable:
            return self.table

    class Changed(Message):
        """The rows shown (or marked) changed: the title's counts are due again."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: dict[str, TableRow] = {}
        """Every persona, shown or not, by id."""
        self._shown: list[TableRow] = []
        self._ordered: list[TableRow] | None = None
        """Every row in the sort's order, shown or not (a filter keeps this order: no sort per key typed)."""
        self._where: dict[str, int] | None = None
        """Each shown id's place; built when asked for after a change."""
        self.marked: set[str] = set()
        self.highlighted: set[str] = set()
        """New rows, drawn in :data:`HIGHLIGHT_STYLE` for a few seconds."""
        self.organization: str | None = None
        """Show only the personas made for this organization (its name, shown in the title)."""
        self.organization_id: str | None = None
        """The filter's organization id: rows that carry one match by it, older ones by name (case ignored)."""
        self.find_text = ""
        """The find text (as typed); its words must all be in a row's text."""
        self.sort_key, self.sort_reverse = DEFAULT_SORT
        self.columns: dict[str, Column] = {
            key: Column(key, Text(_with_zone(label) if key == "created" else label), width)
            for key, label, width in COLUMNS
        }
        self.recent: dict[str, PersonaRecord] = {}
        """The last records saved in this session (shown again without reading their files)."""
        self._lines: dict[tuple[Any, ...], Strip] = {}
        self._last_highlighted: str | None = None

    # ----- what is shown -----

    def load_rows(self, rows: Iterable[TableRow]) -> None:
        """Replace all rows (any order: they are sorted as the table is)."""
        self.rows = {row.id: row for row in rows}
        self._ordered = None
        self._refill(keep=None)

    def set_search_texts(self, texts: dict[str, str]) -> None:
        """Every field's text for the find (read after the rows are shown); rows saved since have theirs."""
        for persona_id, text in texts.items():
            row = self.rows.get(persona_id)
            if row is not None:
                row.search = text
        if self.find_text:
            self._refill()

    def _in_organization(self, row: TableRow) -> bool:
        if self.organization is None:
            return True
        if self.organization_id is not None and row.org_id:
            return row.org_id == self.organization_id  # renamed since: still the same one
        return row.org.casefold() == self.organization.casefold()

    def _shown_row(self, row: TableRow) -> bool:
        return self._in_organization(row) and matches(row, find_words(self.find_text))

    def _refill(self, keep: str | bool | None = True, within: list[TableRow] | None = None) -> None:
        """Filter (only ``within``, when the filter narrowed) and sort again; the cursor stays on the persona
        it was on (``keep``) when still shown."""
        stay = self.selected_id if keep is True else keep or None
        if self._ordered is None:
            self._ordered = sorted(self.rows.values(), key=SORT_KEYS[self.sort_key], reverse=self.sort_reverse)
        shown = within if within is not None else self._ordered
        if self.organization is not None:
            shown = [row for row in shown if self._in_organization(row)]
        for word in find_words(self.find_text):  # one pass a word, a substring test each: 50,000 rows in ms
            shown = [row for row in shown if word in row.search]
        self._shown = list(shown)
        self._where = None
        self._resized()
        place = self.get_row_index(stay) if stay else None
        self._move(place if place is not None else 0, center=True)
        self.post_message(self.Changed())

    def filter(self, organization: str | None, organization_id: str | None = None) -> None:
        """Show only one organization's personas (by id where rows carry one, else by name), or all."""
        self.organization = organization
        self.organization_id = organization_id
        self._refill()

    def find(self, query: str) -> None:
        """Show only the rows with every word of ``query`` (any case) in their text; "" shows all."""
        if query.strip() == self.find_text.strip():
            self.find_text = query
            return
        before = find_words(self.find_text)
        narrower = bool(before) and all(any(old in new for new in find_words(query)) for old in before)
        self.find_text = query
        self._refill(within=self._shown if narrower else None)  # more typed: only the rows shown can match

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by column ``key``: text A to Z, numbers and times low to high, unless ``reverse``."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else key == "created"
        self.sort_key, self.sort_reverse = key, reverse
        self._ordered = None
        labels = {k: _with_zone(v) if k == "created" else v for k, v, _ in COLUMNS}
        for column in self.columns.values():
            arrow = ""
            if column.key == key and (key, reverse) != DEFAULT_SORT:
                arrow = " ▼" if reverse else " ▲"
            column.label = Text(labels[column.key] + arrow)
        self._fit()
        self._refill()

    def action_sort_next(self) -> None:
        keys = [key for key, _, _ in COLUMNS]
        key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_by(key, key == "created")

    def action_sort_flip(self) -> None:
        self.sort_by(self.sort_key, not self.sort_reverse)

    @property
    def sort_text(self) -> str:
        """How the rows are ordered, in words."""
        label = next(v for k, v, _ in COLUMNS if k == self.sort_key).lower()
        return f"{label}, {'descending' if self.sort_reverse else 'ascending'}"

    def add_record(self, record: PersonaRecord) -> None:
        """A new persona: its row goes where it belongs (no sort of every row), selected and highlighted.
        A persona saved again (an edit keeps its id) replaces its row."""
        row = table_row(record)
        if row.id in self.rows:
            self._shown = [other for other in self._shown if other.id != row.id]
            if self._ordered is not None:
                self._ordered = [other for other in self._ordered if other.id != row.id]
        self.rows[row.id] = row
        if self._ordered is not None:
            self._ordered.insert(self._place(self._ordered, row), row)
        self.recent[row.id] = record
        while len(self.recent) > RECENT:
            del self.recent[next(iter(self.recent))]
        if not self._shown_row(row):
            self.post_message(self.Changed())
            return
        lo = self._place(self._shown, row)
        self._shown.insert(lo, row)
        self._where = None
        self.highlighted.add(row.id)
        self._resized()
        self._move(lo)
        self.set_timer(HIGHLIGHT_SECONDS, lambda: self._unhighlight(row.id))
        self.post_message(self.Changed())

    def _place(self, rows: list[TableRow], row: TableRow) -> int:
        """Where ``row`` goes in ``rows`` (in the sort's order): after the rows that sort before it or equal."""
        key = SORT_KEYS[self.sort_key]
        value = key(row)
        lo, hi = 0, len(rows)
        while lo < hi:
            mid = (lo + hi) // 2
            other = key(rows[mid])
            if (other >= value) if self.sort_reverse else (other <= value):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def add_rows(self, rows: Iterable[TableRow]) -> None:
        """Rows back from the trash: shown again in their places, the cursor where it was."""
        for row in rows:
            self.rows[row.id] = row
        self._ordered = None
        self._refill()

    def _unhighlight(self, persona_id: str) -> None:
        self.highlighted.discard(persona_id)
        self._redraw()

    def remove_persona(self, persona_id: str) -> None:
        self.remove_personas([persona_id])

    def remove_personas(self, ids: Iterable[str]) -> None:
        """Take these personas' rows away; the cursor stays at its place (on the row that moved up to it)."""
        gone = {persona_id for persona_id in ids if self.rows.pop(persona_id, None) is not None}
        for persona_id in gone:
            self.recent.pop(persona_id, None)
        if not gone:
            return
        self.marked -= gone
        cursor = self.cursor_row
        before = sum(1 for row in self._shown[:cursor] if row.id in gone)
        self._shown = [row for row in self._shown if row.id not in gone]
        if self._ordered is not None:
            self._ordered = [row for row in self._ordered if row.id not in gone]
        self._where = None
        self._resized()
        self._move(max(cursor - before, 0))
        self.post_message(self.Changed())

    # ----- marks -----

    def action_toggle_mark(self) -> None:
        persona_id = self.selected_id
        if persona_id is None:
            return
        if persona_id in self.marked:
            self.marked.discard(persona_id)
        else:
            self.marked.add(persona_id)
        self._redraw()
        self._move(self.cursor_row + 1)
        self.post_message(self.Changed())

    def action_mark_all(self) -> None:
        """Mark every row shown; when all of them are marked already, clear every mark."""
        shown = {row.id for row in self._shown}
        if shown and shown <= self.marked:
            self.marked.clear()
        else:
            self.marked |= shown
        self._redraw()
        self.post_message(self.Changed())

    def clear_marks(self) -> None:
        self.marked.clear()
        self._redraw()
        self.post_message(self.Changed())

    def action_clear_find(self) -> None:
        if self.find_text:
            self.find("")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_find":
            return bool(self.find_text)
        return True

    # ----- what the app asks -----

    @property
    def row_count(self) -> int:
        """How many rows are shown."""
        return len(self._shown)

    @property
    def selected_id(self) -> str | None:
        """The id of the persona under the cursor (None with no rows)."""
        row = self.selected_row
        return row.id if row is not None else None

    @property
    def selected_row(self) -> TableRow | None:
        if not self._shown:
            return None
        return self._shown[min(self.cursor_row, len(self._shown) - 1)]

    @property
    def shown_ids(self) -> list[str]:
        """The ids of the rows shown, in the order shown."""
        return [row.id for row in self._shown]

    @property
    def shown_rows(self) -> list[TableRow]:
        return list(self._shown)

    @property
    def marked_ids(self) -> list[str]:
        """The ids of the rows the user marked, in the order shown (marks hidden by a filter stay, unlisted)."""
        if not self.marked:
            return []
        return [row.id for row in self._shown if row.id in self.marked]

    def target_rows(self) -> list[TableRow]:
        """What a bulk action applies to: the marked rows shown, else every row shown."""
        marked = [row for row in self._shown if row.id in self.marked]
        return marked or list(self._shown)

    def get_row_at(self, index: int) -> list[str]:
        """The cells of the row shown at ``index``, as drawn (without a mark)."""
        return cell_texts(self._shown[index])

    def get_row_index(self, persona_id: str) -> int | None:
        if self._where is None:
            self._where = {row.id: place for place, row in enumerate(self._shown)}
        return self._where.get(persona_id)

    def title(self) -> str:
        """The border title: how many are shown of how many, the organization, the find text, the marks."""
        shown, total = len(self._shown), len(self.rows)
        parts: list[str] = []
        if self.organization is not None:
            parts.append(one_line(self.organization))
        if self.find_text.strip():
            parts.append(repr(one_line(self.find_text.strip())[:40]))
        count = f"{shown:,} of {total:,}" if parts else f"{shown:,}"
        text = f"{count}, {parts[0]}" if self.organization is not None else count
        for part in parts[1:] if self.organization is not None else parts:
            text += f" · {part}"
        marked = len(self.marked_ids)
        if marked:
            text += f" · {marked:,} marked"
        return f"Personas ({text})"

    # ----- the cursor -----

    def _move(self, row: int, *, center: bool = False) -> None:
        row = max(0, min(row, len(self._shown) - 1)) if self._shown else 0
        self.cursor_row = row
        self._scroll_to_cursor(center=center)

    def watch_cursor_row(self) -> None:
        self.refresh()  # the lines' cache knows which one has the cursor
        persona_id = self.selected_id
        if persona_id is not None and persona_id != self._last_highlighted:
            self._last_highlighted = persona_id
            self.post_message(self.RowHighlighted(self, persona_id))

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        self._move(row)

    def _scroll_to_cursor(self, *, center: bool = False) -> None:
        room = max(self.scrollable_content_region.height - 1, 1)
        top = int(self.scroll_y)
        row = self.cursor_row
        if center and not top <= row < top + room:
            top = max(row - room // 2, 0)
        elif row < top:
            top = row
        elif row >= top + room:
            top = row - room + 1
        if top != int(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self._move(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self._move(self.cursor_row - max(self.scrollable_content_region.height - 1, 1))

    def action_page_down(self) -> None:
        self._move(self.cursor_row + max(self.scrollable_content_region.height - 1, 1))

    def action_scroll_top(self) -> None:
        self._move(0)

    def action_scroll_bottom(self) -> None:
        self._move(len(self._shown) - 1)

    def action_select_cursor(self) -> None:
        persona_id = self.selected_id
        if persona_id is not None:
            self.post_message(self.RowSelected(self, persona_id))

    async def _on_click(self, event: events.Click) -> None:
        if event.y == 0:  # the header: sort by the column clicked (again: the other way)
            key = self._column_at(event.x + int(self.scroll_x))
            if key is not None:
                self.sort_by(key)
            return
        row = int(self.scroll_y) + event.y - 1
        if 0 <= row < len(self._shown):
            again = row == self.cursor_row
            self._move(row)
            if again or event.chain > 1:
                self.action_select_cursor()

    def _column_at(self, x: int) -> str | None:
        left = 0
        for column in self.columns.values():
            left += column.get_render_width()
            if x < left:
                return column.key
        return None

    # ----- size and drawing -----

    def on_resize(self) -> None:
        self._fit()

    def watch_show_vertical_scrollbar(self) -> None:
        # Rows added or removed can bring the scrollbar or take it away, with no resize to say so.
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """Fit the columns to the room beside the scrollbar (cells are cut at their column's width)."""
        room = self.scrollable_content_region.width
        widths = fit_columns(room)
        label = self.columns[self.sort_key].label.cell_len
        if label > widths[self.sort_key]:  # the sorted column's arrow is shown whole (the text columns give way)
            need = label - widths[self.sort_key]
            widths = fit_columns(room - need)
            widths[self.sort_key] += need
        changed = False
        for key, width in widths.items():
            if self.columns[key].width != width:
                self.columns[key].width = width
                changed = True
        if changed:
            self._resized()

    def _resized(self) -> None:
        width = sum(column.get_render_width() for column in self.columns.values())
        self.virtual_size = Size(width, len(self._shown) + 1)
        self._redraw()

    def _redraw(self) -> None:
        """Draw every line again (a mark, a highlight or the widths changed): the cached lines are stale."""
        self._lines.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    def _on_focus(self, event: events.Focus) -> None:
        self._lines.clear()

    def _on_blur(self, event: events.Blur) -> None:
        self._lines.clear()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            return self._line(-1, scroll_x, width)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._shown):
            return Strip.blank(width, self.rich_style)
        return self._line(index, scroll_x, width)

    def _line(self, index: int, scroll_x: int, width: int) -> Strip:
        row = self._shown[index] if index >= 0 else None
        cursor = index == self.cursor_row and row is not None
        persona_id = row.id if row is not None else ""
        key = (
            persona_id,
            index % 2,
            cursor,
            persona_id in self.marked,
            persona_id in self.highlighted,
            scroll_x,
            width,
            self.has_focus,
        )
        strip = self._lines.get(key)
        if strip is None:
            if len(self._lines) > LINE_CACHE:
                self._lines.clear()
            strip = self._render_row(row, index, cursor, scroll_x, width)
            self._lines[key] = strip
        return strip

    def _cells(self, row: TableRow | None) -> list[RenderableType]:
        if row is None:
            return [column.label for column in self.columns.values()]
        texts = cell_texts(row)
        style = HIGHLIGHT_STYLE if row.id in self.highlighted else ""
        if row.id in self.marked:
            texts[0] = MARK + texts[0]
            style = f"{style} {MARKED_STYLE}".strip()
        cells: list[RenderableType] = [
            Text(text, style=style, no_wrap=True, overflow="ellipsis", end="") for text in texts
        ]
        if not style:  # the time fits its column: drawn as DataTable drew it
            cells[4] = Text(texts[4], no_wrap=True, end="")
        return cells

    def _text_style(self, row: TableRow) -> Style | None:
        names = [HIGHLIGHT_STYLE] if row.id in self.highlighted else []
        if row.id in self.marked:
            names.append(MARKED_STYLE)
        return Style.parse(" ".join(names)) if names else None

    def _render_row(self, row: TableRow | None, index: int, cursor: bool, scroll_x: int, width: int) -> Strip:
        base_style = self.rich_style
        if row is None:
            row_style = self.get_component_styles("datatable--header").rich_style
        else:
            parity = "datatable--odd-row" if index % 2 else "datatable--even-row"
            row_style = self.get_component_styles(parity).rich_style
        component = self.get_component_rich_style("datatable--cursor") if cursor else Style()
        post = Style.from_color(color=component.color)
        segments: list[Segment] = []
        if row is None:
            texts = [column.label.plain for column in self.columns.values()]
            text_style: Style | None = None
        else:
            texts = cell_texts(row)
            text_style = self._text_style(row)
            if row.id in self.marked:
                texts[0] = MARK + texts[0]
        for place, (column, text) in enumerate(zip(self.columns.values(), texts, strict=True)):
            pre = row_style + Style.from_meta({"row": index, "column": place}) + component
            segments.extend(_cell(text, column.width, pre, post, text_style, ellipsis=row is not None))
        table_width = sum(column.get_render_width() for column in self.columns.values())
        extend = row_style + component + Style.from_meta({"row": index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * max(0, width - table_width), extend))
        line = Strip(segments).crop(scroll_x, scroll_x + width)
        return line.adjust_cell_length(width, base_style).simplify()


def _cell(text: str, width: int, pre: Style, post: Style, style: Style | None, *, ellipsis: bool) -> list[Segment]:
    """One cell's segments, as DataTable drew a one-line Text in its padding (one cell each side): the text cut
    with an ellipsis (a header is cropped) where the column ends, the rest of the column blank."""
    if cell_len(text) > width:
        text = set_cell_size(text, width - 1) + "…" if ellipsis and width > 1 else set_cell_size(text, width)
    plain = pre + post
    segments = [Segment(" ", plain)]
    if text:
        segments.append(Segment(text, pre + style + post if style is not None else plain))
    fill = width - cell_len(text)
    if fill > 0:
        segments.append(Segment(" " * fill, plain))
    segments.append(Segment(" ", plain))
    return segments
