"""Export file names: two exports in the same second both stay (issue 14, item 3)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from persona_tui.export import export_target


def test_two_exports_in_one_second_get_two_names(tmp_path: Path) -> None:
    moment = datetime(2026, 12, 2, 9, 30, 5)
    first = export_target(tmp_path, moment, "json")
    first.write_text("[]")
    second = export_target(tmp_path, moment, "json")
    second.write_text("[]")
    third = export_target(tmp_path, moment, "json")
    assert first.name == "personas-20261202-093005.json"
    assert second.name == "personas-20261202-093005-2.json"
    assert third.name == "personas-20261202-093005-3.json"
    assert export_target(tmp_path, moment, "csv").name == "personas-20261202-093005.csv"
