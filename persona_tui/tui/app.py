"""The persona-tui app: a request form, the live generation panel and log, and the saved personas.

The app holds no generation logic. A key press starts one worker that iterates
the engine's ``generate()``; :meth:`PersonaApp.handle_event` turns each event
into widget state. Widgets redraw on timers, so a fast stream costs a bounded
number of redraws. Build it with :func:`make_app`, as the CLI and tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from persona_tui.config import (
    ConfigWriteError,
    Settings,
    SettingsError,
    default_config_path,
    env_override,
    remember_setting,
)
from persona_tui.engine import events as ev
from persona_tui.engine.diversity import DiversityReport, diversity_report
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.pipeline import Rewrite, already_saved, generate, pairs_to_rewrite
from persona_tui.engine.plan import MIX_HELP, parse_mix
from persona_tui.engine.providers import Provider, make_provider, server_models, setup_hint
from persona_tui.engine.providers.listing import lister_of
from persona_tui.engine.providers.registry import key_hint
from persona_tui.export import export_target, export_text
from persona_tui.models import COUNT_MAX, GenerationRequest, Organization, RequestError, RunRecord
from persona_tui.narrate import (
    app_hint,
    describe_event,
    event_details,
    finished_summary,
    folded_thinking,
    saved_summary,
    thinking_fold_sentence,
)
from persona_tui.present import one_line
from persona_tui.storage import OrganizationStore, PersonaStore, RunStore, StoreError, atomic_write, index_entry
from persona_tui.tui import persona_actions
from persona_tui.tui.screens.confirm import ConfirmScreen
from persona_tui.tui.screens.detail import DetailScreen
from persona_tui.tui.screens.help import HelpScreen, key_rows
from persona_tui.tui.screens.models import ModelPickerScreen
from persona_tui.tui.screens.organizations import OrganizationsScreen
from persona_tui.tui.screens.report import REWRITE, ReportScreen
from persona_tui.tui.widgets.generation_panel import GenerationPanel
from persona_tui.tui.widgets.live_log import LiveLog
from persona_tui.tui.widgets.persona_table import PersonaTable
from persona_tui.tui.widgets.persona_view import PersonaView

TALL_ROWS = 40
TURN_BUDGET = 0.008
"""Seconds of events handled in one turn of the loop before the screen gets its turn."""
RESUME_KEY = "ctrl+b"
"""Back to an unfinished batch. Not ctrl+shift+r: most terminals send it as ctrl+r, the fold key."""
COUNT_SENTENCE = f"The count must be a whole number from 1 to {COUNT_MAX:,}."
NO_EXA_KEY = (
    "EXA_API_KEY is not set, so the web search will be skipped and the personas made without it. "
    "Set EXA_API_KEY=… in the environment and start persona-tui again to ground them in search results."
)
BUSY = "A generation is already running; Esc cancels it."
WIDE_HEADER = 100
"""Columns from which the header has room for the offline generator's hint on getting a real model."""
MIN_SIZE = (70, 20)
"""Columns and rows below which the layout breaks: a notice is shown instead."""
MAIN_SCREEN_ONLY = frozenset(
    {
        "generate",
        "generate_busy",
        "export",
        "focus_table",
        "focus_form",
        "organizations",
        "cancel",
        "toggle_thinking",
        "choose_model",
        "report",
    }
)
NO_PERSONAS = "No personas yet. Describe the people you want and press ctrl+g."
NO_RUN = "No run to report on yet: generate a batch first (ctrl+g), then ctrl+d shows how diverse it came out."
PERSONA_ACTIONS = frozenset({"edit_persona", "regenerate_persona", "refine_persona", "copy_persona"})
FOLD_KEY = "ctrl+r"
"""Folds the model's reasoning text in the log, or shows it again."""
PULSE_SECONDS = 1 / 8
"""The app's one drawing clock. The panel's clock and spinner, the log's queued tokens and the
persona taking shape are redrawn on its beats, so they share frames: each of them on its own
timer cost a frame of its own, and a frame that lays out the screen costs ~10 ms."""
FAST_TOKENS_PER_SECOND = 500
"""Above this rate nobody reads along: the panel and the log are drawn every second beat and the
persona taking shape once a second, which leaves the time to the stream itself."""


class PersonaApp(App[None]):
    """Generate personas and watch every stage of the work."""

    CSS_PATH = "app.tcss"
    TITLE = "persona-tui"

    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", id="generate", priority=True, tooltip="Generate from the form"),
        Binding(
            "ctrl+g",
            "generate_busy",
            "Generate",
            priority=True,
            show=False,
            tooltip="Says that a generation is already running (the footer shows Cancel meanwhile)",
        ),
        Binding("escape", "cancel", "Cancel", id="cancel", priority=True, tooltip="Stop the running generation"),
        # F1 early, so a narrow footer cuts a key the help lists rather than the help itself
        Binding("f1", "help", "Help", id="help", priority=True, tooltip="Every key of this screen, grouped"),
        Binding(
            "ctrl+s",
            "export('json')",
            "Export",
            id="export",
            priority=True,
            tooltip="Export the personas shown as JSON",
        ),
        Binding("ctrl+t", "focus_table", "Personas", id="focus-table", tooltip="Move to the table of personas"),
        Binding("ctrl+n", "focus_form", "New", id="focus-form", tooltip="Move to the description field"),
        Binding("ctrl+o", "organizations", "Orgs", id="organizations", tooltip="Create, edit and delete organizations"),
        Binding(
            FOLD_KEY,
            "toggle_thinking",
            "Thinking",
            id="toggle-thinking",
            tooltip="Fold the model's thinking in the log, or show it again",
        ),
        Binding("ctrl+l", "choose_model", "Model", id="choose-model", tooltip="Choose one of the server's models"),
        Binding(
            "ctrl+d",
            "report",
            "Report",
            id="report",
            show=False,  # a priority key would lead the footer; the end of a batch names it instead
            priority=True,  # also from the description field, where ctrl+d would delete one character (Delete does)
            tooltip="How diverse the last run came out; writes its near-duplicates again",
        ),
        Binding(
            RESUME_KEY,
            "resume_run",
            "Resume",
            id="resume-run",
            show=False,
            priority=True,
            tooltip="Continue the newest unfinished run where it stopped",
        ),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True, tooltip="Quit (cancels a running generation)"),
        Binding("question_mark", "help", "Help", id="help-question", show=False, tooltip="Every key of this screen"),
        Binding("e", "edit_persona", "Edit", id="edit-persona", show=False, tooltip="Edit the persona's fields"),
        Binding(
            "r",
            "regenerate_persona",
            "Regenerate",
            id="regenerate-persona",
            show=False,
            tooltip="A new persona in the same slot; the old one is kept until it is saved, then in its versions",
        ),
        Binding(
            "f",
            "refine_persona",
            "Refine",
            id="refine-persona",
            show=False,
            tooltip="Revise the persona by an instruction; see the changes, then accept (a) or discard (d)",
        ),
        Binding("c", "copy_persona", "Copy", id="copy-persona", show=False, tooltip="Copy the persona as Markdown"),
        Binding(
            "ctrl+c",
            "interrupt",
            "Cancel/quit",
            id="interrupt",
            priority=True,
            show=False,
            tooltip="Cancel the running generation; copy selected text; otherwise (or pressed again) quit",
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        store: PersonaStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = datetime.now,
        estimates: EstimateBook | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.provider = provider
        self.store = store
        self.clock = clock
        self.now = now
        self.estimates = estimates
        self._beats = 0
        self.org_store = OrganizationStore(settings.organizations_dir)
        self.paths: dict[str, Path] = {}
        self.organizations: dict[str, Organization] = {}
        """The organizations known, by id (the table's filter offers them)."""
        self.count = 1
        self._cancel: asyncio.Event | None = None
        self._generation: Worker[None] | None = None
        self.show_thinking = True
        """Whether the log streams the model's reasoning text (the fold key toggles it)."""
        self._reasoning_seen = False
        """A model has streamed reasoning into the log: from then on the fold key applies."""
        self._folded: list[str] = []
        """The current thought's reasoning text while it is folded (shown if unfolded mid-thought)."""
        self._folded_tokens = 0
        self._folded_shown = 0
        """The reasoning tokens of the current thought, folded, and the count the log's line shows."""
        self.sub_title = self._model_title()
        self.last_report: DiversityReport | None = None
        """The diversity report of the last run in this session (ctrl+d shows it)."""
        self.last_description = ""
        self._refused_mix: str | None = None
        """The mix text last refused: its error stays until the text changes."""

    def _model_title(self, *, wide: bool = True) -> str:
        """The header's words on the model: its name and server (the server's text, on one line); when
        ``wide``, for the offline generator, how to get a real model (the log says it too)."""
        label = one_line(self.provider.label)
        chosen = self.settings.provider != "auto"  # offline on purpose: no nagging about keys
        return label if self.provider.is_ai or chosen or not wide else f"{label} · {key_hint()}"

    # ----- layout -----

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form"):
            with Horizontal(id="form-row"):
                description = Input(
                    placeholder="e.g. nurses in rural Kenya aged 40-60",  # whole at 80 columns
                    id="description",
                    max_length=4000,
                )
                description.border_title = "Description"
                yield description
                count = Input(value="1", id="count", type="integer", max_length=5, tooltip=f"1 to {COUNT_MAX:,}")
                count.border_title = "Count"
                yield count
                yield Button("Generate", id="generate", variant="primary", tooltip="ctrl+g")
                yield Button("Cancel", id="cancel", variant="error", disabled=True, tooltip="Esc")
            with Horizontal(id="options-row"):
                yield Label("For", id="org-label")
                yield Select[str]([], prompt="no organization (ctrl+o)", id="org", allow_blank=True, compact=True)
                yield Input(
                    placeholder="mix: ages 25-60; she/her 60%; tech novice:2 expert:1",
                    id="mix",
                    compact=True,
                    max_length=1000,
                    tooltip="Shape the population plan: " + MIX_HELP,
                )
                yield Checkbox(
                    "Web (Exa)",
                    id="enrich",
                    compact=True,
                    tooltip="Ground the personas in web search results first; needs EXA_API_KEY",
                )
            yield Label("", id="form-error")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                panel = GenerationPanel(clock=self.clock, model_label=self.provider.label, id="panel")
                panel.border_title = "Generation"
                yield panel
                log = LiveLog(now=self.now, id="log")
                log.border_title = "Log"
                yield log
            with Vertical(id="right"):
                table_filter = Select[str](
                    [], prompt="Showing all organizations", id="table-filter", allow_blank=True, compact=True
                )
                yield table_filter
                table = PersonaTable(id="table")
                table.border_title = "Personas: loading…"
                yield table
                yield PersonaView(id="persona")
        yield Static("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        # Looked up once: events keep arriving while the app shuts down, after a query would fail.
        self.panel = self.query_one(GenerationPanel)
        self.log_pane = self.query_one(LiveLog)
        self.table = self.query_one(PersonaTable)
        self.persona_view = self.query_one(PersonaView)
        self.generate_button = self.query_one("#generate", Button)
        self.cancel_button = self.query_one("#cancel", Button)
        self._fit_size(self.size)
        self.query_one("#description", Input).focus()
        self.set_interval(PULSE_SECONDS, self._pulse)
        self.log_pane.message(f"Model: {self.provider.label}")
        if not self.provider.is_ai:
            hint = f" {setup_hint(self.settings)}" if self.settings.provider == "auto" else ""
            self.log_pane.message(f"Personas are composed from templates, not by a model.{hint}")
        self._load_personas()

    def _pulse(self) -> None:
        """One beat of the drawing clock (see :data:`PULSE_SECONDS`)."""
        self._beats += 1
        fast = self.panel.running and self.panel.rate > FAST_TOKENS_PER_SECOND
        if not fast or self._beats % 2 == 0:
            self.panel.tick()
            self._write_folded()
            self.log_pane.flush(whole_words=True)
        if self._beats % (8 if fast else 2) == 0:
            self.persona_view.draw_partial()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_size(event.size)  # self.size is still the old size while the event is handled

    def _fit_size(self, size: Size) -> None:
        """The checklist's layout for the height; below the smallest usable size, a notice instead."""
        if "panel" not in self.__dict__:
            return
        self.panel.set_class(size.height >= TALL_ROWS, "-tall")
        self.sub_title = self._model_title(wide=size.width >= WIDE_HEADER)
        small = size.width < MIN_SIZE[0] or size.height < MIN_SIZE[1]
        main = self.screen_stack[0]
        was_small = main.has_class("-too-small")
        main.set_class(small, "-too-small")
        if was_small and not small:  # the layout is back: so is the place the user was typing in
            self.call_after_refresh(self._refocus)
        elif small and not was_small:
            self._focus_before_small = self.focused
        if small:
            need = f"{MIN_SIZE[0]}x{MIN_SIZE[1]}"
            notice = f"Terminal too small (need {need}, now {size.width}x{size.height}). Enlarge it; ctrl+q quits."
            self.query_one("#too-small", Static).update(notice)

    def _refocus(self) -> None:
        before = getattr(self, "_focus_before_small", None)
        target = before if before is not None and before.is_attached else self.query_one("#description", Input)
        target.focus()

    # ----- loading -----

    @work(group="load", exit_on_error=False)
    async def _load_personas(self) -> None:
        await self._check_data_folder()
        await self._load_organizations()
        # Thousands of records and table cells are made here, and all of them live as long as
        # the app. The collector is paused while they are made (each full collection would walk
        # them all again), then they are moved out of its reach with gc.freeze(), so the full
        # collections that come later (hundreds of ms with 10,000 personas) never stall a frame.
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                result = await self.store.load_all()
            except StoreError as exc:
                self._unreadable(f"{exc.message} {app_hint(exc.hint)}".strip())
                return
            if self.estimates is None:
                self.estimates = await asyncio.to_thread(EstimateBook.load, self.settings.data_dir)
            self.paths.update(result.paths)
            table = self.table
            await table.load_async(result.records)
        finally:
            if collecting:
                gc.enable()
        self._title_table()
        self.call_after_refresh(self._settle)
        await self._offer_resume()
        if result.records:
            self.persona_view.show_record(result.records[0])
        else:
            self.persona_view.show_message(NO_PERSONAS)
        if result.problems:
            for problem in result.problems:
                self.log_pane.message(f"Skipped {problem.path.name}: {problem.reason}")
            self.notify(
                f"{len(result.problems)} file(s) in {self.store.root} could not be read; see the log.",
                title="Some personas were skipped",
                severity="warning",
                markup=False,
            )

    def _unreadable(self, sentence: str) -> None:
        """The personas could not be read: the table says so rather than loading forever, and why."""
        self.table.border_title = "Personas: could not be read"
        self.persona_view.show_message(sentence)
        self.log_pane.message(sentence)
        self.notify(sentence, title="Personas not loaded", severity="error", markup=False, timeout=10)

    async def _check_data_folder(self) -> None:
        """Say at start, in one sentence, why the data folder cannot keep personas (if it cannot)."""
        problem = await self.store.problem()
        if problem is not None:
            sentence = folder_sentence(problem)
            self.log_pane.message(sentence)
            self.notify(sentence, title="Data folder", severity="warning", markup=False, timeout=10)

    def _settle(self) -> None:
        """Once the table is drawn: freeze what startup made, then warm the provider in a thread.

        No collection first: the collector was off while the records were made, and with 10,000
        of them a full collection here took 150 ms, a stall just as the user starts typing.
        The little garbage in cycles that startup left is frozen with the rest."""
        gc.freeze()
        self.run_worker(asyncio.to_thread(self.provider.prepare), group="prepare", exit_on_error=False)

    async def _load_organizations(self) -> None:
        """Fill the organization choices of the form and of the table's filter."""
        try:
            orgs, problems = await self.org_store.load_all()
        except StoreError as exc:
            self.log_pane.message(exc.message)
            return
        for problem in problems:
            self.log_pane.message(f"Skipped {problem.path.name}: {problem.reason}")
        self.organizations = {o.id: o for o in orgs}
        choices = {  # the form names the organization; the filter follows its id, so a renamed one keeps its personas
            "#org": [(o.name, o.name) for o in orgs],
            "#table-filter": [(o.name, o.id) for o in orgs],
        }
        for select_id, options in choices.items():
            select = self.query_one(select_id, Select)
            previous = select.value
            select.set_options(options)
            if previous in {value for _, value in options}:
                select.value = previous

    def action_organizations(self) -> None:
        def done(changed: bool | None) -> None:
            if changed:
                self.run_worker(self._load_organizations(), group="orgs", exclusive=True)

        self.push_screen(OrganizationsScreen(self.org_store), done)

    @on(Checkbox.Changed, "#enrich")
    def _enrich_ticked(self, event: Checkbox.Changed) -> None:
        """Ticking the web search with no key: say at once that it will be skipped, and how to set the key."""
        if event.value and not self.settings.exa_api_key:
            self.notify(NO_EXA_KEY, title="Web search", severity="warning", markup=False, timeout=10)

    @on(Select.Changed, "#table-filter")
    def _filter_table(self, event: Select.Changed) -> None:
        org = self.organizations.get(event.value) if isinstance(event.value, str) else None
        self.table.filter(org.name if org else None, org.id if org else None)
        self._title_table()

    def _show_selected(self) -> None:
        """The persona pane shows the table's selected row, or says the table is empty."""
        selected = self.table.selected
        if selected is not None:
            self.persona_view.show_record(selected)
        elif self.table.records:
            self.persona_view.show_message("No persona of this organization; choose another in the filter.")
        else:
            self.persona_view.show_message(NO_PERSONAS)

    def _title_table(self) -> None:
        table = self.table
        if table.organization is None:
            table.border_title = f"Personas ({table.row_count})"
        else:
            table.border_title = f"Personas ({table.row_count} of {len(table.records)}, {table.organization})"

    # ----- generating -----

    def action_generate(self) -> None:
        """Start a generation once the field being typed in has taken every key sent before this one.

        Keys wait in the focused field's own queue while ctrl+g, an app binding, runs at once: typed
        fast (or pasted) during a busy moment, the description would otherwise be read cut short.
        """
        focused = self.focused
        if isinstance(focused, Input):
            focused.call_later(self.start_generation)
        else:
            self.start_generation()

    def action_generate_busy(self) -> None:
        self.notify(BUSY, severity="warning", markup=False)

    def action_generate_batch_api(self) -> None:
        """Generate the form's personas through the server's Batch API (the palette's entry)."""
        self.start_generation(batch_api=True)

    def start_generation(self, *, batch_api: bool = False) -> None:
        """Validate the form and start the generation worker (what ctrl+g does once typing is in)."""
        if self.running:
            self.action_generate_busy()
            return
        description = self.query_one("#description", Input)
        count_input = self.query_one("#count", Input)
        error = self.query_one("#form-error", Label)
        count = _count_of(count_input.value)
        if count is None:  # "-", empty, or above the most: said the same way, whatever was typed
            self._show_form_error(COUNT_SENTENCE, count_input)
            return
        try:
            org = self.query_one("#org", Select).value
            enrich = self.query_one("#enrich", Checkbox).value
            mix_input = self.query_one("#mix", Input)
            mix = parse_mix(mix_input.value)
            request = GenerationRequest.create(
                description.value, count, org if isinstance(org, str) else None, enrich, mix
            )
        except RequestError as exc:
            target = {"count": count_input, "mix": mix_input}.get(exc.field, description)
            self._refused_mix = mix_input.value if target is mix_input else None
            self._show_form_error(exc.message, target)
            return
        if error.has_class("-shown"):  # touched only when an error shows: each update lays the screen out
            for widget in (description, count_input, mix_input):
                widget.remove_class("-invalid")
            error.update("")
            error.remove_class("-shown")
        self._generation = self._run_generation(request, self.begin_run(request), batch_api=batch_api)

    def begin_run(self, request: GenerationRequest, already: int = 0, note: str = "") -> asyncio.Event:
        """Show a run as started (panel, buttons, log) and return the event that cancels it.

        What a key press does before the worker starts; the scenes of the tests start a run with
        it too, then feed hand-made events to :meth:`handle_event`. ``already``: of a resumed
        run, the personas saved before (the rest are made now; tags keep the run's numbers).
        """
        count = request.count
        self.count = count
        self.last_description = request.description
        self._cancel = asyncio.Event()
        self.panel.begin(count, already)
        self._set_running(True)
        self.log_pane.message(note or f"Generating {count} persona(s): {one_line(request.description)[:200]}")
        return self._cancel

    async def _offer_resume(self) -> None:
        """At start: an unfinished run is named, with the key that continues it."""
        try:
            run = await RunStore(self.settings.runs_dir).unfinished()
        except StoreError:
            return
        if run is None:
            return
        saved = len(run.saved) or len(run.persona_ids)
        self.notify(
            f"An unfinished run ({one_line(run.request.description)[:60]}) has {saved:,} of {run.count:,} saved: "
            f"{RESUME_KEY} or the palette's 'Resume run' continues it.",
            title="Unfinished run",
            markup=False,
            timeout=15,
        )

    @work(exclusive=True, group="resume", exit_on_error=False)
    async def action_resume_run(self) -> None:
        """Continue the newest unfinished run in the generation worker: its plan, only the personas not saved."""
        if self.running:
            self.action_generate_busy()
            return
        try:
            run = await RunStore(self.settings.runs_dir).unfinished()
        except StoreError as err:
            self.notify(err.message, title="Runs not read", severity="error", markup=False)
            return
        if run is None:
            self.notify("There is no unfinished run to resume.", markup=False)
            return
        provider = self._provider_of(run)
        if provider is None:
            return
        request = run.to_request()
        mine = [index_entry(r) for r in self.table.records.values() if r.run_id == run.id]
        saved = len(already_saved(run, mine))
        cancel = self.begin_run(request, min(saved, run.count - 1))
        own = " (the run's model)" if provider is not self.provider else ""
        self.log_pane.message(
            f"Resuming run {run.id[:8]} ({saved:,} of {run.count:,} saved) with {provider.label}{own}"
        )
        self._generation = self._run_generation(request, cancel, resume=run, provider=provider)

    def _provider_of(self, run: RunRecord) -> Provider | None:
        """The provider and model the run was made with (a run is one population, from one model); the
        app's own when they are the same. None, with the reason said, when that one cannot be set up."""
        if (run.provider, run.model) in ((self.provider.name, self.provider.model), ("", "")):
            return self.provider
        try:
            return make_provider(dataclasses.replace(self.settings, provider=run.provider, model=run.model))
        except SettingsError as exc:
            sentence = f"Run {run.id[:8]} was made with {run.model} ({run.provider}), which is not set up here: {exc}"
            self.notify(sentence, title="Run not resumed", severity="error", markup=False, timeout=10)
            self.log_pane.message(sentence)
            return None

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _run_generation(
        self,
        request: GenerationRequest,
        cancel: asyncio.Event,
        rewrite: Rewrite | None = None,
        resume: RunRecord | None = None,
        provider: Provider | None = None,
        batch_api: bool = False,
    ) -> None:
        problem = await self.store.problem()
        if problem is not None:  # refused before anything is sent: a model's answer must have somewhere to go
            self._refuse_run(folder_sentence(problem))
            return
        try:
            await self._generate_with(request, cancel, rewrite, resume, provider or self.provider, batch_api)
        finally:
            if provider is not None and provider is not self.provider:  # the resumed run's own
                with contextlib.suppress(Exception):
                    await provider.aclose()

    async def _generate_with(
        self,
        request: GenerationRequest,
        cancel: asyncio.Event,
        rewrite: Rewrite | None,
        resume: RunRecord | None,
        provider: Provider,
        batch_api: bool = False,
    ) -> None:
        turn = time.perf_counter()
        async for event in generate(
            request,
            provider=provider,
            store=self.store,
            settings=self.settings,
            estimates=self.estimates,
            cancel=cancel,
            clock=self.clock,
            existing=list(self.table.records.values()),
            organizations=self.org_store,
            runs=RunStore(self.settings.runs_dir),
            rewrite=rewrite,
            resume=resume,
            batch_api=batch_api,
        ):
            self.handle_event(event)
            turn = await self._yield_now_and_then(turn)

    @staticmethod
    async def _yield_now_and_then(turn: float) -> float:
        """Let the screen draw and keys through once events have kept the loop for TURN_BUDGET.

        Sixteen streams queue their events faster than one turn of the loop drains them: without
        this, one turn handled 84 events and 12 saves (each moving the table's rows) and the app
        froze for a fifth of a second."""
        if time.perf_counter() - turn < TURN_BUDGET:
            return turn
        await asyncio.sleep(0)
        return time.perf_counter()

    def _refuse_run(self, sentence: str) -> None:
        """Undo a run's start that sent nothing, and say why beside the form."""
        self.panel.reset()
        self.panel.running = False
        self.panel.refresh(layout=True)
        self._set_running(False)
        self.log_pane.message(sentence)
        self._show_form_error(sentence)

    def _show_form_error(self, sentence: str, target: Input | None = None) -> None:
        error = self.query_one("#form-error", Label)
        error.update(Text(sentence))
        error.add_class("-shown")
        for field in self.query("#description, #count, #mix").results(Input):
            field.set_class(field is target, "-invalid")
        if target is not None:
            target.add_class("-invalid")
            target.focus()

    def handle_event(self, event: ev.Event) -> None:
        """Draw one engine event: fold it into the panel, log its line, react. Cheap for token events:
        they only queue text."""
        panel = self.panel
        panel.apply(event)
        if isinstance(event, ev.TokenDelta | ev.ReasoningDelta):
            if self.count == 1:  # parallel streams would interleave; their bars show them instead
                if isinstance(event, ev.TokenDelta):
                    self.log_pane.tokens(event.text)
                elif event.text:  # an empty one: the model thinks in hidden, the panel's clock shows it
                    self._reasoning(event)
            return
        if isinstance(event, ev.SlowWarning) and self.count == 1 and panel.stage in _STREAMED:
            return  # the panel says it: a line in the log would land in the middle of the model's text
        if _ends_stream(event):
            self._end_thought()
            self.log_pane.end_tokens()
        index = getattr(event, "index", 0)
        line = describe_event(event, self.count, lane=panel.lanes.get(index))
        if line is not None:  # a wait that goes on rewrites its line rather than adding one every beat
            key = f"heartbeat-{index}" if isinstance(event, ev.Heartbeat) else None
            self.log_pane.message(line.text, key=key)
            for detail in event_details(event):
                self.log_pane.message(detail, table=True)
        react = _REACTIONS.get(type(event))
        if react is not None:
            react(self, event)

    def _reasoning(self, event: ev.ReasoningDelta) -> None:
        """Reasoning text: streamed into the log, or while folded kept and counted on one line."""
        if not self._reasoning_seen:
            self._reasoning_seen = True
            self.refresh_bindings()  # the fold key joins the footer
        if self.show_thinking:
            self.log_pane.tokens(event.text, thinking=True)
        else:
            self._folded.append(event.text)
            self._folded_tokens = event.tokens

    def _write_folded(self) -> None:
        """The folded thought's line, rewritten in place when its count has moved (on the pulse)."""
        if self._folded_tokens != self._folded_shown:
            self._folded_shown = self._folded_tokens
            self.log_pane.message(folded_thinking(self._folded_tokens, FOLD_KEY), key="thinking")

    def _end_thought(self) -> None:
        self._write_folded()
        self._folded.clear()
        self._folded_tokens = self._folded_shown = 0

    def action_toggle_thinking(self) -> None:
        """Fold the model's reasoning in the log, or show it again (a folded thought so far included)."""
        self.show_thinking = not self.show_thinking
        if self.show_thinking and self._folded:
            self._write_folded()
            self.log_pane.tokens("".join(self._folded), thinking=True)
            self._folded.clear()
        self.notify(thinking_fold_sentence(self.show_thinking, FOLD_KEY), markup=False)

    def _show_partial(self, event: ev.PartialPersona) -> None:
        self.persona_view.show_partial(event.fields, event.index, self.count)

    def _saved(self, event: ev.PersonaSaved) -> None:
        record = event.record
        if record.id in self.table.records:  # regenerated or refined: the new version takes the old one's row
            self.table.remove_persona(record.id)
        self.paths[record.id] = event.path
        self.table.add_record(record)
        self._title_table()
        if not self.persona_view.persona_ended(event.index):  # in a batch: on to the next in flight
            self.persona_view.show_record(record)
        if self.count == 1:  # a batch says it once, at the end
            self.notify(saved_summary(event), title="Persona saved", markup=False)

    def _replaced(self, event: ev.PersonaReplaced) -> None:
        self.table.remove_persona(event.old.id)
        self.paths.pop(event.old.id, None)
        self._title_table()

    def _reported(self, event: ev.DiversityReported) -> None:
        self.last_report = event.report
        near = len(event.report.near_duplicates)
        if self.count > 1:
            again = ", and r there writes the near-duplicates again" if near else ""
            self.log_pane.message(f"ctrl+d shows this report again{again}")
        if near and self.count > 1:
            pairs = "1 near-duplicate pair" if near == 1 else f"{near} near-duplicate pairs"
            self.notify(
                f"{pairs} in this batch: ctrl+d shows the report and writes them again.",
                title="Diversity",
                severity="warning",
                markup=False,
            )

    def _failed(self, event: ev.Failed) -> None:
        self.persona_view.persona_ended(event.index)
        message = f"{event.message} {app_hint(event.hint)}".strip()
        self.notify(message, title="Generation failed", severity="error", markup=False, timeout=10)

    def _finished(self, event: ev.Finished) -> None:
        summary = event.summary
        if not summary.saved or self.persona_view.showing_partial:
            # A half-written persona must not stay on screen (in a batch, the last one to fail).
            selected = self.table.selected
            if selected is not None:
                self.persona_view.show_record(selected)
            else:
                self.persona_view.show_message("Nothing was saved.")
        if self.count > 1 and summary.saved and not summary.cancelled:
            self.notify(
                finished_summary(summary, self.count, tokens=True),
                title="Personas saved",
                severity="information" if summary.ok else "warning",
                markup=False,
            )
        self._set_running(False)

    @property
    def running(self) -> bool:
        panel = self.__dict__.get("panel")  # bindings are checked before on_mount too
        return panel is not None and panel.running

    def _set_running(self, running: bool) -> None:
        self.panel.running = running
        if running:
            # The buttons restyle and the footer recomposes, each laying the screen out: the first
            # stage is drawn first, then the buttons, then the footer, one frame each rather than
            # one long frame that stalls everything else. Escape works from the key press on.
            self.call_after_refresh(self._sync_buttons)
        else:  # the form is ready again at once
            self._sync_buttons()
            self.refresh_bindings()
            self._cancel = None

    def _sync_buttons(self) -> None:
        running = self.running
        self.generate_button.disabled = running
        self.cancel_button.disabled = not running
        if running:
            self.call_after_refresh(self.refresh_bindings)

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.log_pane.message("Cancelling…")

    async def action_interrupt(self) -> None:
        """Ctrl-C: cancel a running generation (like Esc); pressed again while it stops, quit. With nothing
        running it copies selected text if there is some (as Ctrl-C does in a field), else quits."""
        if self.running and self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self.log_pane.message("Cancelling… (ctrl+c again quits)")
            return
        if not self.running and self._copy_selection():
            return
        await self.action_quit()

    def _copy_selection(self) -> bool:
        """Copy the focused field's selected text, or the screen's, to the clipboard; False when none is selected."""
        focused = self.focused
        text = focused.selected_text if isinstance(focused, Input) else None
        if not text:
            text = self.screen.get_selected_text()
        if not text:
            return False
        self.copy_to_clipboard(text)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_SCREEN_ONLY and len(self.screen_stack) > 1:
            return False  # a dialog is open: its own keys (ctrl+s saves there) come first
        if action == "cancel":
            return self.running
        if action == "generate":
            return not self.running
        if action == "generate_busy":  # the same key while a generation runs: say so, as Enter does
            return self.running
        if action == "toggle_thinking":
            return self._reasoning_seen  # hidden until a model has shown its thinking
        if action == "choose_model":  # shown (and working) only where there is a list; the palette explains the rest
            return lister_of(self.provider) is not None
        if action == "report":
            return not self.running
        if action in PERSONA_ACTIONS:  # on a row of the table, or in a persona's details
            return persona_actions.target_id(self) is not None and (
                isinstance(self.screen, DetailScreen) or isinstance(self.focused, PersonaTable)
            )
        if action == "help":
            return not isinstance(self.screen, HelpScreen)
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's unexpected end is handled."""
        worker = event.worker
        if worker.group == "generation" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            if event.state is WorkerState.ERROR:
                error = worker.error
                self.log_pane.message(f"Unexpected error: {type(error).__name__}: {error}")
                self.notify(
                    "Something unexpected stopped the generation; the details are in the log.",
                    title="Generation stopped",
                    severity="error",
                    markup=False,
                )
            self.panel.running = False
            self._set_running(False)
        elif worker.group == "load" and event.state is WorkerState.ERROR:
            self._unreadable(f"The personas in {self.store.root} could not be read: {worker.error}")

    async def action_quit(self) -> None:
        """Quit; a running generation is cancelled first so its stream is closed."""
        if self.running and self._cancel is not None and self._generation is not None:
            self._cancel.set()
            try:
                await asyncio.wait_for(self._generation.wait(), timeout=2.0)
            except (TimeoutError, Exception):
                self._generation.cancel()
        self.exit()

    async def on_unmount(self) -> None:
        gc.unfreeze()  # what startup froze can be collected again once the app is gone
        await self.provider.aclose()

    # ----- buttons, focus and the table -----

    @on(Button.Pressed, "#generate")
    def _generate_pressed(self) -> None:
        self.action_generate()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Input.Changed, "#mix")
    def _mix_changed(self) -> None:
        """A mix being fixed: its error goes as soon as it is touched (the description's and the count's go on the
        next ctrl+g, which reads them again)."""
        mix = self.query_one("#mix", Input)
        if self._refused_mix is not None and mix.value != self._refused_mix:
            self._refused_mix = None
            mix.remove_class("-invalid")
            error = self.query_one("#form-error", Label)
            error.update("")
            error.remove_class("-shown")

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.start_generation()  # Enter came through the field's queue, after every key before it

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_focus_form(self) -> None:
        self.query_one("#description", Input).focus()

    @on(PersonaTable.RowHighlighted)
    def _row_highlighted(self, event: PersonaTable.RowHighlighted) -> None:
        record = self.table.records.get(str(event.row_key.value))
        if record is not None and not self.running:
            self.persona_view.show_record(record)

    @on(PersonaTable.RowSelected)
    def _row_selected(self, event: PersonaTable.RowSelected) -> None:
        record = self.table.records.get(str(event.row_key.value))
        if record is not None:
            self.push_screen(DetailScreen(record, self.paths.get(record.id)))

    @work(group="delete", exit_on_error=False)
    async def action_delete_selected(self) -> None:
        record = self.table.selected
        if record is None:
            return
        question = (
            f"Delete {one_line(record.persona.name)} ({record.id[:8]})? The file is removed from {self.store.root}."
        )
        if not await self.push_screen_wait(ConfirmScreen(question)):
            return
        try:
            await self.store.delete(record.id)
        except StoreError as exc:
            sentence = f"{exc.message} {app_hint(exc.hint)}".strip()
            self.notify(sentence, title="Not deleted", severity="error", markup=False)
            return
        self.table.remove_persona(record.id)
        self.paths.pop(record.id, None)
        self._title_table()
        if not self.running:  # the pane follows the table: the row now selected, or the empty table's words
            self._show_selected()
        self.log_pane.message(f"Deleted {one_line(record.persona.name)} ({record.id[:8]})")
        self.notify(f"Deleted {one_line(record.persona.name)}.", markup=False)

    async def action_export(self, fmt: str = "json") -> None:
        """Export what the table shows: with an organization filter on, only its personas."""
        table = self.table
        records = [table.records[str(row.key.value)] for row in table.ordered_rows]
        target = export_target(self.settings.data_dir / "exports", self.now(), fmt)
        try:
            await atomic_write(target, export_text(records, fmt).encode("utf-8"))
        except OSError as exc:
            self.notify(
                f"Could not write {target}: {exc.strerror or exc}.",
                title="Export failed",
                severity="error",
                markup=False,
            )
            return
        sentence = export_sentence(len(records), table.organization, target)
        self.log_pane.message(sentence)
        self.notify(sentence, title="Exported", markup=False)

    # ----- one persona: help, edit, regenerate, refine, copy (the work is in persona_actions) -----

    def action_help(self) -> None:
        """Every key of the screen the user is on, grouped (from the bindings themselves)."""
        screen = self.screen
        where = "the details" if isinstance(screen, DetailScreen) else "" if len(self.screen_stack) == 1 else "dialog"
        self.push_screen(HelpScreen(key_rows(screen), where))

    @work(group="persona", exit_on_error=False)
    async def action_edit_persona(self) -> None:
        await persona_actions.edit(self)

    @work(group="persona", exit_on_error=False)
    async def action_regenerate_persona(self) -> None:
        await persona_actions.regenerate(self)

    @work(group="persona", exit_on_error=False)
    async def action_refine_persona(self) -> None:
        await persona_actions.refine_persona(self)

    @work(group="persona", exit_on_error=False)
    async def action_copy_persona(self, fmt: str = "md") -> None:
        await persona_actions.copy(self, fmt)

    def _persona_commands(self) -> Iterable[SystemCommand]:
        """The selected persona's actions (none while no persona is selected)."""
        if persona_actions.target_id(self) is None:
            return
        yield SystemCommand("Edit persona", "A form of the selected persona's fields (e)", self.action_edit_persona)
        if not self.running:
            yield SystemCommand(
                "Regenerate persona",
                "A new persona in the same slot, the old one kept as a version (r)",
                self.action_regenerate_persona,
            )
            yield SystemCommand(
                "Refine persona", "Revise it by an instruction, then accept or discard (f)", self.action_refine_persona
            )
        yield SystemCommand("Copy persona as Markdown", "Its card, to the clipboard (c)", self.action_copy_persona)
        yield SystemCommand(
            "Copy persona as JSON", "Its whole record, to the clipboard", lambda: self.action_copy_persona("json")
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not self.running:
            yield SystemCommand(
                "Generate personas", "Start generating from the request form (ctrl+g)", self.action_generate
            )
        else:
            yield SystemCommand("Cancel generation", "Stop the running generation (Esc)", self.action_cancel)
        if not self.running and hasattr(self.provider, "batch_client"):
            yield SystemCommand(
                "Generate with the Batch API",
                "One batch for the whole form: OpenAI's Batch API costs half and may take up to 24 h; "
                "closing the app leaves it running, and resume collects it",
                self.action_generate_batch_api,
            )
        if not self.running:
            yield SystemCommand(
                "Resume run",
                f"Continue the newest unfinished run where it stopped ({RESUME_KEY})",
                self.action_resume_run,
            )
        yield SystemCommand(
            "Delete selected persona", "Delete the persona selected in the table", self.action_delete_selected
        )
        yield from self._persona_commands()
        yield SystemCommand("Help: keys", "Every key of this screen, grouped (F1 or ?)", self.action_help)
        for fmt in ("json", "jsonl", "csv", "md", "prompt"):
            yield SystemCommand(
                f"Export personas as {EXPORT_NAMES.get(fmt, fmt.upper())}",
                f"Write the personas the table shows to {self.settings.data_dir / 'exports'}",
                lambda fmt=fmt: self.run_worker(self.action_export(fmt)),
            )
        yield SystemCommand("Focus the personas table", "Browse saved personas (ctrl+t)", self.action_focus_table)
        yield SystemCommand(
            "New persona (focus the description)", "Type who the next personas are (ctrl+n)", self.action_focus_form
        )
        yield SystemCommand(
            "Organizations", "Create, edit and delete who the personas are for (ctrl+o)", self.action_organizations
        )
        if self._reasoning_seen:
            title = "Fold the model's thinking" if self.show_thinking else "Show the model's thinking"
            yield SystemCommand(title, f"Reasoning text in the log ({FOLD_KEY})", self.action_toggle_thinking)
        yield SystemCommand(
            "Choose a model", "Pick one of the server's models for the next persona (ctrl+l)", self.action_choose_model
        )
        if not self.running:
            yield SystemCommand(
                "Diversity report",
                "How diverse the last run came out; write its near-duplicates again (ctrl+d)",
                self.action_report,
            )

    # ----- the diversity report -----

    @work(exclusive=True, group="report", exit_on_error=False)
    async def action_report(self) -> None:
        """Show how diverse the last run came out (this session's, else the last one recorded)."""
        if self.running:
            self.action_generate_busy()
            return
        report, title = self.last_report, f"The last run: {self.last_description}"
        if report is None:
            found = await asyncio.to_thread(self._recorded_report)
            if found is None:
                self.notify(NO_RUN, title="No report yet", severity="warning", markup=False)
                return
            report, title = found
        if await self.push_screen_wait(ReportScreen(report, title)) == REWRITE:
            self._rewrite(report)

    def _recorded_report(self) -> tuple[DiversityReport, str] | None:
        """The last recorded run's report, over its personas still in the table (in a worker thread)."""
        run = RunStore(self.settings.runs_dir).latest_sync()
        if run is None:
            return None
        records = [r for r in self.table.records.values() if r.run_id == run.id]
        if not records:
            return None
        report = diversity_report(records, threshold=self.settings.similarity_threshold)
        return report, f"The last run: {run.request.description}"

    def _rewrite(self, report: DiversityReport) -> None:
        """Write the later of each near-duplicate pair again, in its own slot."""
        records = self.table.records
        replace, partners = pairs_to_rewrite([(p.a_id, p.b_id) for p in report.near_duplicates], list(records.values()))
        if not replace:
            self.notify("Those personas are no longer in the table.", severity="warning", markup=False)
            return
        run_ids = {record.run_id for record in replace}
        chosen = {record.id for record in (*replace, *partners)}
        keep = tuple(r for r in records.values() if r.run_id in run_ids and r.id not in chosen)
        rewrite = Rewrite(replace, partners, keep)
        request = rewrite.request()
        self.log_pane.message(f"Writing {len(replace)} near-duplicate(s) again, each in its own slot")
        self._generation = self._run_generation(request, self.begin_run(request), rewrite)

    # ----- choosing a model -----

    def action_choose_model(self) -> None:
        """Open the model picker on the current provider's list (loaded by the screen, in a worker)."""
        refused = self._model_refusal()
        if refused:
            self.notify(refused, title="Model not changed", severity="warning", markup=False)
            return
        provider, settings = self.provider, self.settings
        picker = ModelPickerScreen(
            lambda: server_models(provider, settings),
            current=provider.model,
            where=provider.endpoint,
            refusal=self._model_refusal,
        )
        self.push_screen(picker, self._model_chosen)

    def _model_refusal(self) -> str | None:
        """Why the model cannot change now: a running generation keeps the provider it started with."""
        if self.running:
            return "A generation is running; choose a model once it has ended (Esc cancels it)."
        return None

    def _model_chosen(self, model: str | None) -> None:
        """Switch to the chosen model for the next generation: a new provider from the registry, at once.

        Done here, before any await, so no generation can start between the check and the switch; closing
        the old provider and remembering the choice in the config file follow in a worker.
        """
        if model is None:
            return
        refused = self._model_refusal()
        if refused:
            self.notify(refused, title="Model not changed", severity="warning", markup=False)
            return
        old = self.provider
        if model != old.model:
            settings = dataclasses.replace(self.settings, model=model)
            try:
                provider = make_provider(settings)
            except SettingsError as exc:
                self.notify(str(exc), title="Model not changed", severity="error", markup=False)
                return
            self.provider, self.settings = provider, settings
            self.sub_title = self._model_title()
            self.panel.model_label = one_line(provider.label)
            self.panel.refresh(layout=True)
        self.log_pane.message(f"Model: {one_line(self.provider.label)}")
        self._settle_model(old, model)

    @work(group="model", exit_on_error=False)
    async def _settle_model(self, old: Provider, model: str) -> None:
        """Close the old provider's connections, warm the new one, and remember the model in the config file."""
        if old is not self.provider:
            try:
                await old.aclose()
            except Exception as exc:  # its connections die with it anyway; the switch stands
                self.log_pane.message(f"The previous model's connection did not close cleanly: {exc}")
            with contextlib.suppress(Exception):  # only a head start: the first request sets up what is missing
                await asyncio.to_thread(self.provider.prepare)
        path = self.settings.config_file or default_config_path()
        shown = _home_short(path)
        try:
            await asyncio.to_thread(remember_setting, path, "model", model)
        except ConfigWriteError as exc:
            message = f"Could not remember the model in {shown} ({exc.reason}); it is used until you quit."
            self.log_pane.message(message)
            self.notify(message, title="Model not remembered", severity="warning", markup=False, timeout=10)
            return
        wins = env_override("model")
        note = f" ({wins} is set and still comes first at the next start)" if wins else ""
        self.log_pane.message(f"Remembered in {shown}{note}")
        self.notify(
            f"{one_line(self.provider.label)}. Remembered in {shown}{note}.", title="Model chosen", markup=False
        )


EXPORT_NAMES = {"md": "Markdown cards", "prompt": "prompts for simulated users"}


def export_sentence(count: int, organization: str | None, target: Path) -> str:
    """What an export wrote: with a filter on, that only the personas shown went, and whose they are."""
    noun = "persona" if count == 1 else "personas"
    if organization is None:
        return f"Exported {count} {noun} to {target}"
    return f"Exported {count} {noun} shown ({one_line(organization)}) to {target}"


def _count_of(text: str) -> int | None:
    """The count typed in the form, or None when it is not a whole number from 1 to the most."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= COUNT_MAX:
        return None
    return int(text)


def folder_sentence(problem: StoreError) -> str:
    """Why the data folder cannot keep personas, and what to do, in one sentence for the app."""
    return f"{problem.message} {app_hint(problem.hint)}".strip()


def _home_short(path: Path) -> str:
    """A path as a user would type it: the home folder as ``~``."""
    try:
        return "~/" + path.expanduser().relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


_STREAMED = (ev.Stage.STREAMING, ev.Stage.THINKING)
"""Stages whose model text streams into the log (a single persona's)."""


def _ends_stream(event: ev.Event) -> bool:
    """Whether the log's line of streamed text ends before this event is told (the answer's stream
    starting does not end the line of thinking before it: the log does that itself)."""
    if isinstance(event, ev.StageStarted):
        return event.stage is not ev.Stage.STREAMING
    return isinstance(event, ev.StageFinished | ev.Failed | ev.Cancelled | ev.Finished)


_REACTIONS: dict[type, Callable[[PersonaApp, Any], None]] = {
    ev.PartialPersona: PersonaApp._show_partial,
    ev.PersonaSaved: PersonaApp._saved,
    ev.Failed: PersonaApp._failed,
    ev.Finished: PersonaApp._finished,
    ev.PersonaReplaced: PersonaApp._replaced,
    ev.DiversityReported: PersonaApp._reported,
}
"""What the app does beside logging a line, per event type."""


def make_app(
    settings: Settings,
    provider: Provider | None = None,
    store: PersonaStore | None = None,
    **kwargs: object,
) -> PersonaApp:
    """The one way to build the app: the CLI passes settings, tests inject the rest."""
    return PersonaApp(
        settings,
        provider if provider is not None else make_provider(settings),
        store if store is not None else PersonaStore(settings.personas_dir),
        **kwargs,  # type: ignore[arg-type]
    )


def run_app(settings: Settings) -> int:
    make_app(settings).run()
    return 0
