"""Render the key states of the app to ``screenshots/<name>.svg``.

Run from the repository root::

    python screenshots/make_screenshots.py            # every picture
    python screenshots/make_screenshots.py success    # only some

The states are the scenes of ``tests/scenes.py``, the same ones the snapshot tests
check: a fake clock, fixed personas and hand-built engine events, so the pictures
are the same on every run and no model is called. Each app gets a temporary data
folder; the user's own data and config folders are never read or written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SHOTS: dict[str, tuple[str, tuple[int, int]]] = {
    "first-run-offline": ("first_run_offline", (120, 36)),
    "mid-stream": ("mid_stream", (120, 36)),
    "waiting-slow": ("waiting_slow", (120, 36)),
    "thinking": ("thinking", (120, 36)),
    "success": ("success", (120, 36)),
    "failure": ("failure", (120, 36)),
    "cancelled": ("cancelled", (120, 36)),
    "mid-stream-80x24": ("mid_stream", (80, 24)),
    "plan": ("plan", (120, 36)),
    "report": ("report", (120, 36)),
    "help": ("help", (120, 36)),
    "edit-form": ("edit_form", (120, 36)),
    "refine-diff": ("refine_diff", (120, 36)),
}
"""File name (without .svg): the scene it shows and the terminal size (columns, rows)."""


async def shoot(scene_name: str, size: tuple[int, int], data_dir: Path) -> str:
    from tests.scenes import SCENES, app_for

    scene = SCENES[scene_name]
    app = app_for(scene, data_dir)
    async with app.run_test(size=size) as pilot:
        await scene.run_before(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        return app.export_screenshot(title=f"persona-tui: {scene.title}")


async def main(names: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="persona-tui-shots-") as tmp:
        # Belt and braces: the apps get explicit folders, and nothing else may find the real ones.
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            os.environ[var] = str(Path(tmp) / var.lower())
        for name in names:
            scene_name, size = SHOTS[name]
            data_dir = Path(tmp) / name
            data_dir.mkdir()
            svg = await shoot(scene_name, size, data_dir)
            target = out / f"{name}.svg"
            target.write_text(svg, encoding="utf-8")
            print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}  ({size[0]}x{size[1]})")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"pictures to make (default: all): {', '.join(SHOTS)}")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the SVG files (default: screenshots/)")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in SHOTS]
    if unknown:
        parser.error(f"unknown picture(s): {', '.join(unknown)}; choose from {', '.join(SHOTS)}")
    sys.path.insert(0, str(ROOT))  # for tests.scenes, when run as a script
    asyncio.run(main(args.names or list(SHOTS), args.out))


if __name__ == "__main__":
    cli()
