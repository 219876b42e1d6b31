"""The engine and the store never import Textual: scripts and the CLI stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEADLESS_MODULES = [
    "persona_tui.engine",
    "persona_tui.engine.pipeline",
    "persona_tui.engine.providers.openai_compatible",
    "persona_tui.engine.providers.offline",
    "persona_tui.engine.estimate",
    "persona_tui.storage",
    "persona_tui.config",
    "persona_tui.models",
    "persona_tui.cli",
    "persona_tui.render",
    "persona_tui.present",
    "persona_tui.export",
    "persona_tui.narrate",
    "persona_tui.batch_state",
]


@pytest.mark.parametrize("module", HEADLESS_MODULES)
def test_module_does_not_import_textual(module: str) -> None:
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_the_check_can_see_textual() -> None:
    """The probe above really detects an import (so an empty answer means something)."""
    code = "import sys, textual\nprint(','.join(m for m in sys.modules if m == 'textual'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "textual"


def test_import_linter_contract_holds() -> None:
    """The same rule, checked statically over every import in the package (pyproject's contract)."""
    pytest.importorskip("importlinter")
    script = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(script), "--no-cache"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout
