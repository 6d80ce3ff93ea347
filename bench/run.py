"""`make bench` / `make bench-quick`: every speed target of issue 7 measured side by side in one run.

    python -m bench.run                 # full sizes, writes docs/benchmarks.md (several minutes)
    python -m bench.run --quick         # small sizes of every row, under a minute, writes nothing
    python -m bench.run --only five,http --out /tmp/b.md

Each row prints the measured value, the ratio it is judged by and whether the target is met. A target
not met is a finding, never a failure: the exit status is non-zero only when a measurement raised.
PostgreSQL rows use a fresh database on 127.0.0.1:5432 (BENCH_PG_HOST/BENCH_PG_PORT) dropped afterwards,
and are skipped with the reason when no server answers."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from . import (
    basics,
    five_step,
    history_growth,
    http_api,
    isolation,
    multi_instance,
    processes,
    scale,
    timer_burst,
)
from .common import PG_HOST, PG_PORT, ROOT, Group, Sizes, Skip, pg_admin

OUT = ROOT / "docs" / "benchmarks.md"


def _isolation(group: Group, sizes: Sizes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = isolation.run(tmp, processes.FORM_PROCESS, rounds=3 if sizes.quick else isolation.ROUNDS,
                             scale=0.1 if sizes.quick else 1.0)
    for measure, value in rows:
        group.add(measure, value)


def groups() -> list[Group]:
    return [
        Group("five", "1. A 5-step process per instance, beside raw SpiffWorkflow",
              "Start → user task A → script `total = n * 2` → exclusive gateway → user task B → end; create, "
              "complete both. CPU per instance of this process (time.process_time), in interleaved rounds; the "
              "ratio is raw SpiffWorkflow 3.2 (CamundaParser spec parsed once, BpmnWorkflow + do_engine_steps, "
              "serialised to JSON and restored at every wait state with BpmnWorkflowSerializer) over AlmenFlow "
              "through its services. The script runs in an evaluator process for AlmenFlow and in-process for "
              "raw SpiffWorkflow; that process's CPU and the PostgreSQL server's are shown beside."),
        Group("sql", "2. SQL per step",
              "Statements each public call of one 5-step instance sends (SQLAlchemy before_cursor_execute on the "
              "engine's Engine; BEGIN/COMMIT not counted as statements), transactions begun, and how many times "
              "workflow state was deserialised (the engine codec's load, wrapped for the measurement)."),
        Group("http", "3. HTTP, one client, start + complete through the JSON API",
              "A real `almenflow serve` (waitress) on embedded SQLite in a subprocess; one client on a "
              "keep-alive connection starts the 5-step process and completes both tasks "
              "(POST /api/instances, POST /api/tasks/<id>/complete twice). Server RSS from /proc."),
        Group("scale", "4. Pages at 10,000 and 100,000 instances",
              "Inbox, instance list with filters, instance page and admin dashboard at two sizes of one "
              "database (~10 audit events per case); p95 of repeated requests."),
        Group("history", "5. A case's cost against its history",
              "A user task in a review loop (user task → exclusive gateway → back). Completing one iteration "
              "of a case that has completed the short history, interleaved with cases at the long one; the "
              "stored state of each (see bench/common.py: state_bytes)."),
        Group("multi", "6. Parallel multi-instance user task over many items",
              "Start with a list of items (one user task each, in parallel), then complete every task, "
              "AlmenFlow on SQLite beside raw SpiffWorkflow serialising and restoring at each completion, "
              "interleaved in chunks; each side stops at its time cap and the rest is extrapolated."),
        Group("timers", "7. Timers due in the same second",
              "Cases waiting on a timer that falls due at the same moment; real worker processes fire them."),
        Group("isolation", "Cost of isolating untrusted code",
              "Scripts and non-trivial expressions run in evaluator processes with OS limits (engine/sandbox); "
              "literals, variables and comparisons are evaluated in-process. Each line compares, in one "
              "interleaved run, the evaluator with the same work in the engine's own process without limits."),
        Group("basics", "Engine basics on SQLite", "Single-threaded calls of the services, embedded SQLite."),
    ]


RUNNERS: dict[str, Callable[[Group, Sizes, dict[str, Group]], None]] = {
    "five": lambda g, s, all_: five_step.run(g, s, all_["sql"]),
    "sql": lambda g, s, all_: None,  # filled by "five" from the same engines
    "http": lambda g, s, all_: http_api.run(g, s),
    "scale": lambda g, s, all_: scale.run(g, s),
    "history": lambda g, s, all_: history_growth.run(g, s),
    "multi": lambda g, s, all_: multi_instance.run(g, s),
    "timers": lambda g, s, all_: timer_burst.run(g, s),
    "isolation": lambda g, s, all_: _isolation(g, s),
    "basics": lambda g, s, all_: basics.run(g, s),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GB RAM, load average {load} at the start; "
            f"{platform.platform()}; Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
            f"SpiffWorkflow {version('SpiffWorkflow')}, SQLAlchemy {version('SQLAlchemy')}; "
            f"PostgreSQL: {postgres_version()}")


def postgres_version() -> str:
    try:
        with pg_admin() as conn:
            return conn.execute("SHOW server_version").fetchone()[0] + f" on {PG_HOST}:{PG_PORT}"
    except (Skip, ImportError) as exc:
        return f"none ({exc})"


def commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True,
                                check=True).stdout.splitlines()
        changed = sorted({line[3:].split("/", 1)[0] + ("/" if "/" in line[3:] else "") for line in status})
        return head + (f" with local changes in {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(selected: list[Group], command: str, started: datetime, seconds: float, host: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by the harness in bench/ (`make bench`); do not edit by hand. Targets are those of issue 7;",
        "a ratio is measured side by side in one run (interleaved where the row says so), so load from other",
        "programs on the machine hits both sides alike. `make bench-quick` runs every row at small sizes and",
        "judges nothing.",
        "",
        f"- Command: `{command}`",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}, {seconds / 60:.1f} minutes",
        f"- Code: commit {commit()}",
        f"- Machine: {host}",
        "",
        "## Targets at a glance",
        "",
        "| row | measure | value | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for g in selected:
        for r in g.results:
            if r.target:
                lines.append(f"| {g.title.split('.')[0] if g.title[0].isdigit() else g.key} | {_cell(r.measure)} | "
                             f"{_cell(r.value)} | {_cell(r.ratio)} | {_cell(r.target)} | {r.met_text} |")
    for g in selected:
        lines += ["", f"## {g.title}", "", g.about, ""]
        if g.seconds >= 0.5:
            lines += [f"Took {g.seconds:.0f} s.", ""]
        if g.error:
            lines += [f"**The measurement failed:** `{_cell(g.error)}`", ""]
        if g.results:
            lines += ["| measure | value | ratio | target | met |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {_cell(r.measure)} | {_cell(r.value)} | {_cell(r.ratio)} | {_cell(r.target)} | "
                      f"{r.met_text if r.target else ''} |" for r in g.results]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes of every row (CI); writes no file")
    parser.add_argument("--only", default="", help="comma-separated groups: " + ",".join(RUNNERS))
    parser.add_argument("--out", default=None, help=f"where to write the results (default {OUT.relative_to(ROOT)}"
                                                    " for the full run, nothing for --quick)")
    args = parser.parse_args(argv)
    sizes = Sizes.small() if args.quick else Sizes.full()
    everything = groups()
    by_key = {g.key: g for g in everything}
    wanted = [k.strip() for k in args.only.split(",") if k.strip()] or list(by_key)
    unknown = [k for k in wanted if k not in by_key]
    if unknown:
        parser.error(f"unknown group(s): {', '.join(unknown)}")
    if "sql" in wanted and "five" not in wanted:
        wanted.append("five")
    if "five" in wanted and "sql" not in wanted:
        wanted.append("sql")
    selected = [g for g in everything if g.key in wanted]
    command = "python -m bench.run" + (" " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()
    # Stopped with SIGTERM, still drop the PostgreSQL databases and stop the servers and workers started
    # (SystemExit runs every finally block on its way out).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started, began = datetime.now(UTC), time.perf_counter()
    host = machine()
    print(f"{command}\n{host}", flush=True)
    for g in selected:
        if g.key != "sql":  # row 1 prints it, from the same engines
            print(f"\n## {g.title}", flush=True)
        t0 = time.perf_counter()
        try:
            RUNNERS[g.key](g, sizes, by_key)
        except Exception as exc:  # one failing group must not hide the others' figures
            traceback.print_exc()
            g.error = f"{type(exc).__name__}: {exc}"
        g.seconds = time.perf_counter() - t0
        if g.key != "sql":
            print(f"  ({g.seconds:.1f} s)", flush=True)
    seconds = time.perf_counter() - began
    text = render(selected, command, started, seconds, host)
    out = Path(args.out) if args.out else (None if args.quick else OUT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"\nwrote {out}")
    failed = [g.key for g in selected if g.error]
    print(f"\ndone in {seconds:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
