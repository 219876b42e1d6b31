"""Pictures of the app in each key state, compared with the accepted SVGs in ``__snapshots__``.

The states come from ``tests/scenes.py`` (also used by ``screenshots/make_screenshots.py``):
a fake clock, fixed records and hand-built engine events, so each picture is the same
on every run. After a deliberate change to the look, review the new pictures and run
``pytest tests/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenes import SCENES, app_for

WIDE = (120, 36)
SIZES = [(name, WIDE) for name in SCENES] + [
    ("first_run", (80, 24)),
    ("first_run_offline", (80, 24)),
    ("mid_stream", (80, 24)),
    ("success", (80, 24)),
    ("mid_stream", (160, 48)),
]


@pytest.mark.parametrize(
    ("name", "size"),
    SIZES,
    ids=[f"{name}-{width}x{height}" for name, (width, height) in SIZES],
)
def test_scene(snap_compare, tmp_path: Path, name: str, size: tuple[int, int]) -> None:
    scene = SCENES[name]
    app = app_for(scene, tmp_path)
    assert snap_compare(app, run_before=scene.run_before, terminal_size=size)
