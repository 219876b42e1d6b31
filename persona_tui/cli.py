"""``persona-tui``: the app, and headless commands other tools can script against.

Exit codes: 0 success; 1 the work failed (one sentence and a hint on stderr);
2 invalid input or usage; 130 interrupted by Ctrl-C (the personas saved until
then are kept and listed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from persona_tui import __version__
from persona_tui.config import Settings, SettingsError, load_settings
from persona_tui.engine import events as ev
from persona_tui.engine.diversity import diversity_report
from persona_tui.engine.errors import GenerationError
from persona_tui.engine.estimate import EstimateBook
from persona_tui.engine.plan import mix_from_table, parse_mix
from persona_tui.engine.providers import NoModelList, Provider, make_provider, names, server_models, setup_hint
from persona_tui.engine.providers.base import ModelEntry
from persona_tui.engine.text import strip_control
from persona_tui.export import FORMATS, card_file_name, export_text, records_to_json
from persona_tui.models import (
    COUNT_MAX,
    FocusGroup,
    GenerationRequest,
    Mix,
    Organization,
    Persona,
    PersonaRecord,
    RequestError,
    RunRecord,
    Turn,
    plain_reason,
)
from persona_tui.narrate import flags_sentence, report_lines
from persona_tui.present import CURRENT_MARK, describe, fmt_when, model_cells, one_line, revision_diff
from persona_tui.render import HeadlessRenderer
from persona_tui.storage import (
    GroupStore,
    OrganizationStore,
    PersonaStore,
    RunStore,
    StoreError,
    TranscriptStore,
    atomic_write,
    find_words,
    has_words,
    run_state,
    search_text,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ORG_FIELDS = Organization.CONTEXT_FIELDS


class ServeApp(Protocol):
    """Serves the app in a browser until Ctrl+C (the launcher passes it: this module never imports the app)."""

    def __call__(self, *, host: str, port: int, public: bool, app_args: Sequence[str], data_dir: str) -> int: ...


class CliError(Exception):
    def __init__(self, message: str, hint: str = "", code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", type=Path, default=default, help="folder for personas (env PERSONA_TUI_DATA_DIR)")
    parser.add_argument("--config", type=Path, default=default, help="TOML config file (env PERSONA_TUI_CONFIG)")


def _model_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--provider",
        choices=["auto", *names()],
        default=default,
        help="auto: a real model when OPENAI_API_KEY or OPENAI_BASE_URL is set, "
        "else the offline sample generator (not AI); plugins add more",
    )
    parser.add_argument("--model", default=default, help="model name (env PERSONA_TUI_MODEL, default gpt-4o-mini)")
    parser.add_argument(
        "--base-url",
        default=default,
        help="OpenAI-compatible server, e.g. http://localhost:11434/v1 (env OPENAI_BASE_URL)",
    )
    parser.add_argument(
        "--seed", type=int, default=default, help="seed for the offline generator, for repeatable personas"
    )
    parser.add_argument(
        "--temperature",
        default=default,
        help="sampling temperature, or 'default' to send none (env PERSONA_TUI_TEMPERATURE, default 0.9; "
        "OpenAI's reasoning models are never sent one)",
    )


EXIT_CODES = (
    "exit codes:\n"
    "  0    done\n"
    "  1    the work failed: one sentence and a hint on stderr\n"
    "  2    invalid input or usage, or settings that cannot be used"
)
STORE_ENV = (
    "environment:\n"
    "  PERSONA_TUI_DATA_DIR   the data folder (like --data-dir)\n"
    "  PERSONA_TUI_CONFIG     the TOML config file (like --config)"
)
MODEL_ENV = (
    "  OPENAI_API_KEY         the key for OpenAI or another hosted server (never written to a file)\n"
    "  OPENAI_BASE_URL        an OpenAI-compatible server, e.g. http://localhost:11434/v1 (like --base-url)"
)


def _epilog(*, models: bool = False, interrupted: bool = False) -> str:
    """The exit codes and the environment variables that matter to one command, shown under its --help."""
    codes = EXIT_CODES + ("\n  130  interrupted by Ctrl-C (what was saved until then is kept)" if interrupted else "")
    env = STORE_ENV + ("\n" + MODEL_ENV if models else "")
    return f"{codes}\n\n{env}"


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    description: str,
    **epilog: bool,
) -> argparse.ArgumentParser:
    """One subcommand with a description and an epilog of its exit codes and environment variables."""
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=_epilog(**epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


SORT_COLUMNS = ("name", "age", "occupation", "location", "created", "model")


def _find_flags(parser: argparse.ArgumentParser) -> None:
    """--find and --sort, as the app's / and s keys."""
    parser.add_argument(
        "--find", default="", metavar="WORDS", help="only the personas with every word in some field (any case)"
    )
    parser.add_argument(
        "--sort",
        default="created",
        metavar="COLUMN",
        choices=SORT_COLUMNS,
        help=f"order by one of: {', '.join(SORT_COLUMNS)} (default created, newest first)",
    )
    parser.add_argument("--reverse", action="store_true", help="the other way round")


def _found_and_sorted(records: list[PersonaRecord], args: argparse.Namespace) -> list[PersonaRecord]:
    """The personas with every word of --find in their text, in the order --sort and --reverse ask."""
    words = find_words(getattr(args, "find", "") or "")
    if words:
        records = [r for r in records if has_words(search_text(r), words)]
    column = getattr(args, "sort", "created")
    keys: dict[str, Callable[[PersonaRecord], Any]] = {
        "name": lambda r: r.persona.name.casefold(),
        "age": lambda r: r.persona.age,
        "occupation": lambda r: r.persona.occupation.casefold(),
        "location": lambda r: r.persona.location.casefold(),
        "created": lambda r: r.created_at,
        "model": lambda r: r.model.casefold(),
    }
    newest_first = column == "created"
    return sorted(records, key=keys[column], reverse=newest_first != bool(getattr(args, "reverse", False)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persona-tui",
        description="Generate synthetic user personas with live feedback. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"persona-tui {__version__}")
    _common(parser, suppress=False)
    _model_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = _command(
        sub,
        "generate",
        "generate personas headless, with live feedback on stderr",
        "Generate personas. Feedback goes to stderr; with --json, stdout holds only the saved records.",
        models=True,
        interrupted=True,
    )
    gen.add_argument("description", help="who the personas are, e.g. 'field nurses in rural Kenya aged 40 to 60'")
    gen.add_argument("-n", "--count", type=int, default=1, help=f"how many personas (1 to {COUNT_MAX:,}, default 1)")
    gen.add_argument(
        "-j", "--concurrency", type=int, default=None, help="streams at once (env PERSONA_TUI_CONCURRENCY, default 4)"
    )
    gen.add_argument("--org", dest="organization", default=None, help="organization the personas are for (see `org`)")
    gen.add_argument(
        "--enrich", action="store_true", help="ground the personas in web search results (needs EXA_API_KEY)"
    )
    gen.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="TEXT",
        help="shape the population plan, e.g. 'ages 25-60; she/her 60%%; tech novice:2 expert:1' (repeatable)",
    )
    gen.add_argument(
        "--plan", type=Path, default=None, metavar="FILE", help="a TOML file whose [population] table shapes the plan"
    )
    gen.add_argument("--json", action="store_true", help="print the saved persona records as a JSON array on stdout")
    gen.add_argument(
        "--batch-api",
        action="store_true",
        help="send every persona at once through the server's Batch API (OpenAI's: half the price, up to 24 hours); "
        "the batch survives the process, `persona-tui resume` collects it",
    )
    _common(gen, suppress=True)
    _model_flags(gen, suppress=True)

    report = _command(
        sub,
        "report",
        "the diversity report of a run (the last one by default)",
        "How diverse a run's personas came out: distinct values and spread per field, the plan held or broken, "
        "the nearest pairs by text, repeated names and quotes.",
    )
    report.add_argument("run", nargs="?", default="", help="a run id or its first characters (default: the last run)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")

    runs = _command(
        sub,
        "runs",
        "list the runs (generations), newest first, and whether each finished",
        "List the recorded runs, newest first: id, when, description, personas asked for, saved and failed, "
        "and state (finished, unfinished: `persona-tui resume` continues it, or running).",
    )
    runs.add_argument("--json", action="store_true", help="print them as a JSON array")
    _common(runs, suppress=True)

    resume = _command(
        sub,
        "resume",
        "continue an unfinished run where it stopped",
        "Continue a run that was interrupted (cancelled, killed, or with personas that failed): the same plan, "
        "run id and settings; only the personas not yet saved are made. Default: the newest unfinished run.",
        models=True,
        interrupted=True,
    )
    resume.add_argument("run", nargs="?", default="", help="a run id or its first characters (at least 4)")
    resume.add_argument("-j", "--concurrency", type=int, default=None, help="streams at once")
    resume.add_argument("--json", action="store_true", help="print the records saved now as a JSON array on stdout")
    _common(resume, suppress=True)
    _model_flags(resume, suppress=True)

    _batch_parser(sub)
    _talk_parsers(sub)

    lst = _command(
        sub,
        "list",
        "list saved personas, newest first",
        "List the personas saved in the data folder, newest first: a table, or with --json the records.",
    )
    lst.add_argument("--json", action="store_true", help="print the records as a JSON array")
    lst.add_argument("--org", dest="organization", default=None, help="only the personas made for this organization")
    _find_flags(lst)
    _common(lst, suppress=True)

    show = _command(
        sub,
        "show",
        "show one persona in full",
        "Show one saved persona in full, found by its id or the id's first characters.",
    )
    show.add_argument("id", help="a persona id, or its first characters (at least 4)")
    show.add_argument("--json", action="store_true", help="print the record as JSON")
    _common(show, suppress=True)

    delete = _command(
        sub,
        "delete",
        "delete one persona",
        "Delete one saved persona (its file in the data folder), found by its id or the id's first characters.",
    )
    delete.add_argument("id", help="a persona id, or its first characters (at least 4)")
    _common(delete, suppress=True)

    _persona_parsers(sub)

    org = _command(
        sub,
        "org",
        "manage organizations (who the personas are for)",
        "Add, edit, list, show and delete organizations: who the personas are for, given to the model "
        "with `generate --org NAME`. In the app: ctrl+o.",
    )
    org_sub = org.add_subparsers(dest="org_command", metavar="ACTION", required=True)
    add = org_sub.add_parser("add", help="add an organization")
    add.add_argument("name", help="its name, unique")
    for field_name in ORG_FIELDS:
        add.add_argument(f"--{field_name}", default="", help=f"its {field_name}")
    _common(add, suppress=True)
    edit = org_sub.add_parser("edit", help="change an organization's details")
    edit.add_argument("name", help="its current name")
    edit.add_argument("--rename", default=None, help="a new name")
    for field_name in ORG_FIELDS:
        edit.add_argument(f"--{field_name}", default=None, help=f"its {field_name}")
    _common(edit, suppress=True)
    org_list = org_sub.add_parser("list", help="list organizations")
    org_list.add_argument("--json", action="store_true", help="print them as a JSON array")
    _common(org_list, suppress=True)
    for action, text in (("show", "show one organization"), ("delete", "delete one organization")):
        one = org_sub.add_parser(action, help=text)
        one.add_argument("name", help="its name (any case)")
        _common(one, suppress=True)
    _common(org, suppress=True)

    models = _command(
        sub,
        "models",
        "list the models the chosen provider's server offers (* marks the current one)",
        "List the models of the server the settings point at (OPENAI_BASE_URL, --base-url); "
        "the current model is marked with *. Exit 2 when the provider has no models to choose from.",
        models=True,
    )
    models.add_argument("--json", action="store_true", help="print them as a JSON array")
    _common(models, suppress=True)
    _model_flags(models, suppress=True)

    export = _command(
        sub,
        "export",
        "export all personas",
        "Write every saved persona as JSON, JSONL, CSV, Markdown cards (md) or system prompts for a simulated "
        "user (prompt), to stdout or to a file with -o; with --split (or --out DIR), one file per persona.",
    )
    export.add_argument("--format", choices=list(FORMATS), default="json", help="output format (default json)")
    export.add_argument("-o", "--output", type=Path, default=None, help="write to this file instead of stdout")
    export.add_argument(
        "--split", action="store_true", help="one file per persona (md and prompt), in the folder given by --out"
    )
    export.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="the folder for one file per persona (implies --split)"
    )
    _find_flags(export)
    _common(export, suppress=True)
    _serve_parser(sub)
    return parser


SERVE_PORT = 8000


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = _command(
        sub,
        "serve",
        f"run the app in a web browser (at http://127.0.0.1:{SERVE_PORT}/ by default)",
        "Serve the app to a web browser: each browser tab runs its own app, with the same settings and data "
        "folder, and the API key stays on this machine. Only this machine can open it unless --public is given; "
        "then the address printed carries an access token that every visitor needs.",
        models=True,
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=SERVE_PORT, help=f"port to listen on (default {SERVE_PORT})")
    serve.add_argument(
        "--public",
        action="store_true",
        help="allow a --host other machines can reach (e.g. 0.0.0.0); the address then carries an access token",
    )
    _common(serve, suppress=True)
    _model_flags(serve, suppress=True)


def _batch_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = _command(
        sub,
        "batch",
        "a run's requests as a Batch API file, and its answers back",
        "Write a run's requests (those not saved yet) as JSONL for any Batch API (OpenAI's, `vllm run-batch`), "
        "and save the personas of an output JSONL into the run.",
    )
    batch_sub = batch.add_subparsers(dest="batch_command", metavar="ACTION", required=True)
    out = batch_sub.add_parser("export", help="write a run's requests as JSONL")
    out.add_argument("run", help="a run id or its first characters (at least 4)")
    out.add_argument("-o", "--output", type=Path, default=None, help="write to this file instead of stdout")
    _common(out, suppress=True)
    _model_flags(out, suppress=True)
    back = batch_sub.add_parser("import", help="save the personas of a Batch API output JSONL into their run")
    back.add_argument("file", type=Path, help="the output JSONL (custom_id and response per line)")
    back.add_argument("--run", required=True, help="the run id or its first characters (at least 4)")
    back.add_argument("--json", action="store_true", help="print the records saved now as a JSON array on stdout")
    _common(back, suppress=True)
    _common(batch, suppress=True)


def _persona_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``edit`` and ``refine``: one persona changed, the earlier version kept in its record."""
    edit = _command(
        sub,
        "edit",
        "edit one persona's fields in $VISUAL or $EDITOR",
        "Open one persona's fields as JSON in $VISUAL (else $EDITOR); when the editor closes, the text is "
        "validated like a model's answer and saved, the earlier version kept in the record. An invalid edit "
        "saves nothing and keeps your text in a file it names (give it back with --from FILE).",
    )
    edit.add_argument("id", help="a persona id, or its first characters (at least 4)")
    edit.add_argument("--from", dest="source", type=Path, default=None, metavar="FILE", help="start from this text")
    _common(edit, suppress=True)
    refine = _command(
        sub,
        "refine",
        "revise one persona by an instruction, with live feedback on stderr",
        "Send one persona and an instruction ('more sceptical of AI, lives alone') to the model; the revision "
        "streams in with the same feedback as generate, then the changed fields are printed (old -> new). "
        "It is saved with --yes, or if you answer y in a terminal; otherwise nothing is saved (exit 1).",
        models=True,
        interrupted=True,
    )
    refine.add_argument("id", help="a persona id, or its first characters (at least 4)")
    refine.add_argument("instruction", help="what to change, e.g. 'more sceptical of AI, lives alone'")
    refine.add_argument("-y", "--yes", action="store_true", help="save the revision without asking")
    refine.add_argument("--json", action="store_true", help="print the saved record as JSON on stdout")
    _common(refine, suppress=True)
    _model_flags(refine, suppress=True)


def _talk_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ask = _command(
        sub,
        "ask",
        "ask one or more personas a question (a focus group), answers streamed side by side",
        "Put one question to personas, named by id, by organization (--org) or by a filter over their text "
        "(--filter): the answers stream in parallel with live feedback on stderr, and are printed on stdout "
        "(as JSON with --json). The focus group is saved in the data folder's groups/; --group asks its "
        "personas a follow-up (all of them, or one with --to).",
        models=True,
        interrupted=True,
    )
    ask.add_argument("words", nargs="+", metavar="ID ... QUESTION", help="persona ids (or none), then the question")
    ask.add_argument("--org", dest="organization", default=None, help="ask the personas made for this organization")
    ask.add_argument("--filter", default=None, metavar="TEXT", help="ask the personas whose text contains TEXT")
    ask.add_argument("--group", default=None, metavar="ID", help="a follow-up to this focus group (its id's start)")
    ask.add_argument("--to", default=None, metavar="ID", help="with --group: ask only this one persona")
    ask.add_argument("-j", "--concurrency", type=int, default=None, help="answers at once (default 4)")
    ask.add_argument("--json", action="store_true", help="print the answers as a JSON array on stdout")
    ask.add_argument("--markdown", action="store_true", help="print the whole focus group as Markdown on stdout")
    _common(ask, suppress=True)
    _model_flags(ask, suppress=True)

    interview = _command(
        sub,
        "interview",
        "interview one persona, line by line, in a plain terminal",
        "A chat with one persona: each line read from stdin is a question, answered in the persona's voice with "
        "live feedback on stderr and the answer on stdout. An empty line or end of input ends it; Ctrl-C stops "
        "an answer and keeps the conversation. Each turn is saved in the data folder's transcripts/ and the "
        "conversation goes on next time.",
        models=True,
        interrupted=True,
    )
    interview.add_argument("id", help="a persona id, or its first characters (at least 4)")
    interview.add_argument(
        "--markdown", action="store_true", help="print the saved transcript as Markdown and ask nothing"
    )
    _common(interview, suppress=True)
    _model_flags(interview, suppress=True)


def _settings(args: argparse.Namespace) -> Settings:
    names = ("data_dir", "provider", "model", "base_url", "seed", "concurrency", "temperature")
    flags = {name: getattr(args, name, None) for name in names}
    return load_settings(flags, config_path=getattr(args, "config", None))


def main(
    argv: Sequence[str] | None = None,
    *,
    open_app: Callable[[Settings], int] | None = None,
    serve_app: ServeApp | None = None,
) -> int:
    """Run one command; with none, ``open_app`` (the launcher passes the app: this module never imports Textual)."""
    args = build_parser().parse_args(argv)
    err = console(stderr=True)
    try:
        settings = _settings(args)
        if args.command is None:
            if open_app is None:
                raise CliError("No command given.", "Run `persona-tui --help` to see the commands.", EXIT_USAGE)
            return open_app(settings)
        if args.command == "serve":
            return cmd_serve(args, settings, serve_app)
        command = {
            "generate": cmd_generate,
            "list": cmd_list,
            "show": cmd_show,
            "delete": cmd_delete,
            "export": cmd_export,
            "org": cmd_org,
            "models": cmd_models,
            "report": cmd_report,
            "runs": cmd_runs,
            "resume": cmd_resume,
            "batch": cmd_batch,
            "edit": cmd_edit,
            "refine": cmd_refine,
            "ask": cmd_ask,
            "interview": cmd_interview,
        }
        return command[args.command](args, settings, err)
    except (SettingsError, RequestError) as exc:
        _error(err, str(exc), "")
        return EXIT_USAGE
    except CliError as exc:
        _error(err, exc.message, exc.hint)
        return exc.code
    except StoreError as exc:
        _error(err, exc.message, exc.hint)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED


PIPE_WIDTH = 1000
"""Columns assumed when output goes to a file or a pipe: lines are not cut where a terminal would wrap them."""


def console(*, stderr: bool = False) -> Console:
    """A console for stdout or stderr; written to a pipe or a file it wraps nothing (a program reads it whole)."""
    stream = sys.stderr if stderr else sys.stdout
    interactive = stream.isatty()
    return Console(stderr=stderr, highlight=False, width=None if interactive else PIPE_WIDTH, soft_wrap=not interactive)


def _error(console: Console, message: str, hint: str) -> None:
    console.print(Text("Error: ", style="bold red") + Text(message))
    if hint:
        console.print(Text("Hint: ", style="bold") + Text(hint))


def _mix(args: argparse.Namespace) -> Mix:
    """The population mix from --plan FILE's [population] table, then each --mix on top."""
    mix = Mix()
    if args.plan is not None:
        try:
            document = tomllib.loads(args.plan.read_text(encoding="utf-8"))
        except OSError as exc:
            reason = exc.strerror or exc
            raise CliError(f"The plan file {args.plan} could not be read: {reason}.", "", EXIT_USAGE) from None
        except tomllib.TOMLDecodeError as exc:
            raise CliError(f"The plan file {args.plan} is not valid TOML: {exc}.", "", EXIT_USAGE) from None
        table = document.get("population")
        if not isinstance(table, dict):
            hint = 'Put the mix under a [population] table, e.g. ages = [25, 60] and pronouns = { "she/her" = "60%" }.'
            raise CliError(f"The plan file {args.plan} has no [population] table.", hint, EXIT_USAGE)
        mix = mix_from_table(table)
    for text in args.mix:
        mix = parse_mix(text, mix)
    return mix


def cmd_generate(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    request = GenerationRequest.create(args.description, args.count, args.organization, args.enrich, _mix(args))
    if request.organization:  # a misspelt name is a usage error, caught before anything is sent
        try:
            asyncio.run(OrganizationStore(settings.organizations_dir).get(request.organization))
        except StoreError as exc:
            raise CliError(exc.message, exc.hint, EXIT_USAGE) from None
    store = PersonaStore(settings.personas_dir)
    problem = asyncio.run(store.problem())  # before any request: a model's answer must have somewhere to go
    if problem is not None:
        raise CliError(problem.message, problem.hint, EXIT_USAGE)
    provider = make_provider(settings)
    _offline_note(provider, settings, err, "personas are composed locally from templates.")
    summary = asyncio.run(_generate(request, provider, store, settings, err, batch_api=args.batch_api))
    return _finish(summary, args, err)


def _finish(summary: ev.Summary, args: argparse.Namespace, err: Console) -> int:
    """After a run: the records on stdout with --json; the exit code."""
    if args.json:
        sys.stdout.write(records_to_json(summary.saved) + "\n")
        sys.stdout.flush()
    if summary.cancelled:
        for record in summary.saved:
            err.print(Text(f"  kept {record.id[:8]}  {strip_control(record.persona.name, keep_newlines=False)}"))
        if summary.run_id:
            err.print(Text(f"Continue it with: persona-tui resume {summary.run_id[:8]}"))
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.ok else EXIT_FAILED


def _saved(run: RunRecord, store: PersonaStore) -> int:
    """How many of a run's personas are saved: of an unfinished run, counted in the store (as resume counts),
    since the manifest is written at most every half second and a killed run's last saves are not in it."""
    if run_state(run) != "unfinished":
        return len(run.saved) or len(run.persona_ids)
    return _saved_in_store(run, store)


def cmd_runs(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    store = PersonaStore(settings.personas_dir)
    rows = [
        {
            "id": run.id,
            "created_at": run.created_at.isoformat(),
            "description": run.request.description,
            "count": run.count,
            "saved": _saved(run, store),
            "failed": len(run.failed),
            "state": run_state(run),
        }
        for run in RunStore(settings.runs_dir).all_sync()
    ]
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    out = console()
    if not rows:
        out.print('No run has been recorded yet. Start one with: persona-tui generate "nurses" -n 10')
        return EXIT_OK
    table = Table(title=f"{len(rows)} run(s)", title_justify="left")
    for column in ("id", "when", "description", "count", "saved", "failed", "state"):
        table.add_column(column)
    for row in rows:
        when = datetime.fromisoformat(str(row["created_at"])).astimezone().strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(row["id"])[:8],
            when,
            one_line(str(row["description"])),
            f"{row['count']:,}",
            f"{row['saved']:,}",
            f"{row['failed']:,}",
            str(row["state"]),
        )
    out.print(table)
    return EXIT_OK


def _run_to_resume(args: argparse.Namespace, settings: Settings) -> RunRecord:
    """The run ``resume`` continues, or the one sentence that says why there is none."""
    store = RunStore(settings.runs_dir)
    try:
        run = store.latest_sync(args.run) if args.run else store.unfinished_sync()
    except StoreError as exc:
        raise CliError(exc.message, exc.hint, EXIT_USAGE) from None
    if run is None:
        if args.run:
            raise CliError(f"No run's id starts with {args.run!r}.", "See `persona-tui runs` for the ids.", EXIT_USAGE)
        raise CliError(
            "There is no unfinished run to resume.",
            "`persona-tui runs` lists the runs; start a new one with: persona-tui generate 'nurses' -n 10",
            EXIT_USAGE,
        )
    state = run_state(run)
    if state == "finished":
        raise CliError(
            f"Run {run.id[:8]} is finished: all {run.count:,} of its personas are saved, "
            "so there is nothing to resume.",
            "Start a new run with `persona-tui generate`; `persona-tui runs` shows which runs are unfinished.",
            EXIT_USAGE,
        )
    if state == "running":
        raise CliError(
            f"Run {run.id[:8]} is still running (process {run.pid}).",
            "Let it finish or stop it (Ctrl-C) first; then resume it if it is unfinished.",
            EXIT_USAGE,
        )
    return run


def _run_settings(settings: Settings, args: argparse.Namespace, run: RunRecord, *, seed: bool) -> Settings:
    """The run's own provider and model (and seed), unless a flag says otherwise."""
    settings = replace(
        settings,
        provider=settings.provider if getattr(args, "provider", None) else run.provider,
        model=settings.model if getattr(args, "model", None) else run.model,
    )
    if seed and getattr(args, "seed", None) is None:
        settings = replace(settings, seed=run.seed)
    return settings


def _saved_in_store(run: RunRecord, store: PersonaStore) -> int:
    """How many of the run's personas the store holds (what resume counts: the manifest may lag)."""
    from persona_tui.engine.pipeline.batch import already_saved

    return len(already_saved(run, asyncio.run(store.names(run.request.description))))


def cmd_resume(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    run = _run_to_resume(args, settings)
    settings = _run_settings(settings, args, run, seed=True)
    store = PersonaStore(settings.personas_dir)
    problem = asyncio.run(store.problem())
    if problem is not None:
        raise CliError(problem.message, problem.hint, EXIT_USAGE)
    provider = make_provider(settings)
    saved = _saved_in_store(run, store)
    err.print(Text(f"Resuming run {run.id[:8]} ({saved:,} of {run.count:,} saved) with {provider.label}"))
    request = run.to_request()
    summary = asyncio.run(_generate(request, provider, store, settings, err, resume=run, left=run.count - saved))
    return _finish(summary, args, err)


def _find_run(prefix: str, settings: Settings) -> RunRecord:
    try:
        run = RunStore(settings.runs_dir).latest_sync(prefix)
    except StoreError as exc:
        raise CliError(exc.message, exc.hint, EXIT_USAGE) from None
    if run is None:
        raise CliError(f"No run's id starts with {prefix!r}.", "See `persona-tui runs` for the ids.", EXIT_USAGE)
    return run


def cmd_batch(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    run = _find_run(args.run, settings)
    settings = _run_settings(settings, args, run, seed=False)
    store = PersonaStore(settings.personas_dir)
    if args.batch_command == "export":
        return _batch_export(run, args, settings, store, err)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{args.file} could not be read: {exc}.", "", EXIT_USAGE) from None
    from persona_tui.engine.pipeline.batch_api import AnsweredElsewhere

    provider = AnsweredElsewhere(run.provider, run.model)  # nothing is asked: no key or server is needed
    saved = _saved_in_store(run, store)
    err.print(Text(f"Importing {args.file} into run {run.id[:8]} ({saved:,} of {run.count:,} saved)"))
    request = run.to_request()
    summary = asyncio.run(
        _generate(request, provider, store, settings, err, resume=run, left=run.count - saved, batch_output=text)
    )
    return _finish(summary, args, err)


def _batch_export(
    run: RunRecord, args: argparse.Namespace, settings: Settings, store: PersonaStore, err: Console
) -> int:
    from persona_tui.engine.pipeline.batch import already_saved
    from persona_tui.engine.pipeline.batch_api import request_lines
    from persona_tui.engine.pipeline.names import names_for

    names = asyncio.run(names_for(run.request.description, None, store))
    done = already_saved(run, names.entries)
    org = None
    if run.request.organization:
        with contextlib.suppress(StoreError):
            org = asyncio.run(OrganizationStore(settings.organizations_dir).get(run.request.organization))
    indexes = [index for index in range(run.count) if index not in done]
    lines = request_lines(
        run.to_request(),
        run.id,
        indexes,
        model=settings.model,
        temperature=settings.temperature,
        plan=run.plan,
        people=names.people,
        org=org,
    )
    text = "".join(line + "\n" for line in lines)
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            asyncio.run(atomic_write(args.output.resolve(), text.encode("utf-8")))
        except OSError as exc:
            raise CliError(f"{args.output} could not be written: {exc.strerror or exc}.", "") from None
    where = "stdout" if args.output is None else str(args.output)
    err.print(Text(f"{len(lines):,} request(s) of run {run.id[:8]} written to {where} ({len(done):,} already saved)"))
    return EXIT_OK


async def _generate(
    request: GenerationRequest,
    provider: Provider,
    store: PersonaStore,
    settings: Settings,
    err: Console,
    resume: RunRecord | None = None,
    left: int | None = None,
    *,
    batch_api: bool = False,
    batch_output: str | None = None,
) -> ev.Summary:
    from persona_tui.engine.pipeline import generate

    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupts = 0

    def on_interrupt() -> None:
        # First Ctrl-C: stop cleanly and keep what is saved. Second: stop at once.
        nonlocal interrupts
        interrupts += 1
        cancel.set()
        if interrupts > 1 and task is not None:
            task.cancel()

    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    estimates = await asyncio.to_thread(EstimateBook.load, settings.data_dir)
    summary: ev.Summary | None = None
    saved: list[PersonaRecord] = []
    count = request.count  # a resumed run keeps its numbers ([14/20]); the ones saved before count as saved
    already = 0 if left is None else min(count - left, count - 1)
    try:
        with HeadlessRenderer(err, count=count, provider_label=provider.label, already=already) as view:
            async for event in generate(
                request,
                provider=provider,
                store=store,
                settings=settings,
                estimates=estimates,
                cancel=cancel,
                organizations=OrganizationStore(settings.organizations_dir),
                runs=RunStore(settings.runs_dir),
                resume=resume,
                batch_api=batch_api,
                batch_output=batch_output,
            ):
                view.handle(event)
                if isinstance(event, ev.PersonaSaved):
                    saved.append(event.record)
                elif isinstance(event, ev.Finished):
                    summary = event.summary
    except asyncio.CancelledError:
        summary = ev.Summary(tuple(saved), 0, True, 0.0, 0)
        err.print(Text(f"Interrupted; {len(saved)} of {count} saved", style="bold yellow"))
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        await provider.aclose()
    assert summary is not None
    return summary


async def _load(settings: Settings, err: Console) -> list[PersonaRecord]:
    result = await PersonaStore(settings.personas_dir).load_all()
    for problem in result.problems:
        err.print(Text(f"Skipped {problem.path}: {problem.reason}", style="yellow"))
    return result.records


def _for_organization(records: list[PersonaRecord], name: str, settings: Settings) -> list[PersonaRecord]:
    """The personas made for an organization, found by its id (a renamed organization keeps its personas).

    A name no organization has any more still finds the personas that were made under it; a name that is
    neither is a usage error that lists the organizations there are.
    """
    wanted = name.strip().casefold()
    by_name = [r for r in records if (r.request.organization or "").casefold() == wanted]
    try:
        org = asyncio.run(OrganizationStore(settings.organizations_dir).get(name))
    except StoreError as exc:
        if by_name:
            return by_name
        raise CliError(exc.message, exc.hint, EXIT_USAGE) from None
    return [
        r for r in records if r.request.organization_id == org.id or (r in by_name and not r.request.organization_id)
    ]


APP_FLAGS = ("provider", "model", "base_url", "seed", "temperature")
"""The flags of ``serve`` handed on to the app it runs per browser tab (settings from the environment and the
config file reach it by themselves: it inherits the server's environment)."""


def cmd_serve(args: argparse.Namespace, settings: Settings, serve_app: ServeApp | None) -> int:
    if serve_app is None:
        raise CliError("This entry point cannot serve the app.", "Run `persona-tui serve` instead.", EXIT_USAGE)
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port.", "Give a number from 1 to 65535, e.g. --port 8000.", 2)
    data_dir = str(settings.data_dir.expanduser().resolve())
    app_args = ["--data-dir", data_dir]
    if getattr(args, "config", None) is not None:
        app_args += ["--config", str(Path(args.config).expanduser().resolve())]
    for name in APP_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            app_args += [f"--{name.replace('_', '-')}", str(value)]
    return serve_app(host=args.host, port=args.port, public=args.public, app_args=app_args, data_dir=data_dir)


def cmd_list(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    records = asyncio.run(_load(settings, err))
    total = len(records)
    if args.organization:
        records = _for_organization(records, args.organization, settings)
    records = _found_and_sorted(records, args)
    if args.json:
        sys.stdout.write(records_to_json(records) + "\n")
        return EXIT_OK
    out = console()
    if not records and total and args.find:
        out.print(
            f"No persona has every word of {one_line(args.find)!r} ({total} in all; `persona-tui list` shows them)."
        )
        return EXIT_OK
    if not records and total:
        out.print(
            f"No personas were made for {one_line(args.organization)} ({total} in all; `persona-tui list` shows them)."
        )
        return EXIT_OK
    if not records:
        out.print(f'No personas yet in {settings.personas_dir}. Create one with: persona-tui generate "..."')
        return EXIT_OK
    table = Table(title=f"{len(records)} persona(s)", title_justify="left")
    for column in ("id", "name", "age", "occupation", "location", "created", "model"):
        table.add_column(column, overflow="fold")
    for r in records:
        row = r.summary()
        cells = (
            r.id[:8],
            row["name"],
            str(row["age"]),
            row["occupation"],
            row["location"],
            fmt_when(r.created_at),
            row["model"],
        )
        table.add_row(*(Text(strip_control(str(c), keep_newlines=False)) for c in cells))
    out.print(table)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    record, path = asyncio.run(PersonaStore(settings.personas_dir).find(args.id))
    if args.json:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
        return EXIT_OK
    console().print(describe(record, path))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    record = asyncio.run(PersonaStore(settings.personas_dir).delete(args.id))
    err.print(Text(f"Deleted {record.id[:8]} {strip_control(record.persona.name, keep_newlines=False)}"))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    if args.split or args.out is not None:
        return _export_split(args, settings, err)
    records = _found_and_sorted(asyncio.run(_load(settings, err)), args)
    text = export_text(records, args.format)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        if args.output.is_dir():
            raise IsADirectoryError(args.output)
        asyncio.run(atomic_write(args.output.resolve(), text.encode("utf-8")))
    except IsADirectoryError:
        raise CliError(
            f"Could not write {args.output}: it is a folder.",
            f"Give a file name with -o, for example {args.output / ('personas.' + args.format)}.",
        ) from None
    except OSError as exc:
        raise CliError(
            f"Could not write {args.output}: {(exc.strerror or str(exc)).lower()}.", "Choose a writable path with -o."
        ) from exc
    err.print(Text(f"Exported {len(records)} persona(s) to {args.output}"))
    return EXIT_OK


def _export_split(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """One file per persona (a Markdown card or a prompt each) in the folder --out names."""
    if args.format not in ("md", "prompt"):
        raise CliError("--split writes one card per persona: it needs --format md or --format prompt.", "", EXIT_USAGE)
    if args.out is None:
        raise CliError("--split needs a folder to write to.", "Add --out DIR, for example --out cards.", EXIT_USAGE)
    if args.output is not None:
        raise CliError("Give either -o FILE (one document) or --out DIR (one file per persona).", "", EXIT_USAGE)
    folder: Path = args.out
    if folder.exists() and not folder.is_dir():
        raise CliError(f"Could not write to {folder}: it is a file, not a folder.", "Give a folder with --out.")
    records = _found_and_sorted(asyncio.run(_load(settings, err)), args)

    async def write_all() -> None:
        for record in records:
            text = export_text([record], args.format)
            await atomic_write(folder.resolve() / card_file_name(record, args.format), text.encode("utf-8"))

    try:
        asyncio.run(write_all())
    except OSError as exc:
        raise CliError(
            f"Could not write to {folder}: {(exc.strerror or str(exc)).lower()}.",
            "Choose a writable folder with --out.",
        ) from exc
    err.print(Text(f"Exported {len(records)} persona(s) to {folder}, one file each"))
    return EXIT_OK


def cmd_report(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    try:
        run = RunStore(settings.runs_dir).latest_sync(args.run)
    except StoreError as exc:
        raise CliError(exc.message, exc.hint, EXIT_USAGE) from None
    if run is None:
        if args.run:
            raise CliError(f"No run's id starts with {args.run!r}.", "Run `persona-tui report` for the last run.")
        raise CliError("No run has been recorded yet.", "Generate a batch first: persona-tui generate 'nurses' -n 10")
    records = [r for r in asyncio.run(_load(settings, err)) if r.run_id == run.id or r.id in run.persona_ids]
    if not records:
        raise CliError(
            f"None of the personas of run {run.id[:8]} are in {settings.personas_dir} any more.",
            "They were deleted or moved; generate another batch.",
        )
    report = diversity_report(records, threshold=settings.similarity_threshold)
    out = console()
    if args.json:
        document = {"run": run.model_dump(mode="json"), "report": report.model_dump(mode="json")}
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    when = run.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    out.print(Text(f"Run {run.id[:8]} of {when}: {strip_control(run.request.description, keep_newlines=False)}"))
    missing = len(set(run.persona_ids) - {r.id for r in records})
    if missing:
        were = "was" if missing == 1 else "were"
        out.print(Text(f"{missing} of its personas {were} deleted since; the report covers the rest.", style="yellow"))
    for line in report_lines(report):
        out.print(Text(line))
    return EXIT_OK


def cmd_models(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """The server's models; a provider without models is a usage matter (2), an unreachable server a failure (1)."""
    provider = make_provider(settings)
    try:
        entries = asyncio.run(_server_models(provider, settings))
    except NoModelList as exc:
        raise CliError(exc.message, exc.hint, EXIT_USAGE) from None
    except GenerationError as exc:
        raise CliError(exc.message, exc.hint, EXIT_FAILED) from None
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if args.json:
        listed = [{**entry.to_json(), "current": entry.id == provider.model} for entry in entries]
        sys.stdout.write(json.dumps(listed, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    _print_models(entries, provider, Console(highlight=False))
    return EXIT_OK


async def _server_models(provider: Provider, settings: Settings) -> list[ModelEntry]:
    try:
        return await server_models(provider, settings)
    finally:
        await provider.aclose()


def _print_models(entries: list[ModelEntry], provider: Provider, out: Console) -> None:
    where = one_line(provider.endpoint)
    current = one_line(provider.model)
    if not entries:
        out.print(Text(f"{where} lists no models. Load or pull one there first (Ollama: ollama pull llama3.2)."))
        return
    table = Table(title=f"{len(entries)} model(s) at {where}", title_justify="left")
    for column in ("", "id", "owner", "created"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(*(Text(cell) for cell in model_cells(entry, provider.model)))
    out.print(table)
    if any(entry.id == provider.model for entry in entries):
        out.print(Text(f"{CURRENT_MARK} the current model ({current})"))
    else:
        out.print(Text(f"The current model, {current}, is not among them."))
    out.print(Text("Choose one with --model, PERSONA_TUI_MODEL or `model` in the config file; in the app, ctrl+l."))


def cmd_org(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    store = OrganizationStore(settings.organizations_dir)
    out = console()
    action = args.org_command
    if action == "add":
        org = _validated_org({"name": args.name, **{f: getattr(args, f) for f in ORG_FIELDS}})
        path = asyncio.run(store.save(org))
        err.print(Text(f"Added {org.name} ({path.name})"))
    elif action == "edit":
        current = asyncio.run(store.get(args.name))
        changes = {f: getattr(args, f) for f in ORG_FIELDS if getattr(args, f) is not None}
        if args.rename:
            changes["name"] = args.rename
        updated = _validated_org({**current.model_dump(), **changes, "updated_at": datetime.now(UTC)})
        asyncio.run(store.save(updated, replacing=current))
        err.print(Text(f"Updated {updated.name}"))
    elif action == "list":
        orgs, problems = asyncio.run(store.load_all())
        for problem in problems:
            err.print(Text(f"Skipped {problem.path}: {problem.reason}", style="yellow"))
        if args.json:
            sys.stdout.write(json.dumps([o.model_dump(mode="json") for o in orgs], indent=2, ensure_ascii=False) + "\n")
        elif not orgs:
            out.print("No organizations yet. Add one with: persona-tui org add NAME --product ...")
        else:
            table = Table(title=f"{len(orgs)} organization(s)", title_justify="left")
            columns = ("name", *ORG_FIELDS[:4])
            for column in columns:
                table.add_column(column, overflow="fold")
            for o in orgs:
                table.add_row(*(Text(one_line(getattr(o, c))) for c in columns))
            out.print(table)
    elif action == "show":
        org = asyncio.run(store.get(args.name))
        out.print(Text(org.context()))
    elif action == "delete":
        org = asyncio.run(store.delete(args.name))
        err.print(Text(f"Deleted {org.name}"))
    return EXIT_OK


def _validated_org(values: dict[str, object]) -> Organization:
    try:
        return Organization.model_validate(values)
    except ValidationError as exc:
        field, reason = plain_reason(exc)
        raise CliError(f"The organization's {field} {reason}.", code=EXIT_USAGE) from None


# ----- one persona changed: edit and refine -----


def cmd_edit(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Open the persona's fields in the user's editor; save a valid change with the earlier version kept."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise CliError(
            "No editor is set: both $VISUAL and $EDITOR are empty.",
            "Set one for this command, e.g. EDITOR=nano persona-tui edit ID; or edit it in the app (e).",
            EXIT_USAGE,
        )
    store = PersonaStore(settings.personas_dir)
    record, _ = asyncio.run(store.find(args.id))
    original = json.dumps(record.persona.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    start = original
    if args.source is not None:
        try:
            start = args.source.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.source} could not be read: {exc.strerror or exc}.", "", EXIT_USAGE) from None
    fd, name = tempfile.mkstemp(prefix=f"persona-{record.id[:8]}-", suffix=".json")
    draft = Path(name)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(start)
    try:
        code = subprocess.call([*shlex.split(editor), str(draft)])
    except OSError as exc:
        draft.unlink(missing_ok=True)
        reason = exc.strerror or exc
        raise CliError(f"The editor {editor!r} could not be started: {reason}.", "Check $VISUAL/$EDITOR.") from None
    text = draft.read_text(encoding="utf-8")
    if code != 0:
        raise CliError(f"The editor exited with status {code}; nothing was saved.", f"Your text is kept in {draft}.")
    if text == original:
        draft.unlink(missing_ok=True)
        err.print(Text(f"No change to {one_line(record.persona.name)}; nothing saved."))
        return EXIT_OK
    try:
        persona = Persona.model_validate_json(text)
    except ValidationError as exc:
        raise CliError(
            f"The edited persona is not valid: {_edit_problem(exc)}; nothing was saved.",
            f"Your text is kept in {draft}: fix it with `persona-tui edit {record.id[:8]} --from {draft}`.",
        ) from None
    new = record.with_change(persona, "edit")
    asyncio.run(store.replace(new))
    draft.unlink(missing_ok=True)
    changed = ", ".join(new.versions[-1].changed) if new.versions else ""
    err.print(Text(f"Saved {one_line(persona.name)} ({changed or 'no field'} changed); version {new.version_count}."))
    return EXIT_OK


def _edit_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return f"it is not valid JSON ({first.get('ctx', {}).get('error', first['msg'])})"
    field, reason = plain_reason(exc)
    return f"{field} {reason}"


def cmd_refine(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    store = PersonaStore(settings.personas_dir)
    record, _ = asyncio.run(store.find(args.id))
    if not args.instruction.strip():
        raise CliError("The instruction is empty.", "Say what to change, e.g. 'older, lives alone'.", EXIT_USAGE)
    provider = make_provider(settings)
    if not provider.is_ai:
        err.print(Text(f"Using the {provider.label}: the instruction is applied by simple rules.", style="yellow"))
    asked = _Asked()
    summary = asyncio.run(_refine(record, args, provider, store, settings, err, asked))
    if summary.saved:
        if args.json:
            sys.stdout.write(summary.saved[0].model_dump_json(indent=2) + "\n")
        return EXIT_OK
    if asked.refused_quietly:
        raise CliError(
            "Nothing was saved: there is no terminal to ask whether to keep the revision.",
            f"Save it with --yes: persona-tui refine {record.id[:8]} {shlex.quote(args.instruction)} --yes",
        )
    if summary.cancelled:
        err.print(Text("Revision discarded; nothing saved."))
        return EXIT_INTERRUPTED if asked.interrupted else EXIT_OK
    return EXIT_FAILED


class _Asked:
    refused_quietly = False
    """Not a terminal and no --yes: the diff was printed, nothing saved."""
    interrupted = False


async def _refine(
    record: PersonaRecord,
    args: argparse.Namespace,
    provider: Provider,
    store: PersonaStore,
    settings: Settings,
    err: Console,
    asked: _Asked,
) -> ev.Summary:
    from persona_tui.engine.pipeline.refine import refine

    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_interrupt() -> None:
        asked.interrupted = True
        cancel.set()

    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    estimates = await asyncio.to_thread(EstimateBook.load, settings.data_dir)
    summary = ev.Summary((), 1, True, 0.0, 0)
    try:
        with HeadlessRenderer(err, count=1, provider_label=provider.label) as view:

            async def decide(old: PersonaRecord, new: PersonaRecord) -> bool:
                if view.progress.live.is_started:
                    view.progress.stop()
                out = err if args.json else console()  # stdout holds only the record with --json
                out.print(Text(f"Changes to {one_line(old.persona.name)}:", style="bold"))
                out.print(revision_diff(old.persona, new.persona) or Text("No field changed."))
                if args.yes:
                    return True
                if not sys.stdin.isatty():
                    asked.refused_quietly = True
                    return False
                answer = await asyncio.to_thread(input, "Save this revision? [y/N] ")
                return answer.strip().lower() in ("y", "yes")

            async for event in refine(
                record,
                args.instruction,
                provider=provider,
                store=store,
                decide=decide,
                settings=settings,
                estimates=estimates,
                cancel=cancel,
            ):
                view.handle(event)
                if isinstance(event, ev.Finished):
                    summary = event.summary
    except (EOFError, asyncio.CancelledError):
        summary = ev.Summary((), 0, True, 0.0, 0)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        await provider.aclose()
    return summary


# ----- talking to personas -----


def _offline_note(provider: Provider, settings: Settings, err: Console, what: str) -> None:
    """Say that the offline generator is at work, and ``what`` it does; how to get a real model is said
    only to someone who did not choose it on purpose."""
    if not provider.is_ai:
        hint = f" {setup_hint(settings)}" if settings.provider == "auto" else ""
        err.print(Text(f"Using the {provider.label}: {what}{hint}", style="yellow"))


def _persona_text(record: PersonaRecord) -> str:
    return " ".join(str(value) for value in record.persona.model_dump().values()).casefold()


def _askees(args: argparse.Namespace, ids: list[str], settings: Settings, err: Console) -> list[PersonaRecord]:
    """The personas to ask: those named, else those of --org and --filter."""
    store = PersonaStore(settings.personas_dir)
    if ids:
        chosen = [asyncio.run(store.find(persona_id))[0] for persona_id in ids]
    elif args.organization or args.filter:
        chosen = asyncio.run(_load(settings, err))
        if args.organization:
            chosen = _for_organization(chosen, args.organization, settings)
    else:
        raise CliError(
            "No persona to ask.", 'Name them by id, or choose them with --org or --filter: ask ID "question".', 2
        )
    if args.filter:
        wanted = args.filter.casefold()
        chosen = [r for r in chosen if wanted in _persona_text(r)]
    unique = list({r.id: r for r in chosen}.values())
    if not unique:
        raise CliError("No persona matches.", "See `persona-tui list` for the personas and their ids.", EXIT_USAGE)
    return unique


def _question(text: str) -> str:
    from persona_tui.engine.pipeline.talk import QUESTION_MAX

    question = text.strip()
    if not question:
        raise CliError("The question is empty.", 'Put it last, in quotes: ask ID "What frustrates you?"', EXIT_USAGE)
    if len(question) > QUESTION_MAX:
        raise CliError(f"The question is {len(question):,} characters; at most {QUESTION_MAX:,}.", "", EXIT_USAGE)
    return question


def cmd_ask(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    from persona_tui.engine.pipeline.talk import new_group

    *ids, text = args.words
    question = _question(text)
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise CliError("--concurrency must be 1 or more.", "", EXIT_USAGE)
        settings = replace(settings, concurrency=args.concurrency)
    groups = GroupStore(settings.groups_dir)
    to: list[str] = []
    if args.group:
        group = asyncio.run(groups.find(args.group))
        store = PersonaStore(settings.personas_dir)
        records = [asyncio.run(store.find(persona_id))[0] for persona_id in group.persona_ids]
        if args.to:
            to = [r.id for r in records if r.id.startswith(args.to.strip().lower())]
            if len(to) != 1:
                raise CliError(f"No single persona of the group has an id starting with {args.to!r}.", "", EXIT_USAGE)
    else:
        records = _askees(args, ids, settings, err)
        group = new_group(records)
    provider = make_provider(settings)
    _offline_note(provider, settings, err, "answers are made from the personas' own fields, not by a model.")
    heard = asyncio.run(_ask(group, records, question, to, provider, settings, err, groups))
    return _ask_finish(group, heard, args, err, groups)


async def _ask(
    group: FocusGroup,
    records: list[PersonaRecord],
    question: str,
    to: list[str],
    provider: Provider,
    settings: Settings,
    err: Console,
    groups: GroupStore,
) -> ev.TalkFinished | None:
    from persona_tui.engine.pipeline.talk import group_question

    count = len(to or group.persona_ids)
    cancel = asyncio.Event()
    end: ev.TalkFinished | None = None
    estimates = await asyncio.to_thread(EstimateBook.load, settings.data_dir)
    with (
        _interrupts(cancel),
        HeadlessRenderer(err, count=count, provider_label=provider.label, done="answered") as view,
    ):
        try:
            async for event in group_question(
                group,
                {r.id: r for r in records},
                question,
                to,
                provider=provider,
                settings=settings,
                groups=groups,
                estimates=estimates,
                cancel=cancel,
            ):
                view.handle(event)
                if isinstance(event, ev.TalkFinished):
                    end = event
        finally:
            await provider.aclose()
    return end


def _ask_finish(
    group: FocusGroup, end: ev.TalkFinished | None, args: argparse.Namespace, err: Console, groups: GroupStore
) -> int:
    from persona_tui.export import group_markdown

    asked = group.questions[-1]
    rows = []
    for persona_id in asked.to:
        got = asked.answers.get(persona_id)
        name = group.names.get(persona_id, "")
        rows.append({"persona_id": persona_id, "name": name, **(got.model_dump() if got else {"error": "not asked"})})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    elif args.markdown:
        sys.stdout.write(group_markdown(group) + "\n")
    else:
        out = console()
        for row in rows:
            words = row.get("answer") or f"(no answer: {row.get('error') or 'stopped'})"
            out.print(Text(f"{one_line(row['name'])}: ", style="bold") + Text(strip_control(str(words))))
    sys.stdout.flush()
    err.print(Text(f"Focus group {group.id[:8]} saved in {groups.path_for(group)}", style="dim"))
    err.print(Text(f'Follow up with: persona-tui ask --group {group.id[:8]} "..."', style="dim"))
    if end is None or end.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if end.ok else EXIT_FAILED


@contextlib.contextmanager
def _interrupts(cancel: asyncio.Event) -> Iterator[None]:
    """First Ctrl-C: stop the answers and keep what came; a second: stop at once."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_interrupt() -> None:
        if cancel.is_set() and task is not None:
            task.cancel()
        cancel.set()

    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)


def cmd_interview(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    from persona_tui.export import transcript_markdown

    record, _ = asyncio.run(PersonaStore(settings.personas_dir).find(args.id))
    transcripts = TranscriptStore(settings.transcripts_dir)
    turns = asyncio.run(transcripts.read(record.id))
    if args.markdown:
        sys.stdout.write(transcript_markdown(record, turns) + "\n")
        return EXIT_OK
    provider = make_provider(settings)
    _offline_note(provider, settings, err, "answers are made from the persona's own fields, not by a model.")
    name = one_line(record.persona.name)
    earlier = f"; {len(turns)} earlier turn(s) kept, the conversation goes on" if turns else ""
    err.print(Text(f"Interviewing {name} ({record.persona.age}, {one_line(record.persona.occupation)}){earlier}."))
    err.print(Text("One question a line; an empty line or Ctrl-D ends; Ctrl-C stops an answer.", style="dim"))
    return asyncio.run(_interview(record, turns, provider, settings, err, transcripts))


async def _interview(
    record: PersonaRecord,
    turns: list[Turn],
    provider: Provider,
    settings: Settings,
    err: Console,
    transcripts: TranscriptStore,
) -> int:
    lines = _stdin_lines()
    estimates = await asyncio.to_thread(EstimateBook.load, settings.data_dir)
    out = console()
    failed = False
    name = one_line(record.persona.name)
    try:
        while True:
            if sys.stdin.isatty():
                err.print(Text("You: ", style="bold"), end="")
            question = (await lines.get() or "").strip()
            if not question:
                return EXIT_FAILED if failed else EXIT_OK
            turn = await _one_turn(record, turns, question, provider, settings, err, transcripts, estimates)
            if turn is None:
                failed = True
                continue
            turns.append(turn)
            out.print(Text(f"{name}: ", style="bold") + Text(strip_control(turn.answer or "(nothing yet)")))
            if turn.flags:
                err.print(Text(flags_sentence(turn.flags), style="yellow"))
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    finally:
        await provider.aclose()


async def _one_turn(
    record: PersonaRecord,
    turns: list[Turn],
    question: str,
    provider: Provider,
    settings: Settings,
    err: Console,
    transcripts: TranscriptStore,
    estimates: EstimateBook,
) -> Turn | None:
    from persona_tui.engine.pipeline.talk import interview_turn

    cancel = asyncio.Event()
    kept: Turn | None = None
    with _interrupts(cancel), HeadlessRenderer(err, count=1, provider_label=provider.label, done="answered") as view:
        async for item in interview_turn(
            record,
            turns,
            _question(question),
            provider=provider,
            settings=settings,
            transcripts=transcripts,
            estimates=estimates,
            cancel=cancel,
        ):
            if isinstance(item, Turn):
                kept = item
            else:
                view.handle(item)
    return kept


def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of stdin as they come, read by a daemon thread (a blocked read never holds up the exit); None at EOF."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError, RuntimeError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin-lines", daemon=True).start()
    return queue
