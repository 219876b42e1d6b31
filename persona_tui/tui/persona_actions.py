"""One persona's actions in the app: edit, regenerate, refine, copy. The app's key actions are thin
calls into here; regenerating and refining run in the app's one generation worker, so they stream with
the same panel, log and cancel key as any generation.

Which persona: the one the details screen shows, else the table's selected row; its full record is
read from its file (``store.find``), so the action works on what is saved, not on a copy in memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.await_complete import AwaitComplete
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker

from persona_tui.engine.pipeline import Rewrite
from persona_tui.engine.pipeline.refine import refine
from persona_tui.export import persona_markdown
from persona_tui.models import GenerationRequest, Persona, PersonaRecord
from persona_tui.narrate import app_hint
from persona_tui.present import one_line
from persona_tui.storage import StoreError
from persona_tui.tui.screens.detail import DetailScreen
from persona_tui.tui.screens.diff import DiffScreen
from persona_tui.tui.screens.edit import EditScreen, InstructionScreen

if TYPE_CHECKING:
    from persona_tui.config import Settings
    from persona_tui.engine.estimate import EstimateBook
    from persona_tui.engine.events import Event
    from persona_tui.engine.providers import Provider
    from persona_tui.storage import PersonaStore
    from persona_tui.tui.widgets.live_log import LiveLog
    from persona_tui.tui.widgets.persona_table import PersonaTable
    from persona_tui.tui.widgets.persona_view import PersonaView

T = TypeVar("T")


class PersonaApp(Protocol):
    """What these actions use of the app (the app imports this module, so it is not imported here)."""

    table: PersonaTable
    store: PersonaStore
    paths: dict[str, Path]
    persona_view: PersonaView
    log_pane: LiveLog
    provider: Provider
    settings: Settings
    estimates: EstimateBook | None
    clock: Callable[[], float]
    _generation: Worker[None] | None

    @property
    def screen(self) -> Screen[Any]: ...
    @property
    def screen_stack(self) -> list[Screen[Any]]: ...
    @property
    def running(self) -> bool: ...
    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = ..., markup: bool = ...) -> None: ...
    async def push_screen_wait(self, screen: Screen[T]) -> T: ...
    def pop_screen(self) -> AwaitComplete: ...
    def begin_run(self, request: GenerationRequest, already: int = 0, note: str = "") -> asyncio.Event: ...
    def _run_generation(
        self, request: GenerationRequest, cancel: asyncio.Event, rewrite: Rewrite | None = None
    ) -> Any: ...
    def run_worker(
        self, work: Any, *, group: str = ..., exclusive: bool = ..., exit_on_error: bool = ...
    ) -> Worker[Any]: ...
    def handle_event(self, event: Event) -> None: ...
    def copy_to_clipboard(self, text: str) -> None: ...


BUSY = "A generation is running; wait for it to end (Esc cancels it)."
NO_ROW = "Select a persona in the table first (ctrl+t moves there)."


def target_id(app: PersonaApp) -> str | None:
    """The persona an action applies to: the details screen's, else the table's selected row."""
    screen = app.screen
    if isinstance(screen, DetailScreen):
        return screen.record.id
    if len(app.screen_stack) == 1:
        return app.table.selected_id
    return None


async def target(app: PersonaApp) -> tuple[PersonaRecord, Path] | None:
    """The full record (read from its file) and its path, or None after saying why there is none."""
    persona_id = target_id(app)
    if persona_id is None:
        app.notify(NO_ROW, severity="warning", markup=False)
        return None
    try:
        return await app.store.find(persona_id)
    except StoreError as err:
        app.notify(
            f"{err.message} {app_hint(err.hint)}".strip(), title="Persona not read", severity="error", markup=False
        )
        return None


def show_changed(app: PersonaApp, record: PersonaRecord, path: Path) -> None:
    """A persona was saved anew under its own id: its row, its pane and its open details show it."""
    if record.id in app.table.records:
        app.table.remove_persona(record.id)
    app.table.add_record(record)
    app.paths[record.id] = path
    if not app.running:
        app.persona_view.show_record(record)
    for screen in app.screen_stack:
        if isinstance(screen, DetailScreen) and screen.record.id == record.id:
            screen.show(record, path)


async def edit(app: PersonaApp) -> None:
    """The edit form; a valid change is saved atomically, the earlier version kept in the record."""
    found = await target(app)
    if found is None:
        return
    record, _ = found
    persona: Persona | None = await app.push_screen_wait(EditScreen(record))
    if persona is None:
        return
    if persona == record.persona:
        app.notify(f"No change to {one_line(record.persona.name)}; nothing saved.", markup=False)
        return
    new = record.with_change(persona, "edit")
    try:
        path = await app.store.replace(new)
    except StoreError as err:
        app.notify(f"{err.message} {app_hint(err.hint)}".strip(), title="Not saved", severity="error", markup=False)
        return
    show_changed(app, new, path)
    changed = ", ".join(new.versions[-1].changed) if new.versions else ""
    sentence = f"Saved {one_line(persona.name)} ({changed} changed); version {new.version_count} of it."
    app.log_pane.message(sentence)
    app.notify(sentence, title="Persona edited", markup=False)


def _leave_details(app: PersonaApp) -> None:
    """Back to the main screen, where the panel shows the work."""
    while len(app.screen_stack) > 1 and isinstance(app.screen, DetailScreen):
        app.pop_screen()


async def regenerate(app: PersonaApp) -> None:
    """The same request and slot, a new persona streamed in its place; the old one stays until it is saved."""
    if app.running:
        app.notify(BUSY, severity="warning", markup=False)
        return
    found = await target(app)
    if found is None or app.running:
        return
    record, _ = found
    _leave_details(app)
    rewrite = Rewrite.again(record)
    request = rewrite.request()
    name = one_line(record.persona.name)
    cancel = app.begin_run(request, note=f"Regenerating {name} in the same slot (kept until the new one is saved)")
    app._generation = app._run_generation(request, cancel, rewrite)


async def refine_persona(app: PersonaApp) -> None:
    """Ask for an instruction, stream the revision, show what changed; saved only if accepted."""
    if app.running:
        app.notify(BUSY, severity="warning", markup=False)
        return
    found = await target(app)
    if found is None:
        return
    record, _ = found
    instruction = await app.push_screen_wait(InstructionScreen(record.persona.name))
    if not instruction or app.running:
        return
    _leave_details(app)
    request = GenerationRequest(description=record.request.description or "a persona", count=1)
    note = f"Refining {one_line(record.persona.name)}: {one_line(instruction)[:200]}"
    cancel = app.begin_run(request, note=note)
    app._generation = app.run_worker(
        _refining(app, record, instruction, cancel), group="generation", exclusive=True, exit_on_error=False
    )


async def _refining(app: PersonaApp, record: PersonaRecord, instruction: str, cancel: asyncio.Event) -> None:
    async def decide(old: PersonaRecord, new: PersonaRecord) -> bool:
        screen = DiffScreen(old, new, instruction)
        accepted: bool = await app.push_screen_wait(screen)
        if not accepted:
            app.log_pane.message(f"Discarded the revision of {one_line(old.persona.name)}; nothing saved")
        return accepted

    async for event in refine(
        record,
        instruction,
        provider=app.provider,
        store=app.store,
        decide=decide,
        settings=app.settings,
        estimates=app.estimates,
        cancel=cancel,
        clock=app.clock,
    ):
        app.handle_event(event)


async def copy(app: PersonaApp, fmt: str = "md") -> None:
    """The persona to the clipboard, through the terminal (OSC 52), as a Markdown card or its JSON record."""
    found = await target(app)
    if found is None:
        return
    record, _ = found
    if fmt == "json":
        text, how = json.dumps(record.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n", "JSON"
    else:
        text, how = persona_markdown(record), "Markdown"
    app.copy_to_clipboard(text)
    app.notify(f"Copied {one_line(record.persona.name)} as {how}", markup=False)
