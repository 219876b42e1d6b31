"""Every hot-path and startup benchmark of issue 7, in one run, with the results written to BENCHMARKS.md.

    /work/venv/bin/python bench/perf/run_all.py            # medians of 5 runs; writes BENCHMARKS.md
    /work/venv/bin/python bench/perf/run_all.py --quick    # tiny smoke run (1 run, 2,000 tokens, 500 personas)
    /work/venv/bin/python bench/perf/run_all.py --what-if gc-freeze,...  # a change simulated from outside

Targets: (1) the app streams a 20,000-token answer within 1.25x of the plain
openai client; (2) ``persona-tui generate`` within 1.25x of a plain client
process; (3) no gap over 50 ms in a 10 ms timer while ~2,000 tok/s are drawn;
(4) ctrl+g to the Preparing stage drawn within one frame (16 ms); (5) Escape
to the connection closed within 50 ms; (6) with 10,000 saved personas, first
frame within 300 ms, the table full within 1 s, peak memory within 150 MB.

Nothing asserts a timing: the exit code is 0 whether targets are met or not
(non-zero only if a benchmark could not run). ``--quick`` does not touch
BENCHMARKS.md unless ``--write`` is given. Only the section
"## Hot path and startup (issue 7)" of BENCHMARKS.md is ever changed, and in
it only the blocks between this script's markers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROOT, TOKENS, Result, machine  # noqa: E402

SECTION = "## Hot path and startup (issue 7)"
BENCHMARKS = ROOT / "BENCHMARKS.md"
COMMAND = "/work/venv/bin/python bench/perf/run_all.py"
KEYS = ("stream", "headless", "stall", "feedback", "cancel", "startup")
INTRO = (
    f"Command: `{COMMAND}` (about 3 minutes; `--quick` is a 30-second smoke run whose numbers mean nothing, "
    "`--what-if NAME,...` simulates a change from outside the package (names in "
    "`bench/perf/appkit.py`), `--only stream,stall,...` runs some). Each benchmark runs "
    "in a fresh process against `tests/fake_openai.py` served from its own process; every script in `bench/perf/` "
    "says in its docstring what it measures. Profiles: `bench/perf/profile_hot.py stream|stall|headless|startup|plain` "
    "(py-spy, installed in the venv for this, not a project dependency). No timing is asserted anywhere."
)


def run_one(key: str, runs: int, quick: bool) -> list[Result]:
    """One benchmark, in this process."""
    from common import ServerProcess

    tokens = 2000 if quick else TOKENS
    if key == "startup":
        import bench_startup

        return bench_startup.run_startup(runs, 500 if quick else bench_startup.COUNT)
    import bench_stream
    import bench_ui

    with ServerProcess() as server:
        if key == "stream":
            return [bench_stream.run_inprocess(server, runs, tokens)]
        if key == "headless":
            return [bench_stream.run_headless(server, runs, tokens)]
        if key == "stall":
            return [bench_ui.run_stall(server, runs, tokens)]
        if key == "feedback":
            return [bench_ui.run_feedback(server, runs)]
        if key == "cancel":
            return [bench_ui.run_cancel(server, runs)]
    raise ValueError(key)


def run(keys: set[str], runs: int, quick: bool) -> list[Result]:
    """Each benchmark in a fresh process, so none pays for the heap (and GC) another one left behind."""
    results: list[Result] = []
    for key in KEYS:
        if key not in keys:
            continue
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            path = Path(out.name)
        try:
            command = [sys.executable, __file__, "--child", key, "--runs", str(runs), "--json", str(path)]
            subprocess.run([*command, *(["--quick"] if quick else [])], check=True, cwd=ROOT)
            for data in json.loads(path.read_text())["results"]:
                data.pop("met", None)
                result = Result(**data)
                results.append(result)
                mark = "met" if result.met else "MISSED"
                print(
                    f"  {result.title}\n      {result.measured}\n      -> {result.figure:.2f} {result.unit} "
                    f"(target {result.target_text}): {mark}",
                    flush=True,
                )
        finally:
            path.unlink(missing_ok=True)
    return results


# ----- BENCHMARKS.md ------------------------------------------------------------------------------


def table(results: list[Result], info: dict[str, str], runs: int, what_if: str, quick: bool) -> str:
    lines = [
        f"Measured {info['date']} on {info['nproc']} CPU(s), {info['cpu']}, Python {info['python']}, "
        f"{info['os']} ({info['packages']}); medians of {runs} run(s)"
        + (", **quick smoke run: not representative**" if quick else "")
        + (f"; simulated changes `PERF_WHAT_IF={what_if}`" if what_if else "")
        + ".",
        "",
        "| target | measured | figure | target | met |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        figure = f"{r.figure:.2f}x" if r.unit == "x" else f"{r.figure:.1f} {r.unit}"
        lines.append(f"| {r.title} | {r.measured} | {figure} | {r.target_text} | {'yes' if r.met else '**no**'} |")
    notes = [f"- ({r.title.split('.')[0]}) {r.notes}" for r in results if r.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _block(name: str, body: str) -> str:
    return f"<!-- perf7:{name}:begin -->\n{body}\n<!-- perf7:{name}:end -->"


def new_section() -> str:
    return "\n".join(
        [
            SECTION,
            "",
            INTRO,
            "",
            "### As the code is",
            "",
            _block("results", "_not run yet_"),
            "",
        ]
    )


def write_section(block: str, body: str) -> None:
    """Replace one marked block of our section, creating the file or the section if needed; nothing else changes."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    heading = re.search(rf"^{re.escape(SECTION)}[ \t]*$", text, re.MULTILINE)
    if heading is None:
        text = text.rstrip("\n") + "\n\n" + new_section()
        heading = re.search(rf"^{re.escape(SECTION)}[ \t]*$", text, re.MULTILINE)
        assert heading is not None
    following = re.search(r"^## ", text[heading.end() :], re.MULTILINE)
    end = heading.end() + following.start() if following else len(text)
    section = text[heading.start() : end]
    pattern = re.compile(rf"<!-- perf7:{block}:begin -->.*?<!-- perf7:{block}:end -->", re.DOTALL)
    if pattern.search(section):
        section = pattern.sub(lambda _: _block(block, body), section, count=1)
    else:
        section = section.rstrip("\n") + "\n\n" + _block(block, body) + "\n"
    if not section.endswith("\n\n") and following:
        section = section.rstrip("\n") + "\n\n"
    BENCHMARKS.write_text(text[: heading.start()] + section + text[end:], encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 run, 2,000 tokens, 500 personas; no BENCHMARKS.md")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median); default 5")
    parser.add_argument("--only", default=",".join(KEYS), help=f"comma-separated subset of {','.join(KEYS)}")
    parser.add_argument(
        "--what-if",
        default=os.environ.get("PERF_WHAT_IF", ""),
        help="simulate changes from outside the package (see appkit.WHAT_IFS)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write BENCHMARKS.md even for --quick or --only")
    group.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--child", choices=KEYS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one benchmark, results to --json; PERF_WHAT_IF comes from the parent's environment
        results = run_one(args.child, 1 if args.quick else args.runs, args.quick)
        args.json.write_text(json.dumps({"results": [r.as_dict() for r in results]}))
        return 0

    what_if = args.what_if
    os.environ["PERF_WHAT_IF"] = what_if  # read by appkit in this process and in the startup children
    keys = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = keys - set(KEYS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}")
    runs = 1 if args.quick else args.runs
    if runs < 5 and not args.quick:
        print(f"note: {runs} run(s); the targets ask for medians of at least 5", file=sys.stderr)

    info = machine()
    print(f"persona-tui hot path and startup benchmarks ({'quick' if args.quick else f'{runs} runs'})")
    print(f"  {info['date']}; {info['nproc']} CPU(s), {info['cpu']}; Python {info['python']}; {info['os']}")
    print(f"  {info['packages']}")
    if what_if:
        print(f"  simulated changes: {what_if}")
    started = time.monotonic()
    results = run(keys, runs, args.quick)
    print(f"\n{len(results)} measurement(s) in {time.monotonic() - started:.0f} s\n")

    print(f"{'target':<64} {'figure':>10}  {'target':<22} met")
    for r in results:
        figure = f"{r.figure:.2f}x" if r.unit == "x" else f"{r.figure:.1f} {r.unit}"
        print(f"{r.title[:64]:<64} {figure:>10}  {r.target_text:<22} {'yes' if r.met else 'NO'}")

    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "what_if": what_if, "runs": runs, "results": [r.as_dict() for r in results]}, indent=1
            )
        )
    complete = keys == set(KEYS)
    if not args.no_write and (args.write or (not args.quick and complete)):
        write_section("what-if" if what_if else "results", table(results, info, runs, what_if, args.quick))
        print(f"\nwrote {BENCHMARKS.relative_to(ROOT)} ({SECTION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
