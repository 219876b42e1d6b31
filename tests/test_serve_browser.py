"""The served app in a real headless Chromium: type a description, generate offline, find the persona on the page,
copy its card to the browser's clipboard.

Chromium is Debian's package; when it is missing, the session's first use installs it with apt-get (CI runs
this from a fresh clone as root), or the test is skipped with the reason (no apt-get, not root, no network).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_tui.models import PersonaRecord
from tests.chromium import Page, headless_chromium, install_chromium
from tests.serving import free_port, serve_env, served

DESCRIPTION = "beekeepers in the Scottish Highlands"


@pytest.fixture(scope="session")
def chromium() -> Iterator[str]:
    path, reason = install_chromium()
    if path is None:
        pytest.skip(reason)
    yield path


async def saved_persona(data_dir: Path, *, timeout: float = 60) -> PersonaRecord:
    """The first persona file the served app writes (a bound on waiting, not a measure)."""
    folder = data_dir / "personas"
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        # Not the hidden temporary file a save writes before it moves it into place.
        files = sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []
        if files:
            return PersonaRecord.model_validate_json(files[0].read_bytes())
        await asyncio.sleep(0.1)
    raise AssertionError(f"no persona was saved in {folder}")


async def generate_in_page(page: Page, url: str, data_dir: Path, description: str = DESCRIPTION) -> PersonaRecord:
    """Open the served app, type a description, press ctrl+g; the persona saved, once the page shows it."""
    await page.open(url)
    await page.wait_for_text("Describe the people you want")
    await page.focus_terminal()
    await page.type(description)
    await page.wait_for_text(description)  # the keys reached the app's description field
    await page.ctrl("g")
    record = await saved_persona(data_dir)
    await page.wait_for_text(record.persona.name)  # in the table, drawn by the app, read from the page
    return record


def footer(screen: str) -> str:
    return [line for line in screen.splitlines() if line.strip()][-1]


async def copy_card(page: Page, url: str, name: str, *, timeout: float = 30) -> str:
    """ctrl+t to the table, `c` on the new row: what the clipboard holds once it holds the card."""
    await page.allow_clipboard(url.rstrip("/"))
    await page.wait_for_text("Finished: 1 of 1 saved")  # the footer is the idle one from now on
    idle = footer(await page.screen_text())
    await page.ctrl("t")
    # A key the field does not take (ctrl+t) reaches the app's bindings after the field's own queue: `c`
    # sent at once could land in the field first. The table's keys in the footer say the table has focus.
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while footer(await page.screen_text()) == idle:
        if loop.time() > end:
            raise AssertionError(f"ctrl+t did not move to the table; the page shows:\n{await page.screen_text()}")
        await asyncio.sleep(0.1)
    await page.type("c")
    text = ""
    while not text.startswith(f"# {name}"):
        if loop.time() > end:
            raise AssertionError(f"the clipboard holds {text!r}; the page shows:\n{await page.screen_text()}")
        await asyncio.sleep(0.1)
        text = await page.clipboard()
    return text


@pytest.mark.asyncio
async def test_a_persona_generated_in_the_browser(chromium: str, tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(tmp_path)
    with served(env, "--port", str(port)) as server:
        async with headless_chromium(chromium) as page:
            record = await generate_in_page(page, server.url, tmp_path / "data")
            screen = await page.screen_text()
            copied = await copy_card(page, server.url, record.persona.name)
        assert server.stop() == 0
    assert record.provider == "offline" and record.request.description == DESCRIPTION
    assert f"Saved {record.persona.name}" in screen  # the generation panel's last word, on the page
    assert "Traceback" not in server.stderr
    # The same features as in a terminal: `c` on the row put the persona's Markdown card on the browser's clipboard.
    assert copied.startswith(f"# {record.persona.name}\n") and record.persona.quote in copied
