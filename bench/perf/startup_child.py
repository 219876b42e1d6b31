"""One measured app start (target 6), run as its own process by bench_startup.py.

Usage: ``python startup_child.py DATA_DIR SPAWNED_AT EXPECTED_ROWS PROVIDER [--profile OUT.html]``
(PROVIDER: ``openai``, with a base URL that is never contacted, or ``offline``).
``SPAWNED_AT`` is the parent's ``time.monotonic()`` just before it started this
process (the same system-wide clock is read here). Prints one JSON object:
seconds from spawn and from app start to the first frame, to the table
holding every row, to the first frame after that; and the peak resident set
(``VmHWM``, else ``ru_maxrss``) in MB.
"""

from __future__ import annotations

import time

T_MAIN = time.monotonic()

import asyncio  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    data_dir, spawned_at, expected, provider = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    profile_to = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--profile" else None
    profiler = None
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()

    from appkit import simulate_terminal, what_if

    from persona_tui.config import Settings
    from persona_tui.tui.app import make_app
    from persona_tui.tui.widgets.persona_table import PersonaTable

    imported = time.monotonic()
    marks: dict[str, float] = {}
    frames: list[float] = []
    what_if()  # refuses unknown names early

    _watch_table(PersonaTable, marks)

    if provider == "openai":  # as with OPENAI_API_KEY set; nothing is sent at startup
        settings = Settings(data_dir=data_dir, provider="openai", api_key="sk-bench", base_url="http://127.0.0.1:9/v1")
    else:
        settings = Settings(data_dir=data_dir, provider="offline")
    app_start = time.monotonic()
    app = make_app(settings)
    simulate_terminal(app)
    hook = app.post_display_hook

    def watched_hook() -> None:
        hook()
        frames.append(time.monotonic())

    app.post_display_hook = watched_hook  # type: ignore[method-assign]

    async def run() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            deadline = time.monotonic() + 60
            while "table_full" not in marks and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            while not (frames and frames[-1] > marks.get("table_full", float("inf"))):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.005)
            await app.workers.wait_for_complete()
            await pilot.pause()
            marks["row_count"] = float(app.table.row_count)

    asyncio.run(run())
    if profiler is not None:
        profiler.stop()
        Path(profile_to).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)
    # ru_maxrss survives exec on Linux, so it would include the parent's RSS at spawn time;
    # VmHWM is the peak resident set of this process's own address space.
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    hwm_mb = _vm_hwm_mb()
    full = marks.get("table_full", float("nan"))
    after_full = next((f for f in frames if f > full), float("nan"))
    first = frames[0] if frames else float("nan")
    print(
        json.dumps(
            {
                "interpreter_s": T_MAIN - spawned_at,
                "imports_s": imported - T_MAIN,
                "first_frame_from_app_s": first - app_start,
                "first_frame_from_spawn_s": first - spawned_at,
                "records_read_from_app_s": marks.get("records_read", float("nan")) - app_start,
                "table_full_from_app_s": full - app_start,
                "table_full_from_spawn_s": full - spawned_at,
                "frame_after_full_from_app_s": after_full - app_start,
                "search_ready_from_app_s": marks.get("search_ready", full) - app_start,
                "rows": marks.get("row_count", 0.0),
                "expected_rows": float(expected),
                "peak_rss_mb": hwm_mb if hwm_mb is not None else maxrss_mb,
                "ru_maxrss_mb": maxrss_mb,
            }
        )
    )


def _watch_table(PersonaTable: Any, marks: dict[str, float]) -> None:
    """Mark when the rows are read and when the table holds them (and the search text, where there is one)."""
    if hasattr(PersonaTable, "load_rows"):  # the virtual table (issue 16): rows from the rows index
        load_rows = PersonaTable.load_rows
        set_texts = PersonaTable.set_search_texts

        def watched_load_rows(self: Any, rows: Any) -> None:
            marks["records_read"] = time.monotonic()
            load_rows(self, rows)
            marks["table_full"] = time.monotonic()
            marks["rows"] = float(self.row_count)

        def watched_set_texts(self: Any, texts: Any) -> None:
            set_texts(self, texts)
            marks["search_ready"] = time.monotonic()

        PersonaTable.load_rows = watched_load_rows  # type: ignore[method-assign]
        PersonaTable.set_search_texts = watched_set_texts  # type: ignore[method-assign]
    else:  # the DataTable of before: every record read, then every row added
        load_async = PersonaTable.load_async

        async def watched_load_async(self: Any, records: Any) -> None:
            marks["records_read"] = time.monotonic()
            await load_async(self, records)
            marks["table_full"] = time.monotonic()
            marks["rows"] = float(self.row_count)

        PersonaTable.load_async = watched_load_async  # type: ignore[attr-defined]


def _vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
