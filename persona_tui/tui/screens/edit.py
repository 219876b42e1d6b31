"""Editing one persona: a form of its fields, validated with the same model as a model's answer.

Short fields are one-line inputs; background is a text area; goals, frustrations and traits are text
areas with one item a line. ctrl+s (or the Save button) validates: each field with a problem gets one
sentence beside it and nothing is returned; a valid form returns the new :class:`Persona` (the app
saves it, keeping the earlier version). Esc leaves without a change.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, TextArea

from persona_tui.models import TECH_LEVELS, Persona, PersonaRecord
from persona_tui.present import FIELD_TITLES, one_line

LISTS = ("goals", "frustrations", "personality_traits")
LINES = ("name", "age", "pronouns", "location", "occupation", "communication_style", "quote")


def form_values(persona: Persona) -> dict[str, str]:
    """Each field as the form shows it: lists one item a line."""
    values: dict[str, str] = {}
    for name, value in persona.model_dump().items():
        values[name] = "\n".join(value) if isinstance(value, list) else str(value)
    return values


def parse_form(values: dict[str, str]) -> tuple[Persona | None, dict[str, str]]:
    """The persona the form describes, or the problems found: field -> one sentence."""
    data: dict[str, Any] = {}
    for name, text in values.items():
        data[name] = [line.strip() for line in text.splitlines() if line.strip()] if name in LISTS else text
    age = values.get("age", "").strip()
    problems: dict[str, str] = {}
    if not (age.isascii() and age.isdigit()):
        problems["age"] = "Age must be a whole number from 0 to 120."
    try:
        persona = Persona.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "name"
            problems.setdefault(field, _sentence(field, error))
        return None, problems
    return (persona, {}) if not problems else (None, problems)


def _sentence(field: str, error: Any) -> str:
    title = FIELD_TITLES.get(field, field)
    kind, ctx = error["type"], error.get("ctx") or {}
    if field == "age":
        return "Age must be a whole number from 0 to 120."
    if kind == "string_too_short":
        return f"{title} must not be empty."
    if kind == "string_too_long":
        return f"{title} must be at most {ctx.get('max_length')} characters."
    if kind == "too_short":
        return f"{title} needs at least one item (one a line)."
    if kind == "too_long":
        return f"{title} may have at most {ctx.get('max_length')} items (one a line)."
    if kind == "literal_error":
        return f"{title} must be one of {', '.join(TECH_LEVELS)}."
    return f"{title}: {str(error['msg'])[:1].lower()}{str(error['msg'])[1:]}."


class EditScreen(ModalScreen[Persona | None]):
    """A form of one persona's fields; dismisses with the edited persona, or None."""

    DEFAULT_CSS = """
    EditScreen {
        align: center middle;
    }
    #edit-box {
        width: 100;
        max-width: 95%;
        height: 90%;
        border: thick $accent;
        padding: 0 1;
        background: $surface;
    }
    #edit-box .edit-label {
        text-style: bold;
    }
    #edit-box .edit-row {
        height: auto;
    }
    #edit-box .edit-row .edit-label {
        width: 16;
        margin-top: 1;
    }
    #edit-box Input, #edit-box Select {
        width: 1fr;
    }
    #edit-box TextArea {
        height: 5;
    }
    #edit-box TextArea.-background {
        height: 6;
    }
    #edit-box .edit-error {
        color: $error;
        display: none;
        padding-left: 16;
    }
    #edit-box .edit-error.-shown {
        display: block;
    }
    #edit-box .-invalid {
        border: tall $error;
    }
    #edit-buttons {
        height: auto;
        margin: 1 0;
        align-horizontal: right;
    }
    #edit-buttons Button {
        margin-left: 1;
    }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="edit-save", priority=True),
        Binding("escape", "dismiss(None)", "Cancel", id="edit-cancel"),
    ]
    HELP_GROUP = "Editing a persona"

    def __init__(self, record: PersonaRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        values = form_values(self.record.persona)
        with VerticalScroll(id="edit-box") as box:
            box.border_title = f"Edit {one_line(self.record.persona.name)}"
            box.border_subtitle = "ctrl+s saves (the earlier version is kept) · Esc cancels"
            for name in Persona.model_fields:
                if name in LINES or name == "tech_savviness":  # a short field: its label beside it
                    with Horizontal(classes="edit-row"):
                        yield Label(FIELD_TITLES[name], classes="edit-label")
                        yield self._field(name, values[name])
                else:
                    yield Label(FIELD_TITLES[name] + (" (one a line)" if name in LISTS else ""), classes="edit-label")
                    yield self._field(name, values[name])
                yield Label("", id=f"{name}-error", classes="edit-error")
            with Horizontal(id="edit-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="edit-save")
                yield Button("Cancel (Esc)", id="edit-cancel")
        yield Footer()

    def _field(self, name: str, value: str) -> Widget:
        if name == "tech_savviness":
            return Select[str]([(level, level) for level in TECH_LEVELS], value=value, allow_blank=False, id=name)
        if name in LINES:
            return Input(value=value, id=name, max_length=4000)
        hint = " (one a line)" if name in LISTS else ""
        area = TextArea(value, id=name, soft_wrap=True, show_line_numbers=False, tooltip=FIELD_TITLES[name] + hint)
        area.set_class(name == "background", "-background")
        return area

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def values(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in Persona.model_fields:
            widget = self.query_one(f"#{name}")
            if isinstance(widget, Input):
                found[name] = widget.value
            elif isinstance(widget, TextArea):
                found[name] = widget.text
            elif isinstance(widget, Select):
                found[name] = str(widget.value)
        return found

    def action_save(self) -> None:
        persona, problems = parse_form(self.values())
        for name in Persona.model_fields:
            label = self.query_one(f"#{name}-error", Label)
            label.update(Text(problems.get(name, "")))
            label.set_class(name in problems, "-shown")
            self.query_one(f"#{name}").set_class(name in problems, "-invalid")
        if persona is None:
            first = next(name for name in Persona.model_fields if name in problems)
            self.query_one(f"#{first}").focus()
            return
        self.dismiss(persona)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field moves to the next one (the app's own Enter would start a generation)."""
        event.stop()
        self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "edit-save":
            self.action_save()
        else:
            self.dismiss(None)


class InstructionScreen(ModalScreen[str | None]):
    """Asks how to refine a persona; dismisses with the instruction, or None."""

    DEFAULT_CSS = """
    InstructionScreen {
        align: center middle;
    }
    #instruction-box {
        width: 80;
        max-width: 95%;
        height: auto;
        border: thick $accent;
        padding: 1 2;
        background: $surface;
    }
    #instruction-box Input {
        margin-top: 1;
    }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="instruction-cancel")]
    HELP_GROUP = "Refining a persona"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.persona_name = name

    def compose(self) -> ComposeResult:
        with Vertical(id="instruction-box") as box:
            box.border_title = f"Refine {one_line(self.persona_name)}"
            yield Label(Text("What should change? Enter sends it to the model; you see the changes before saving."))
            yield Input(placeholder="e.g. more sceptical of AI, lives alone", id="instruction", max_length=1000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # not the app's: Enter there starts a generation
        text = event.value.strip()
        if text:
            self.dismiss(text)
