"""The diversity report over 50, 500 and 2,000 personas: how long it takes, and how close the nearest pairs are.

The personas come from the offline generator (seeded, no pacing), so every run
scores the same batch. Each size is timed over several runs (the median is
shown, with the fastest and slowest); building the personas is not timed. The
largest similarity and whether the report had to leave common terms out of its
candidate search ("approximate") are printed too.

    python bench/bench_diversity.py            # 50, 500 and 2,000 personas, 5 runs each (about a minute)
    python bench/bench_diversity.py --quick    # a smoke run of a second or two
    python bench/bench_diversity.py --check    # also score every pair exactly and compare (slow at 2,000)

No timing is asserted anywhere: the numbers go to stdout for a person to read.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persona_tui.engine.diversity import DEFAULT_THRESHOLD, _vectors, diversity_report  # noqa: E402
from persona_tui.engine.providers.offline import OfflineProvider  # noqa: E402
from persona_tui.models import PersonaRecord, RequestInfo  # noqa: E402

DESCRIPTION = "nurses in rural Kenya"


def records(n: int, description: str = DESCRIPTION) -> list[PersonaRecord]:
    provider = OfflineProvider(seed=1, tokens_per_second=0)
    request = RequestInfo(description=description)
    return [
        PersonaRecord(
            provider="offline",
            model=provider.model,
            request=request,
            generation_seconds=0,
            tokens=0,
            persona=provider.compose(description, i),
        )
        for i in range(n)
    ]


def exact_top(batch: list[PersonaRecord], top: int) -> list[float]:
    """Every pair scored by brute force (the reference the report's search is checked against)."""
    vectors = _vectors(batch)
    scores = []
    for i, a in enumerate(vectors):
        for b in vectors[i + 1 :]:
            small, large = (a, b) if len(a) <= len(b) else (b, a)
            scores.append(sum(w * large.get(t, 0.0) for t, w in small.items()))
    return sorted(scores, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size")
    parser.add_argument("--check", action="store_true", help="compare the nearest pairs with a brute-force scoring")
    args = parser.parse_args()
    sizes, runs = ((20, 60), 1) if args.quick else ((50, 500, 2000), args.runs)
    print(
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; threshold {DEFAULT_THRESHOLD}; medians of {runs} run(s)"
    )
    for n in sizes:
        batch = records(n)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            report = diversity_report(batch)
            times.append(time.perf_counter() - started)
        pairs = n * (n - 1) // 2
        nearest = report.pairs[0].similarity if report.pairs else 0.0
        line = (
            f"n={n:<5} pairs {pairs:>9,}  median {statistics.median(times) * 1000:8.1f} ms  "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})  nearest {nearest:.3f}  "
            f"flagged {len(report.near_duplicates)}  approximate {report.approximate}"
        )
        if args.check:
            reference = exact_top(batch, len(report.pairs))
            found = [p.similarity for p in report.pairs][: len(reference)]
            same = all(math.isclose(a, round(b, 3), abs_tol=1e-3) for a, b in zip(found, reference, strict=True))
            line += f"  matches brute force: {same} (brute-force top {[round(s, 3) for s in reference]})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
