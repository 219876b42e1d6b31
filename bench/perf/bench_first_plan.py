"""The first batch of a session: the UI stall that ``run_stall`` does not see.

``bench_ui.run_stall`` throws away a warm-up run, so the suite never measures
the first batch in a process, which is the one that pays for building the
world tables and the description reader's regexes (``draw_plan``'s first
call). This script starts a fresh process for every sample and measures, as
target 3 does, the longest gap between ticks of a 10 ms timer from ctrl+g to
``Finished``, for one 2,000-token persona streamed at about 2,000 tok/s
(``token_delay`` 0.35 ms, ``chunk_chars=1``; the target is 50 ms).

Modes, alternated inside each round:

* ``off``: ``population_plan`` and ``regenerate_duplicates`` off (the suite's
  settings).
* ``on``: the app's default settings with the plan on. The loopback server's
  fixed persona (Kisumu, field nurse, tech "basic", she/her) fits no slot the
  plan draws, which would make every run ask a second time; the child makes
  the app's ``parse_mix`` return pins that the answer fits, so each run is one
  request, as with a model that keeps to its slot.

``draw_plan`` is wrapped to time its calls (the ``draw_plan`` column, summed
over the batch). On commits without a population plan the ``on`` mode is
skipped.

Run: ``python bench/perf/bench_first_plan.py [--runs 5] [--modes off,on]
[--side LABEL=TREE[,PYTHON] ...]``. Each ``--side`` is a checkout whose
``persona_tui`` is measured (PYTHONPATH=TREE, its ``.venv/bin/python``
unless PYTHON is given); the default is this tree. Several sides alternate
sample by sample, e.g. to compare a commit before a change with the one after::

    python bench/perf/bench_first_plan.py --side before=/work/wt-bench-old --side after=.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PINS = "pin location=Kisumu, Kenya; pin occupation=Field nurse; pin tech_savviness=basic; pin pronouns=she/her"
TOKENS = 2000
TOKEN_DELAY = 0.00035


def child(base_url: str) -> None:
    import bench_ui
    import common

    # common.py puts this tree first on sys.path; the side under test (PYTHONPATH) must win.
    tree = os.environ.get("FIRST_PLAN_TREE", "")
    if tree and str(common.ROOT) != tree:
        sys.path[:] = [p for p in sys.path if p != str(common.ROOT)]
        sys.path.insert(0, tree)

    spent: list[float] = []
    has_plan = True
    try:
        from persona_tui.engine.pipeline import batch
    except ImportError:
        has_plan = False
    if has_plan and hasattr(batch, "draw_plan"):
        original = batch.draw_plan

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent.append(time.perf_counter() - start)

        batch.draw_plan = timed
    else:
        has_plan = False
    if has_plan and os.environ.get("FIRST_PLAN_FIT"):
        import persona_tui.tui.app as app_module

        parse_mix = app_module.parse_mix
        app_module.parse_mix = lambda text, *args, **kwargs: parse_mix(PINS)
    result = asyncio.run(bench_ui._stall_once(base_url, TOKENS))
    result["draw_plan"] = sum(spent)
    result["plan_calls"] = float(len(spent))
    result["has_plan"] = float(has_plan)
    import persona_tui

    assert not tree or persona_tui.__file__.startswith(tree), (persona_tui.__file__, tree)
    print(json.dumps(result))


def main() -> int:
    from common import ServerProcess, big_persona, child_env, median

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per side and mode (default 5)")
    parser.add_argument("--modes", default="off,on", help="comma-separated: off, on (default both)")
    parser.add_argument("--side", action="append", default=[], help="LABEL=TREE[,PYTHON]; repeat to alternate")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    sides: list[tuple[str, Path, str]] = []
    for spec in args.side or [f"this={HERE.parent.parent}"]:
        label, _, rest = spec.partition("=")
        tree, _, python = rest.partition(",")
        root = Path(tree).resolve()
        sides.append((label, root, python or str(root / ".venv" / "bin" / "python")))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    samples: dict[str, list[dict[str, float]]] = {f"{label} {mode}": [] for label, _, _ in sides for mode in modes}
    with ServerProcess() as server:
        for round_ in range(args.runs):
            for label, root, python in sides:
                for mode in modes:
                    server.script({"content": big_persona(TOKENS), "chunk_chars": 1, "token_delay": TOKEN_DELAY})
                    env = child_env(PYTHONPATH=str(root), FIRST_PLAN_TREE=str(root))
                    env["PERF_SETTINGS"] = "" if mode == "on" else "population_plan=false,regenerate_duplicates=false"
                    for name in ("PERSONA_TUI_POPULATION_PLAN", "PERSONA_TUI_REGENERATE_DUPLICATES"):
                        if mode == "on":
                            env.pop(name, None)
                    env["FIRST_PLAN_FIT"] = "1" if mode == "on" else ""
                    done = subprocess.run(
                        [python, __file__, "--child", server.base_url],
                        env=env,
                        capture_output=True,
                        text=True,
                        cwd=root,
                    )
                    if done.returncode:
                        print(done.stderr[-3000:], file=sys.stderr)
                        return 1
                    sample = json.loads(done.stdout.strip().splitlines()[-1])
                    if mode == "on" and not sample["has_plan"]:
                        continue
                    samples[f"{label} {mode}"].append(sample)
                    print(
                        f"round {round_ + 1} {label} {mode}: longest gap {sample['max_gap'] * 1000:.1f} ms, "
                        f"draw_plan {sample['draw_plan'] * 1000:.1f} ms",
                        flush=True,
                    )
    print()
    print(f"{'side and mode':<22} {'longest gap, median (min to max)':<36} {'> 50 ms':<8} draw_plan median")
    for name, rows in samples.items():
        if not rows:
            print(f"{name:<22} (no population plan in this tree)")
            continue
        gaps = [r["max_gap"] * 1000 for r in rows]
        plan = median(r["draw_plan"] * 1000 for r in rows) if any(r["plan_calls"] for r in rows) else None
        print(
            f"{name:<22} {median(gaps):5.1f} ms ({min(gaps):.1f} to {max(gaps):.1f})"
            f"{'':<12} {sum(g > 50 for g in gaps)}/{len(gaps):<6} "
            f"{'-' if plan is None else f'{plan:.1f} ms'}"
        )
    if args.json:
        args.json.write_text(json.dumps(samples, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        sys.exit(main())
