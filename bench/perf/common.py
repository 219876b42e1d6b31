"""Shared pieces of the hot-path and startup benchmarks (issue 7).

* :class:`ServerProcess` runs the loopback OpenAI server of the tests
  (``tests/fake_openai.py``) in its own process, so the code being measured does
  not share a GIL with the server, as with a real, remote server. Its
  ``disconnects`` are ``time.monotonic()`` values, the same system-wide clock the
  measuring process reads.
* :func:`big_persona` builds a 20,000-token answer that *validates* (so the app
  runs its whole pipeline, save included, once per run).
* :func:`machine` describes the machine for BENCHMARKS.md.

Nothing here asserts a timing: the scripts measure and report.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(os.environ.get("PERF_SRC") or ROOT)
"""The source tree measured: this one, or another for a side-by-side run (``bench_startup.py --compare``)."""
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

TOKENS = 20_000
DESCRIPTION = "field nurses in rural Kenya aged 40 to 60"


# ----- the answer -----------------------------------------------------------------------------


def _prose(prefix: str, length: int) -> str:
    words = (
        "she drives between villages twice a week with a cool box of vaccines and a tablet that rarely "
        "finds a signal so she keeps paper notes and types them up at night "
    )
    text = (prefix + " " + words * (length // len(words) + 2))[:length]
    return text.rstrip() + "."


def big_persona(tokens: int = TOKENS, name: str = "Amina Otieno") -> str:
    """A persona JSON of exactly ``tokens`` ASCII characters that passes ``Persona`` validation.

    Every field is near its maximum length (background 3,999 characters, 8 items of
    about 290 characters per list); the rest of the characters are JSON whitespace
    (indentation), which models under structured outputs also emit. Streamed with
    ``chunk_chars=1`` it is ``tokens`` tokens.
    """
    big = tokens >= 14_000  # room for every field near its maximum; else a modest persona (quick runs)
    long, short, items = (3999, 290, 8) if big else (400, 60, 3)
    persona = {
        "name": name,
        "age": 47,
        "pronouns": "she/her",
        "location": "Kisumu, Kenya",
        "occupation": "Field nurse",
        "background": _prose("Amina has run a mobile clinic for twelve years;", long),
        "goals": [_prose(f"Goal {i}:", short) for i in range(items)],
        "frustrations": [_prose(f"Frustration {i}:", short) for i in range(items)],
        "personality_traits": [_prose(f"Trait {i}:", short) for i in range(items)],
        "tech_savviness": "basic",
        "communication_style": _prose("Short, warm sentences;", short),
        "quote": _prose("If it works in the rain, I will use it;", short),
    }
    lines = json.dumps(persona, indent=1).split("\n")
    base = sum(len(line) for line in lines) + len(lines) - 1
    pad = tokens - base
    if pad < 0:
        raise ValueError(f"a valid persona is at least {base} characters")
    inner = len(lines) - 2  # every line but the braces gets extra indentation
    each, extra = divmod(pad, inner)
    out = [lines[0]]
    for i, line in enumerate(lines[1:-1]):
        out.append(" " * (each + (1 if i < extra else 0)) + line)
    out.append(lines[-1])
    text = "\n".join(out)
    assert len(text) == tokens, (len(text), tokens)
    return text


def check_valid(text: str) -> None:
    from persona_tui.engine.parsing import parse_persona

    parse_persona(text)


# ----- the server in its own process ------------------------------------------------------------


def _serve(conn: Any) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.fake_openai import FakeOpenAIServer, Scenario

    server = FakeOpenAIServer().start()
    conn.send(server.base_url)
    while True:
        try:
            command, arg = conn.recv()
        except EOFError:
            break
        if command == "script":
            server.script(*(Scenario(**kw) for kw in arg))
            conn.send(None)
        elif command == "disconnects":
            conn.send(list(server.disconnects))
        elif command == "chunks":
            conn.send(server.chunks_sent())
        elif command == "requests":
            conn.send(len(server.requests))
        elif command == "reset":
            with server._lock:
                server.disconnects.clear()
                server.requests.clear()
                server._chunks = 0
            conn.send(None)
        elif command == "stop":
            server.stop()
            conn.send(None)
            break


class ServerProcess:
    """``tests.fake_openai.FakeOpenAIServer`` in a child process, scripted through a pipe."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="fake-openai-server")
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        self._proc.start()
        self.base_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._call("stop")
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()

    def _call(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def script(self, *scenarios: dict[str, Any]) -> None:
        """Scenarios as keyword dicts for ``tests.fake_openai.Scenario``."""
        self._call("script", list(scenarios))

    def reset(self) -> None:
        self._call("reset")

    @property
    def disconnects(self) -> list[float]:
        return self._call("disconnects")

    def chunks_sent(self) -> int:
        return self._call("chunks")

    def requests(self) -> int:
        return self._call("requests")


# ----- settings of the measured app ----------------------------------------------------------------

BENCH_SETTINGS = "population_plan=false,regenerate_duplicates=false"
"""Since issue 15 every batch draws a population plan and checks each persona against its slot. The
scripted answer is one fixed persona (Kisumu, she/her, tech "basic"), which no drawn slot of a single
persona fits (a lone slot's tech is always the middle of the spread), so with the plan on every run would
ask a second time for a correction and stream twice. The benchmarks therefore run with the plan and the
rewrite of near-duplicates off (as the tests' scripted settings do); ``PERF_SETTINGS`` overrides this
(``name=value,...``; empty: the app's defaults). Settings the code under test does not have are ignored,
so the same scripts measure older commits."""


def bench_settings() -> dict[str, str]:
    """``PERF_SETTINGS`` (else :data:`BENCH_SETTINGS`) as ``{name: value}``."""
    text = os.environ.get("PERF_SETTINGS", BENCH_SETTINGS)
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {name.strip(): value.strip() for name, value in pairs}


# ----- child processes ----------------------------------------------------------------------------

PYCACHE = Path(tempfile.gettempdir()) / "persona-tui-perf-pycache"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for measured subprocesses.

    No PERSONA_TUI_* or OPENAI_* settings leak in; :func:`bench_settings` are set. Bytecode is cached as on a
    normal install, but under a temporary PYTHONPYCACHEPREFIX so no
    ``__pycache__`` folder is written into the repository (this machine sets
    PYTHONDONTWRITEBYTECODE, which would make every start recompile
    persona_tui from source).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONA_TUI_", "OPENAI_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(PYCACHE))
    env.update({f"PERSONA_TUI_{name.upper()}": value for name, value in bench_settings().items()})
    env.update(extra)
    return env


# ----- results --------------------------------------------------------------------------------


@dataclass
class Result:
    """One row of the results table."""

    key: str
    title: str
    measured: str
    """What was measured, e.g. 'app 1.92 s vs plain client 1.71 s'."""
    figure: float
    """The number compared with the target (a ratio, ms or MB)."""
    unit: str
    target: float
    target_text: str
    runs: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: str = ""

    @property
    def met(self) -> bool:
        return self.figure <= self.target

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        return data


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def interleaved(runs: int, *measures: Callable[[], float], warm_up: bool = True) -> list[list[float]]:
    """Run the measures alternately ``runs`` times each, so drift hits them alike (after one untimed round)."""
    samples: list[list[float]] = [[] for _ in measures]
    if warm_up:
        for measure in measures:
            measure()
    for _ in range(runs):
        for i, measure in enumerate(measures):
            samples[i].append(measure())
    return samples


# ----- the machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    from importlib.metadata import version

    def ver(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "?"

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "packages": f"textual {ver('textual')}, rich {ver('rich')}, openai {ver('openai')}, "
        f"httpx {ver('httpx')}, pydantic {ver('pydantic')}",
    }


def now() -> float:
    return time.perf_counter()
