"""A headless Chromium driven through its DevTools protocol, for the served app (``persona-tui serve``).

No browser library: Chromium is Debian's ``chromium`` package (installed here when missing, as CI needs it),
and the DevTools protocol is JSON over a websocket, spoken with aiohttp's client (textual-serve's own
dependency). The page's terminal is xterm.js drawing on a canvas, so its text is not in the DOM: a script
run before the page's own catches the ``Terminal`` object when textual-serve's client stores it (as
``this.terminal``), and :meth:`Page.screen_text` reads its buffer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
APT_PACKAGE = "chromium"

CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", { value, writable: true, configurable: true, enumerable: true });
    if (value && value.buffer && value.buffer.active && !window.__servedTerminal) window.__servedTerminal = value;
  },
});
"""
"""Keeps the page's xterm.js Terminal in ``window.__servedTerminal`` (a setter on every object's prototype,
removed per object the first time it is assigned, so nothing else changes)."""

SCREEN_TEXT = """
(() => {
  const term = window.__servedTerminal;
  if (!term) return null;
  const buffer = term.buffer.active, lines = [];
  for (let y = 0; y < buffer.length; y++) lines.push(buffer.getLine(y).translateToString(true));
  return lines.join("\\n");
})()
"""


def find_chromium() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def install_chromium() -> tuple[str | None, str]:
    """Chromium's path, installing Debian's package when it is missing and apt-get can; else why not."""
    if path := find_chromium():
        return path, ""
    if shutil.which("apt-get") is None:
        return None, "Chromium is not installed and there is no apt-get to install it (install `chromium`)."
    if os.geteuid() != 0:
        return None, "Chromium is not installed and installing it needs root (run `apt-get install chromium`)."
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt_get(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=900)

    install = ("install", "-y", "-q", "--no-install-recommends", APT_PACKAGE)
    done = apt_get(*install)
    if done.returncode != 0:  # the package lists may be stale or missing: update them once and retry
        apt_get("update", "-q")
        done = apt_get(*install)
    if path := find_chromium():
        return path, ""
    tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:]) or "no output"
    return None, f"Chromium is not installed and `apt-get install chromium` failed (no network?): {tail}"


class DevTools:
    """One DevTools websocket: commands by id, events kept until asked for."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self.waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser closed its DevTools connection"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[number] = future
        await self.socket.send_json({"id": number, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.socket.close()


class Page:
    """The one tab of a headless Chromium, on the served app."""

    def __init__(self, tools: DevTools) -> None:
        self.tools = tools

    async def open(self, url: str) -> None:
        await self.tools.send("Page.enable")
        await self.tools.send("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
        await self.tools.send("Page.navigate", url=url)

    async def screen_text(self) -> str:
        """The terminal's text, row by row ('' before the page has made its terminal)."""
        return str(await self.tools.evaluate(SCREEN_TEXT) or "")

    async def wait_for_text(self, wanted: str, *, timeout: float = 60) -> str:
        """The screen once it shows ``wanted`` (a bound on waiting, not a measure: raises with the screen)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        text = ""
        while loop.time() < end:
            text = await self.screen_text()
            if wanted in text:
                return text
            await asyncio.sleep(0.2)
        raise AssertionError(f"{wanted!r} never appeared on the page; it shows:\n{text}")

    async def focus_terminal(self) -> None:
        await self.tools.evaluate("document.querySelector('.xterm-helper-textarea').focus()")

    async def type(self, text: str) -> None:
        await self.tools.send("Input.insertText", text=text)

    async def ctrl(self, letter: str) -> None:
        """Ctrl+letter, as a keyboard sends it (xterm.js turns it into the control byte the app reads)."""
        key = dict(key=letter, code=f"Key{letter.upper()}", windowsVirtualKeyCode=ord(letter.upper()), modifiers=2)
        await self.tools.send("Input.dispatchKeyEvent", type="rawKeyDown", **key)
        await self.tools.send("Input.dispatchKeyEvent", type="keyUp", **key)

    async def allow_clipboard(self, origin: str) -> None:
        """Let the page at ``origin`` write and read the clipboard (a headless browser asks no one)."""
        permissions = ["clipboardReadWrite", "clipboardSanitizedWrite"]
        await self.tools.send("Browser.grantPermissions", origin=origin, permissions=permissions)

    async def clipboard(self) -> str:
        result = await self.tools.send(
            "Runtime.evaluate", expression="navigator.clipboard.readText()", awaitPromise=True, returnByValue=True
        )
        return str(result.get("result", {}).get("value") or "")

    async def set_viewport(self, width: int, height: int) -> None:
        await self.tools.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.tools.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def headless_chromium(executable: str, *, width: int = 1280, height: int = 800) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab; no request leaves 127.0.0.1 (fonts from the web fail fast)."""
    with tempfile.TemporaryDirectory(prefix="persona-tui-chromium-") as profile:
        process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",  # root in a container has no user namespace for the sandbox
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                f"--window-size={width},{height}",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port = await _devtools_port(Path(profile), process)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    targets = await answer.json()
                page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                socket = await http.ws_connect(page_url, max_msg_size=0)
                tools = DevTools(socket)
                try:
                    yield Page(tools)
                finally:
                    await tools.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


async def _devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose, from the DevToolsActivePort file it writes in its profile."""
    marker = profile / "DevToolsActivePort"
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"Chromium exited at start (code {process.returncode})")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        await asyncio.sleep(0.1)
    raise RuntimeError("Chromium did not open its DevTools port within 30 s")
