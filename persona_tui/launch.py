"""``persona-tui``: the app when no command is given, else the headless command.

The two front ends never import each other (an import-linter contract says
so); this launcher sits above both and is the only place that knows both.
"""

from __future__ import annotations

from collections.abc import Sequence

from persona_tui.config import Settings


def _open_app(settings: Settings) -> int:
    from persona_tui.tui.app import run_app  # Textual is imported only when the app is wanted

    return run_app(settings)


def main(argv: Sequence[str] | None = None) -> int:
    from persona_tui.cli import main as run_command

    return run_command(argv, open_app=_open_app)
