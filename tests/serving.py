"""``persona-tui serve`` as a user starts it: a real process on a free port, its stderr read as it comes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SERVING = "Serving persona-tui at "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No key, no server, no setting from this machine: a temporary data and config folder, instant offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_", "TEXTUAL"))}
    env.update(
        PERSONA_TUI_DATA_DIR=str(tmp_path / "data"),
        PERSONA_TUI_OFFLINE_TOKENS_PER_SECOND="0",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    env.update(extra)
    return env


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if line.startswith(SERVING):
                self.url = line[len(SERVING) :].strip()
                self.ready.set()
        self.ready.set()  # it exited before serving: the test reads why

    def stop(self) -> int:
        """Ctrl+C, as a user stops it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


@contextlib.contextmanager
def served(env: dict[str, str], *args: str) -> Iterator[Served]:
    """``persona-tui serve ARGS`` until it prints its address (stopped with Ctrl+C on the way out)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "persona_tui", "serve", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    server = Served(process)
    reader = threading.Thread(target=server._drain, daemon=True)
    reader.start()
    try:
        if not server.ready.wait(timeout=60) or not server.url:
            raise AssertionError(f"persona-tui serve did not start:\n{server.stderr}")
        yield server
    finally:
        server.stop()
        reader.join(timeout=10)
