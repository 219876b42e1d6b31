"""The benchmark scripts still run (tiny sizes). No timing is checked here, only that they work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_batch_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_batch.py"), "--quick"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("K=")]
    assert len(lines) == 2 and all("saved 4/4 distinct 4" in line for line in lines)


def test_hot_path_benchmarks_smoke(tmp_path: Path) -> None:
    """Every issue-7 benchmark runs at its tiny size and reports a figure; BENCHMARKS.md is left alone."""
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    out = tmp_path / "perf.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "perf" / "run_all.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = {r["key"]: r["figure"] for r in json.loads(out.read_text())["results"]}
    assert set(figures) == {
        "stream",
        "headless",
        "stall",
        "feedback",
        "cancel",
        "startup_first_frame",
        "startup_table",
        "startup_memory",
    }
    assert all(value > 0 for value in figures.values()), figures
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before


def test_diversity_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_diversity.py"), "--quick", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("n=")]
    assert len(lines) == 2 and all("matches brute force: True" in line for line in lines)


def test_runs_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_runs.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "40 saved, 40 distinct slots, 0 duplicates; runs says finished" in result.stdout
