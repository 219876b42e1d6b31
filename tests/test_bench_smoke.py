"""The benchmark scripts still run (tiny sizes). No timing is checked here, only that they work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_batch_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_batch.py"), "--quick"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("K=")]
    assert len(lines) == 2 and all("saved 4/4 distinct 4" in line for line in lines)
