"""Create, edit and delete organizations: who the personas are for."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, OptionList, TextArea
from textual.widgets.option_list import Option

from persona_tui.models import Organization
from persona_tui.storage import OrganizationStore, StoreError
from persona_tui.tui.screens.confirm import ConfirmScreen

FIELDS = ("name", "industry", "product", "audience", "region")
NEW = "__new__"


class OrganizationsScreen(ModalScreen[bool]):
    """Dismisses with True when anything was changed, so the form can reload its list."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="orgs-close"),
        Binding("ctrl+s", "save", "Save", id="orgs-save", priority=True),
        Binding("ctrl+n", "new", "New", id="orgs-new", priority=True),
    ]

    def __init__(self, store: OrganizationStore) -> None:
        super().__init__()
        self.store = store
        self.orgs: list[Organization] = []
        self.editing: Organization | None = None
        self.changed = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="orgs-box") as box:
            box.border_title = "Organizations"
            with Vertical(id="orgs-list-column"):
                yield OptionList(id="orgs-list")
                yield Button("New (ctrl+n)", id="orgs-new")
            with VerticalScroll(id="orgs-form"):
                for name in FIELDS:
                    field = Input(id=f"org-{name}", max_length=200 if name == "name" else 2000)
                    field.border_title = name.capitalize()
                    yield field
                notes = TextArea(id="org-notes", soft_wrap=True)
                notes.border_title = "Notes"
                yield notes
                yield Label("", id="orgs-error")
                with Horizontal(id="orgs-buttons"):
                    yield Button("Save (ctrl+s)", id="orgs-save", variant="primary")
                    yield Button("Delete", id="orgs-delete", variant="error")
                    yield Button("Close (Esc)", id="orgs-close")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    @work(exclusive=True, group="orgs")
    async def reload(self, select: str | None = None) -> None:
        try:
            self.orgs, _ = await self.store.load_all()
        except StoreError as exc:
            self._error(exc.message)
            return
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(Text(o.name), id=o.id) for o in self.orgs])
        chosen = next((o for o in self.orgs if o.id == select), self.orgs[0] if self.orgs else None)
        self._fill(chosen)
        if chosen is not None:
            options.highlighted = self.orgs.index(chosen)

    def _fill(self, org: Organization | None) -> None:
        self.editing = org
        for name in FIELDS:
            self.query_one(f"#org-{name}", Input).value = getattr(org, name) if org else ""
        self.query_one("#org-notes", TextArea).text = org.notes if org else ""
        self.query_one("#orgs-delete", Button).disabled = org is None
        self.query_one("#org-name", Input).focus()
        self._error("")

    def _error(self, message: str) -> None:
        label = self.query_one("#orgs-error", Label)
        label.update(Text(message))
        label.set_class(bool(message), "-shown")

    @on(OptionList.OptionHighlighted)
    def _picked(self, event: OptionList.OptionHighlighted) -> None:
        org = next((o for o in self.orgs if o.id == event.option.id), None)
        if org is not None and org is not self.editing:
            self._fill(org)

    @on(Button.Pressed, "#orgs-new")
    def action_new(self) -> None:
        self.query_one(OptionList).highlighted = None
        self._fill(None)

    @on(Button.Pressed, "#orgs-save")
    async def action_save(self) -> None:
        values: dict[str, object] = {name: self.query_one(f"#org-{name}", Input).value for name in FIELDS}
        values["notes"] = self.query_one("#org-notes", TextArea).text
        current = self.editing
        if current is not None:
            values = {**current.model_dump(), **values, "updated_at": datetime.now(UTC)}
        try:
            org = Organization.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            self._error(f"The {first['loc'][0]} is not valid: {first['msg']}.")
            return
        try:
            await self.store.save(org, replacing=current)
        except StoreError as exc:
            self._error(exc.message)
            return
        self.changed = True
        self.notify(f"Saved {org.name}.", markup=False)
        self.reload(select=org.id)

    @on(Button.Pressed, "#orgs-delete")
    @work(group="orgs-delete")
    async def _delete(self) -> None:
        org = self.editing
        if org is None:
            return
        if not await self.app.push_screen_wait(
            ConfirmScreen(f"Delete the organization {org.name}? Its personas are kept.")
        ):
            return
        try:
            await self.store.delete(org.name)
        except StoreError as exc:
            self._error(exc.message)
            return
        self.changed = True
        self.notify(f"Deleted {org.name}.", markup=False)
        self.reload()

    @on(Button.Pressed, "#orgs-close")
    def action_close(self) -> None:
        self.dismiss(self.changed)
