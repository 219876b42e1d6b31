"""Take ``screenshots/browser.png``: the app served by ``persona-tui serve``, in headless Chromium, after one
offline generation.

Run from the repository root (Chromium from Debian's ``chromium`` package; installed when missing and root)::

    python screenshots/make_browser_screenshot.py

It is the browser test's own path (``tests/test_serve_browser.py``): a temporary data folder, the offline
generator with a fixed seed, a description typed into the page and ctrl+g. No model is called.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WIDTH, HEIGHT = 1280, 800


async def main(out: Path) -> None:
    from tests.chromium import headless_chromium, install_chromium
    from tests.serving import free_port, serve_env, served
    from tests.test_serve_browser import generate_in_page

    chromium, reason = install_chromium()
    if chromium is None:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="persona-tui-browser-") as tmp:
        env = serve_env(Path(tmp), PERSONA_TUI_SEED="7")
        with served(env, "--port", str(free_port())) as server:
            async with headless_chromium(chromium, width=WIDTH, height=HEIGHT) as page:
                await page.set_viewport(WIDTH, HEIGHT)
                record = await generate_in_page(page, server.url, Path(tmp) / "data")
                await asyncio.sleep(0.5)  # the table's selection settles on the new row before the picture
                await page.screenshot(out)
    print(f"wrote {out} ({record.persona.name})")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    asyncio.run(main(HERE / "browser.png"))
