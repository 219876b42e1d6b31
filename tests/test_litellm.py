"""``persona-tui generate`` through a real LiteLLM proxy, on 127.0.0.1, offline.

LiteLLM is installed once into its own venv (``tests/.litellm-venv``, ignored by
git; ``PERSONA_TUI_LITELLM_VENV`` picks another folder) and started with a
master key and a config of models that need no upstream:

* ``thinker``: a small custom provider (``custom_provider_map``, a ``CustomLLM``
  written by this test) that streams ``reasoning_content`` chunks and then the
  persona JSON;
* ``house-reasoner``: an alias of ``openai/gpt-5`` answered by ``mock_response``,
  which LiteLLM refuses with a temperature (its ``UnsupportedParamsError``).

Nothing here reaches the internet: LiteLLM's remote look-ups are switched to
their bundled copies, and any other outbound request is sent to a dead proxy
on 127.0.0.1. If LiteLLM cannot be installed or does not start in time, the
tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import persona_json

pytestmark = pytest.mark.slow

LITELLM_VERSION = "1.108.0"
"""The newest release whose ``[proxy]`` extra resolves from the package index this project uses."""
VENV = Path(os.environ.get("PERSONA_TUI_LITELLM_VENV", Path(__file__).parent / ".litellm-venv"))
INSTALL_TIMEOUT = 900.0
START_TIMEOUT = 60.0
MASTER_KEY = "sk-litellm-test-master"
THOUGHTS = ["The user wants field nurses. ", "Rural Kenya: long drives, ", "patchy signal."]

OFFLINE = {
    # Bundled copies instead of remote fetches at start and on demand (see litellm's source for each).
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    # Anything else that tries to leave the machine goes to a port where nothing listens.
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}

HANDLER = '''
import json

from litellm import CustomLLM
from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

THOUGHTS = {thoughts!r}
ANSWER = {answer!r}


def _chunk(delta, finish_reason=None):
    return ModelResponseStream(choices=[StreamingChoices(index=0, delta=delta, finish_reason=finish_reason)])


class Thinker(CustomLLM):
    """Thinks aloud in reasoning_content, then streams the persona JSON."""

    async def astreaming(self, *args, **kwargs):
        for thought in THOUGHTS:
            yield _chunk(Delta(reasoning_content=thought))
        for i in range(0, len(ANSWER), 16):
            yield _chunk(Delta(content=ANSWER[i : i + 16]))
        yield _chunk(Delta(), finish_reason="stop")


thinker = Thinker()
'''

CONFIG = """
model_list:
  - model_name: thinker
    litellm_params:
      model: thinker/persona
  - model_name: house-reasoner
    litellm_params:
      model: openai/gpt-5
      api_key: sk-not-used
      mock_response: {answer}
litellm_settings:
  custom_provider_map:
    - {{"provider": "thinker", "custom_handler": thinker.thinker}}
general_settings:
  master_key: {key}
"""


def _litellm() -> Path:
    """The ``litellm`` command of the test venv, installed when missing (skips the test when it cannot be)."""
    exe = VENV / "bin" / "litellm"
    marker = VENV / "installed.txt"
    if exe.exists() and marker.exists() and marker.read_text().strip() == LITELLM_VERSION:
        return exe
    started = time.monotonic()
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
            check=True,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing litellm[proxy]=={LITELLM_VERSION} took over {INSTALL_TIMEOUT:.0f} s")
    except (OSError, subprocess.CalledProcessError) as exc:
        said = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()[-1:]
        pytest.skip(f"could not install litellm[proxy]=={LITELLM_VERSION}: {' '.join(said)}")
    marker.write_text(LITELLM_VERSION + "\n")
    print(f"installed litellm[proxy]=={LITELLM_VERSION} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return exe


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running LiteLLM proxy; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    exe = _litellm()
    folder = tmp_path_factory.mktemp("litellm")
    (folder / "thinker.py").write_text(HANDLER.format(thoughts=THOUGHTS, answer=persona_json()))
    (folder / "config.yaml").write_text(CONFIG.format(answer=json.dumps(persona_json("Bo Lindqvist")), key=MASTER_KEY))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_", "PERSONA_TUI_"))}
    env.update(OFFLINE)
    log = (folder / "proxy.log").open("w")
    process = subprocess.Popen(
        [str(exe), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers go with it when it is stopped
    )
    started = time.monotonic()
    try:
        while not _up(f"http://127.0.0.1:{port}/health/liveliness"):
            if process.poll() is not None or time.monotonic() - started > START_TIMEOUT:
                tail = (folder / "proxy.log").read_text()[-600:]
                pytest.skip(f"the LiteLLM proxy did not start within {START_TIMEOUT:.0f} s: {tail}")
            time.sleep(0.2)
        print(f"LiteLLM proxy up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture
def env(tmp_path: Path, proxy: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PERSONA_TUI_"))}
    clean.update(
        OPENAI_BASE_URL=proxy,
        OPENAI_API_KEY=MASTER_KEY,
        PERSONA_TUI_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        COLUMNS="120",
    )
    return clean


def generate(env: dict[str, str], model: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persona_tui", "generate", "field nurses in rural Kenya", "--model", model, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def test_a_thinking_model_behind_litellm_is_shown_thinking_and_saved(env: dict[str, str]) -> None:
    result = generate(env, "thinker")
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["persona"]["name"] == "Amina Otieno" and record["model"] == "thinker"
    saved = list((Path(env["PERSONA_TUI_DATA_DIR"]) / "personas").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["persona"]["name"] == "Amina Otieno"
    assert "Model thinking" in result.stderr, result.stderr
    assert record["usage"]["reasoning_tokens"] > 0  # LiteLLM counts the reasoning it streamed
    no_traceback(result)


def test_litellms_temperature_refusal_for_a_gpt5_alias_is_one_step(env: dict[str, str]) -> None:
    """An alias hides the model family, so the temperature goes out; LiteLLM's 400 is read and it is left out."""
    result = generate(env, "house-reasoner")
    assert result.returncode == 0, result.stderr
    assert "house-reasoner takes only its default temperature; sent without it." in result.stderr
    [record] = json.loads(result.stdout)
    assert record["persona"]["name"] == "Bo Lindqvist"
    notes = json.loads((Path(env["PERSONA_TUI_DATA_DIR"]) / "servers.json").read_text())
    [(key, note)] = notes.items()
    assert key.endswith("/house-reasoner") and note["dropped"] == ["temperature"]
    no_traceback(result)


def test_an_unknown_model_at_litellm_is_one_clear_sentence(env: dict[str, str]) -> None:
    result = generate(env, "gpt-6")
    assert result.returncode == 1
    assert json.loads(result.stdout) == []
    failures = [line for line in result.stderr.splitlines() if "gpt-6 was not found" in line]
    assert len(failures) == 1, result.stderr
    assert "Invalid model name passed in model=gpt-6" in failures[0]
    assert "persona-tui models" in result.stderr
    assert MASTER_KEY not in result.stderr
    no_traceback(result)


def test_a_wrong_key_at_litellm_is_named_as_the_key(env: dict[str, str]) -> None:
    result = generate({**env, "OPENAI_API_KEY": "sk-wrong-key-123"}, "thinker")
    assert result.returncode == 1
    assert "The API key was rejected by 127.0.0.1" in result.stderr, result.stderr
    assert "sk-wrong-key-123" not in result.stderr
    no_traceback(result)
