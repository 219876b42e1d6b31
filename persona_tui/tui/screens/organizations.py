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
from textual.widgets import Button, Footer, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from persona_tui.models import Organization
from persona_tui.storage import OrganizationStore, StoreError
from persona_tui.tui.screens.confirm import ConfirmScreen

FIELDS = ("name", "industry", "product", "audience", "region")
NEW = "__new__"
SAVE, DISCARD, KEEP = "save", "discard", "keep"


class UnsavedScreen(ModalScreen[str]):
    """Asks what to do with an organization's unsaved edits: save, discard, or keep editing."""

    DEFAULT_CSS = """
    UnsavedScreen { align: center middle; }
    """
    BINDINGS = [
        Binding("s", "dismiss('save')", "Save", id="unsaved-save"),
        Binding("d", "dismiss('discard')", "Discard", id="unsaved-discard"),
        Binding("escape,k", "dismiss('keep')", "Keep editing", id="unsaved-keep"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.question = f"{name} has changes that are not saved."

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(Text(self.question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Save (s)", variant="primary", id=f"unsaved-{SAVE}")
                yield Button("Discard (d)", variant="error", id=f"unsaved-{DISCARD}")
                yield Button("Keep editing (k)", variant="default", id=f"unsaved-{KEEP}")

    def on_mount(self) -> None:
        self.query_one(f"#unsaved-{KEEP}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("unsaved-") or KEEP)


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
        first = self.orgs[0] if self.orgs and select != NEW else None
        chosen = next((o for o in self.orgs if o.id == select), first)
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

    def _dirty(self) -> bool:
        """Whether the form holds edits not saved to the organization shown (or, for a new one, any text)."""
        org = self.editing
        for name in FIELDS:
            if self.query_one(f"#org-{name}", Input).value != (getattr(org, name) if org else ""):
                return True
        return self.query_one("#org-notes", TextArea).text != (org.notes if org else "")

    @work(exclusive=True, group="orgs-ask")
    async def _leave(self, then: Organization | None, *, close: bool = False) -> None:
        """Leave the organization being edited (for ``then``, or closing): unsaved edits are asked about first."""
        if self._dirty():
            name = self.query_one("#org-name", Input).value.strip() or "The new organization"
            choice = await self.app.push_screen_wait(UnsavedScreen(name))
            if choice == KEEP or (choice == SAVE and not await self._save()):
                self._show_editing()
                return
            if choice == SAVE and not close:  # the list shows the saved name, then the one picked
                self.reload(select=then.id if then is not None else NEW)
                return
        if close:
            self.dismiss(self.changed)
        elif then is None or then.id != getattr(self.editing, "id", None):
            self._fill(then)
            self._show_editing()

    def _show_editing(self) -> None:
        """Highlight the organization being edited again in the list (after a choice to keep editing)."""
        editing = self.editing
        options = self.query_one(OptionList)
        index = next((i for i, o in enumerate(self.orgs) if editing is not None and o.id == editing.id), None)
        if options.highlighted != index:
            options.highlighted = index

    @on(OptionList.OptionHighlighted)
    def _picked(self, event: OptionList.OptionHighlighted) -> None:
        org = next((o for o in self.orgs if o.id == event.option.id), None)
        if org is not None and org.id != getattr(self.editing, "id", None):
            self._leave(org)

    @on(Button.Pressed, "#orgs-new")
    def action_new(self) -> None:
        self._leave(None)

    @on(Button.Pressed, "#orgs-save")
    async def action_save(self) -> None:
        org = await self._save()
        if org is not None:
            self.reload(select=org.id)

    async def _save(self) -> Organization | None:
        """Save the form; the organization saved, or None when it could not be (the reason shows in the form)."""
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
            return None
        try:
            await self.store.save(org, replacing=current)
        except StoreError as exc:
            self._error(exc.message)
            return None
        self.changed = True
        self.notify(f"Saved {org.name}.", markup=False)
        self.editing = org
        return org

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
        self._leave(None, close=True)
