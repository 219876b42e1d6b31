"""Allow ``python -m persona_tui``."""

from __future__ import annotations

from persona_tui.cli import main

raise SystemExit(main())
