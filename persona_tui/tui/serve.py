"""``persona-tui serve``: the app in a web browser, through textual-serve.

textual-serve's :class:`~textual_serve.server.Server` is an aiohttp application: its page loads xterm.js,
which opens a websocket; for each websocket the server starts one process of a shell command (here
``python -m persona_tui`` with the flags the user gave) under Textual's web driver, and relays its
output and the browser's keys. That process reads the same settings and data folder as the terminal
app, and the API key stays in its environment: the page only ever receives the drawn screen.

What this module adds in front of textual-serve's routes (see docs/SERVE.md):

- on a loopback address (the default), requests must name a loopback host (so a web page that
  re-points its own name at 127.0.0.1 cannot drive the app) and a websocket must come from the
  served page itself (a browser lets any site open a websocket to 127.0.0.1);
- on any other address (only with ``--public``), every request needs the access token made at start:
  ``?token=`` in the printed address once, then a cookie the page's own requests carry;
- its own start-up: one line with the address, one sentence and a hint when the port cannot be had.

No Textual is imported here: the server process only relays bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server
from yarl import URL

TITLE = "persona-tui"
TOKEN_PARAM = "token"
FORBIDDEN = "Forbidden: open the address persona-tui serve printed when it started (with its token, if it had one)."
PUBLIC_WARNING = (
    "Warning: the app is served on {host}, beyond this machine. Anyone with the address below can "
    "generate personas with your API key and read, change and delete the personas in {data}. "
    "Share it only with people you trust, and stop the server (Ctrl+C) when done."
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServeError(Exception):
    """The server cannot start: one sentence and a hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def app_command(app_args: Sequence[str]) -> str:
    """The shell command textual-serve runs per browser tab: this Python, this package, the user's flags."""
    return shlex.join([sys.executable, "-m", "persona_tui", *app_args])


@dataclass(frozen=True)
class Access:
    """Who may use the server: a token (served beyond loopback) or only the loopback names."""

    port: int
    token: str | None

    @property
    def cookie(self) -> str:
        # Cookies are shared between the ports of one host: the port keeps two servers' tokens apart.
        return f"persona_tui_token_{self.port}"

    def token_ok(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        given = request.query.get(TOKEN_PARAM) or request.cookies.get(self.cookie) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def host_ok(self, request: web.Request) -> bool:
        if self.token is not None:
            return True  # served beyond loopback on purpose: any name of this machine will do
        return is_loopback(URL(f"http://{request.host}").host or "")

    @staticmethod
    def origin_ok(request: web.Request) -> bool:
        """A websocket's page must be the served page (a browser always sends its origin)."""
        origin = request.headers.get("Origin")
        if origin is None or request.path != "/ws":
            return True
        return origin in (f"http://{request.host}", f"https://{request.host}")


class PersonaServer(Server):
    """textual-serve's server with :class:`Access` checked before every route, and addresses taken from
    the request (so the page works at whichever name it was opened: localhost, 127.0.0.1, a host name)."""

    def __init__(self, command: str, *, host: str, port: int, token: str | None) -> None:
        super().__init__(command, host=host, port=port, title=TITLE)
        self.access = Access(port=port, token=token)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard())
        return app

    def _guard(self) -> Any:
        access = self.access

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not (access.host_ok(request) and access.origin_ok(request) and access.token_ok(request)):
                return web.Response(status=403, text=FORBIDDEN + "\n")
            if access.token is not None and TOKEN_PARAM in request.query and request.path == "/":
                # The token leaves the address bar (and the history) for a cookie only this site gets.
                response: web.StreamResponse = web.Response(status=303, headers={"Location": "/"})
                response.set_cookie(access.cookie, access.token, httponly=True, samesite="Strict", path="/")
            else:
                response = await handler(request)
            response.headers["Referrer-Policy"] = "no-referrer"
            return response

        return guard

    async def on_startup(self, app: web.Application) -> None:
        """textual-serve prints a banner here; :func:`serve` prints the address itself."""

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page, with its script and websocket addresses on the host the browser used."""
        base = f"{request.scheme}://{request.host}"
        ws_scheme = "wss" if request.scheme == "https" else "ws"
        router = request.app.router
        context = {
            "font_size": _int(request.query.get("fontsize"), 16),
            "app_websocket_url": f"{ws_scheme}://{request.host}{router['websocket'].url_for()}",
            "config": {"static": {"url": f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def address(host: str, port: int, token: str | None) -> str:
    """The address to open: an unspecified host (0.0.0.0, ::) becomes this machine's name."""
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    query = f"?{TOKEN_PARAM}={token}" if token else ""
    return f"http://{shown}:{port}/{query}"


def bind_error(exc: OSError, host: str, port: int) -> ServeError:
    """One sentence and a hint for an address that cannot be listened on."""
    if exc.errno == errno.EADDRINUSE:
        return ServeError(
            f"Port {port} on {host} is already in use (by another program, or another persona-tui serve).",
            f"Choose another port, e.g. persona-tui serve --port {port + 1 if port < 65535 else 8000}.",
        )
    if exc.errno == errno.EACCES:
        return ServeError(
            f"Listening on port {port} is not allowed for this user.",
            "Ports below 1024 need administrator rights: choose one above, e.g. --port 8000.",
        )
    if isinstance(exc, socket.gaierror):
        return ServeError(
            f"The host name {host} cannot be resolved to an address.",
            "Leave --host out to serve on 127.0.0.1, or give this machine's address or name.",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ServeError(
            f"{host} is not an address of this machine.",
            "Leave --host out to serve on 127.0.0.1, or give one of this machine's addresses.",
        )
    return ServeError(f"Cannot listen on {host} port {port}: {exc.strerror or exc}.", "Try another --host or --port.")


async def _run(server: PersonaServer, announce: Callable[[], None]) -> None:
    runner = web.AppRunner(await server._make_app(), handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, server.host, server.port).start()
    except OSError as exc:
        await runner.cleanup()
        raise bind_error(exc, server.host, server.port) from None
    announce()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


def serve(*, host: str, port: int, public: bool, app_args: Sequence[str], data_dir: str) -> int:
    """Serve the app until Ctrl+C; the address (with the token, when there is one) is printed once, on stderr."""
    if not public and not is_loopback(host):
        raise ServeError(
            f"Serving on {host} would let other machines use the app, and with it your API key.",
            "Add --public to allow it (the address printed then carries an access token), "
            "or leave --host out to serve on 127.0.0.1 only.",
        )
    token = secrets.token_urlsafe(24) if public else None
    server = PersonaServer(app_command(app_args), host=host, port=port, token=token)

    def announce() -> None:
        if public and not is_loopback(host):
            print(PUBLIC_WARNING.format(host=host, data=data_dir), file=sys.stderr)
        print(f"Serving persona-tui at {address(host, port, token)}", file=sys.stderr)
        print(
            "Each browser tab runs its own app, on the data in the same folder. Ctrl+C stops the server.",
            file=sys.stderr,
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(server, announce))
    return 0
