"""Allow ``python -m persona_tui``."""

from __future__ import annotations

from persona_tui.launch import main

raise SystemExit(main())
