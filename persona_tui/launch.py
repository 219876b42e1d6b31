"""``persona-tui``: the app when no command is given, else the headless command.

The two front ends never import each other (an import-linter contract says
so); this launcher sits above both and is the only place that knows both.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from persona_tui.config import Settings

NO_TERMINAL = (
    "persona-tui opens an app that needs a terminal, and there is none here (input or output is redirected). "
    'For scripts use the headless commands: persona-tui generate "..." (see persona-tui --help).'
)


def _has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _open_app(settings: Settings) -> int:
    if not _has_terminal():
        print(f"Error: {NO_TERMINAL}", file=sys.stderr)
        return 2
    from persona_tui.tui.app import run_app  # Textual is imported only when the app is wanted

    return run_app(settings)


def main(argv: Sequence[str] | None = None) -> int:
    from persona_tui.cli import main as run_command

    return run_command(argv, open_app=_open_app)
