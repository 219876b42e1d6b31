"""``persona-tui``: the app when no command is given, else the headless command.

The two front ends never import each other (an import-linter contract says
so); this launcher sits above both and is the only place that knows both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from persona_tui.cli import EXIT_USAGE, CliError
from persona_tui.config import Settings

NO_TERMINAL = (
    "persona-tui opens an app that needs a terminal, and there is none here (input or output is redirected). "
    'For scripts use the headless commands: persona-tui generate "..." (see persona-tui --help).'
)


def _has_terminal() -> bool:
    return (sys.stdin.isatty() and sys.stdout.isatty()) or _in_browser()


def _in_browser() -> bool:
    """Whether textual-serve started this process for a browser tab (its pipes are the terminal then)."""
    return os.environ.get("TEXTUAL_DRIVER", "").endswith("web_driver:WebDriver")


def _open_app(settings: Settings) -> int:
    if not _has_terminal():
        print(f"Error: {NO_TERMINAL}", file=sys.stderr)
        return 2
    from persona_tui.tui.app import run_app  # Textual is imported only when the app is wanted

    return run_app(settings)


def _serve_app(*, host: str, port: int, public: bool, app_args: Sequence[str], data_dir: str) -> int:
    from persona_tui.tui.serve import ServeError, serve  # aiohttp and textual-serve only when serving

    try:
        return serve(host=host, port=port, public=public, app_args=app_args, data_dir=data_dir)
    except ServeError as exc:
        raise CliError(exc.message, exc.hint, EXIT_USAGE) from None


def main(argv: Sequence[str] | None = None) -> int:
    from persona_tui.cli import main as run_command

    return run_command(argv, open_app=_open_app, serve_app=_serve_app)
