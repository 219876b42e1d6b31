"""``persona-tui serve`` without a browser: the address it listens on, who may come in, what the page gets."""

from __future__ import annotations

import asyncio
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from persona_tui import cli, launch
from persona_tui.tui.serve import PUBLIC_WARNING, address, app_command, bind_error, is_loopback
from tests.serving import free_port, serve_env, served


def test_the_default_address_is_this_machine_only() -> None:
    args = cli.build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.public) == ("127.0.0.1", 8000, False)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_which_hosts_are_this_machine_only(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Serve the app to a web browser" in text and "--public" in text and "access token" in text
    assert "exit codes:" in text and "OPENAI_API_KEY" in text and "PERSONA_TUI_DATA_DIR" in text


def test_the_served_app_gets_the_same_data_folder_and_model_flags(tmp_path: Path) -> None:
    asked: list[dict[str, Any]] = []

    def fake_serve(**kwargs: Any) -> int:
        asked.append(kwargs)
        return 0

    argv = ["serve", "--data-dir", str(tmp_path / "d"), "--provider", "offline", "--seed", "7", "--port", "8123"]
    assert cli.main(argv, serve_app=fake_serve) == 0
    [call] = asked
    assert call["host"] == "127.0.0.1" and call["port"] == 8123 and call["public"] is False
    assert call["app_args"] == ["--data-dir", str((tmp_path / "d").resolve()), "--provider", "offline", "--seed", "7"]
    command = app_command(call["app_args"])
    assert command.startswith(sys.executable) and "-m persona_tui --data-dir" in command
    assert " serve" not in command  # each tab runs the app itself, not another server


def test_a_data_folder_with_spaces_reaches_the_app_whole(tmp_path: Path) -> None:
    """textual-serve runs the command through the shell: a folder's name is one argument, never shell code."""
    folder = tmp_path / "my personas; rm -rf x"
    command = app_command(["--data-dir", str(folder)])
    assert shlex.split(command) == [sys.executable, "-m", "persona_tui", "--data-dir", str(folder)]


def test_another_address_without_public_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = launch.main(["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path)])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Error: Serving on 0.0.0.0 would let other machines use the app, and with it your API key." in err
    assert "Add --public to allow it" in err and "Traceback" not in err


def test_a_port_in_use_is_one_sentence_and_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = launch.main(["serve", "--port", str(port), "--data-dir", str(tmp_path)])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"Error: Port {port} on 127.0.0.1 is already in use" in err
    assert f"persona-tui serve --port {port + 1}" in err and "Traceback" not in err


def test_an_address_that_is_not_this_machines_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--host", "192.0.2.1", "--public", "--port", str(free_port()), "--data-dir", str(tmp_path)]
    assert launch.main(argv) == 2  # 192.0.2.1 is TEST-NET-1: never an address of a machine
    err = " ".join(capsys.readouterr().err.split())
    assert "Error: 192.0.2.1 is not an address of this machine." in err and "Leave --host out" in err
    assert "Warning" not in err and "token=" not in err  # nothing was served: no warning, no token


def test_a_host_name_that_does_not_resolve_is_one_sentence() -> None:
    error = bind_error(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "nowhere.invalid", 8000)
    assert error.message == "The host name nowhere.invalid cannot be resolved to an address."


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_port_out_of_range_is_refused(port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert launch.main(["serve", "--port", port, "--data-dir", str(tmp_path)]) == 2
    assert f"--port {port} is not a port." in capsys.readouterr().err


def test_the_printed_address_of_an_unspecified_host_is_this_machines_name() -> None:
    assert address("0.0.0.0", 8000, "abc") == f"http://{socket.gethostname()}:8000/?token=abc"
    assert address("::1", 9000, None) == "http://[::1]:9000/"


async def _status(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    async with session.get(url, allow_redirects=False, **kwargs) as response:
        return response.status


@pytest.mark.asyncio
async def test_beyond_loopback_every_request_needs_the_token(tmp_path: Path) -> None:
    port = free_port()
    with served(serve_env(tmp_path), "--host", "0.0.0.0", "--public", "--port", str(port)) as server:
        warning = PUBLIC_WARNING.format(host="0.0.0.0", data=(tmp_path / "data").resolve()).split(".")[0]
        assert warning in server.stderr
        assert server.stderr.count("token=") == 1  # printed once
        printed = URL(server.url)
        token = printed.query["token"]
        assert printed.port == port and len(token) >= 32
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            assert await _status(session, f"{base}/") == 403
            assert await _status(session, f"{base}/static/js/textual.js") == 403
            wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off, never the token itself
            assert await _status(session, f"{base}/?token={wrong}") == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"ws://127.0.0.1:{port}/ws")
            assert refused.value.status == 403
            async with session.get(f"{base}/?token={token}", allow_redirects=False) as opened:
                assert opened.status == 303 and opened.headers["Location"] == "/"
            # The cookie the token left stands for it from now on: the page, its script, its websocket.
            async with session.get(f"{base}/") as page:
                assert page.status == 200 and "textual-terminal" in await page.text()
            assert await _status(session, f"{base}/static/js/textual.js") == 200
            socket_ = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=80&height=24")
            await socket_.close()
        assert server.stop() == 0
    assert "Traceback" not in server.stderr


@pytest.mark.asyncio
async def test_public_on_loopback_still_asks_for_the_token_without_a_warning(tmp_path: Path) -> None:
    port = free_port()
    with served(serve_env(tmp_path), "--public", "--port", str(port)) as server:
        assert "Warning" not in server.stderr and "token=" in server.url
        token = URL(server.url).query["token"]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            assert await _status(session, f"http://127.0.0.1:{port}/") == 403
            assert await _status(session, f"http://127.0.0.1:{port}/?token={token}") == 303


@pytest.mark.asyncio
async def test_on_loopback_other_sites_cannot_drive_the_app(tmp_path: Path) -> None:
    port = free_port()
    with served(serve_env(tmp_path), "--port", str(port)) as server:
        assert server.url == f"http://127.0.0.1:{port}/" and "Warning" not in server.stderr
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://localhost:{port}/") as page:
                html = await page.text()
            assert page.status == 200 and f'data-session-websocket-url="ws://localhost:{port}/ws"' in html
            # A site whose name was re-pointed at 127.0.0.1 (DNS rebinding) is not this server's page.
            assert await _status(session, f"http://127.0.0.1:{port}/", headers={"Host": f"evil.example:{port}"}) == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"ws://127.0.0.1:{port}/ws", origin="http://evil.example")
            assert refused.value.status == 403


async def _first_screen(port: int) -> bytes:
    """What the page's websocket carries until the app has drawn its first screen."""
    received = b""
    async with aiohttp.ClientSession() as session:
        origin = f"http://127.0.0.1:{port}"
        async with session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=36", origin=origin) as ws:
            while b"Generation" not in received or b"offline sample generator" not in received:
                message = await asyncio.wait_for(ws.receive(), 60)
                if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    break
                received += message.data if isinstance(message.data, bytes) else message.data.encode()
    return received


@pytest.mark.asyncio
async def test_the_api_key_never_reaches_the_page(tmp_path: Path) -> None:
    key = "sk-canary-4f1c9e0b7a2d"
    env = serve_env(tmp_path, OPENAI_API_KEY=key)
    port = free_port()
    with served(env, "--provider", "offline", "--port", str(port)) as server:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as page:
            html = await page.text()
        screen = await _first_screen(port)
    assert b"offline sample generator" in screen  # the app ran and drew: the bytes are the page's screen
    assert key not in html and key.encode() not in screen
    assert key[3:].encode() not in screen and key not in server.stderr


def test_the_server_itself_does_not_import_textual() -> None:
    """The server only relays bytes: each browser tab's app process is where Textual runs."""
    code = "import sys, persona_tui.tui.serve\nprint(','.join(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
