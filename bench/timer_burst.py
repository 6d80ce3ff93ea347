"""Row 7: many timers due in the same second, fired by real worker processes: 1 worker on SQLite,
2 on PostgreSQL.

HOOK (the "queries" part of issue 7 owns timers in batches): when bench/timers.py exists, it measures
this row instead (see `_from_queries_helper`). Until then the fallback here:
cases waiting on a one-hour timer are made through the services with a frozen clock and copied
(bench/clone.py), so all fall due at the same instant; worker processes (bench/timer_worker.py: the
engine's own worker loop with a shifted clock) are started, and the benchmark polls how many cases have
finished. Lag = when a case finished minus when its timer fell due, from 20 polls a second."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import Engine, FrozenClock

from . import processes
from .clone import CaseCloner
from .common import (
    ROOT,
    Group,
    Sizes,
    Skip,
    deploy,
    memory_mb,
    new_engine,
    of_limit,
    pct,
    plural,
    postgres_database,
)

KEY = "wait"
TEMPLATES = 50
T0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
DUE = T0 + timedelta(hours=1)


def run(group: Group, sizes: Sizes) -> None:
    if _from_queries_helper(group, sizes):
        return
    with tempfile.TemporaryDirectory() as tmp:
        burst(group, sizes, f"sqlite:///{tmp}/timers.sqlite", sizes.timers_sqlite, 1, "SQLite",
              "all fired within 10 s", lambda lags: max(lags), 10)
    try:
        with postgres_database("timers") as url:
            burst(group, sizes, url, sizes.timers_postgres, 2, "PostgreSQL", "lag p99 < 1 s",
                  lambda lags: pct(lags, 99), 1)
    except Skip as exc:
        group.skip(f"{sizes.timers_postgres:,} timers on PostgreSQL, 2 workers", str(exc), "lag p99 < 1 s")


def _from_queries_helper(group: Group, sizes: Sizes) -> bool:
    """HOOK: bench/timers.py (the "queries" helper's). Either `run(group, sizes)`, or its per-run form
    `run(url, count, workers, spread_seconds, label)` returning one Markdown table row
    (| label | N fired, M left | p50 / p99 / max lag | last | worker peak RSS | setup |), read here.
    Returns False (the fallback runs) while there is none."""
    if importlib.util.find_spec("bench.timers") is None:
        return False
    timers = importlib.import_module("bench.timers")
    measure = getattr(timers, "run", None)
    params = list(inspect.signature(measure).parameters) if callable(measure) else []
    if params[:2] == ["group", "sizes"]:
        measure(group, sizes)
        return True
    if params[:5] != ["url", "count", "workers", "spread_seconds", "label"]:
        group.add("bench/timers.py", "found, but its run() is not one this harness knows; the fallback measured")
        return False
    if sizes.quick and hasattr(timers, "SETUP_MARGIN"):
        timers.SETUP_MARGIN = timedelta(seconds=6)  # a few timers are made in seconds: wait less for them
    label = f"SQLite: {sizes.timers_sqlite:,} timers due in the same second, 1 worker process (bench/timers.py)"
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(f"sqlite:///{tmp}/timers.sqlite", sizes.timers_sqlite, 1, 0, label)
    _their_row(group, label, rows, "all fired within 10 s", 2, 10)
    label = f"PostgreSQL: {sizes.timers_postgres:,} timers due in the same second, 2 worker processes (bench/timers.py)"
    try:
        with postgres_database("timers") as url:
            rows = measure(url, sizes.timers_postgres, 2, 0, label)
        _their_row(group, label, rows, "lag p99 < 1 s", 1, 1)
    except Skip as exc:
        group.skip(label, str(exc), "lag p99 < 1 s")
    return True


def _their_row(group: Group, label: str, rows: list[str], target: str, which: int, limit: float) -> None:
    """One row of bench/timers.py's table as a result; `which` picks the judged lag (0 p50, 1 p99, 2 max)."""
    cells = [c.strip() for c in (rows[0] if rows else "").strip().strip("|").split("|")]
    counts = re.match(r"([\d,]+) fired, ([\d,]+) left", cells[1] if len(cells) > 1 else "")
    lags = [float(v) for v in re.findall(r"([\d.]+) s", cells[2])] if len(cells) > 2 else []
    if counts is None or len(lags) < 3:
        group.add(label, " ".join(cells[1:]) or "no result", "", target, None if "not measured" in str(cells) else False)
        return
    left = int(counts.group(2).replace(",", ""))
    figure = lags[which]
    value = (f"{counts.group(1)} fired, {left:,} left; lag p50 {lags[0]:.2f} s, p99 {lags[1]:.2f} s, max {lags[2]:.2f} s"
             + (f"; worker peak RSS {cells[4]}" if len(cells) > 4 else "") + (f"; {cells[5]}" if len(cells) > 5 else ""))
    group.add(label, value, of_limit(figure, limit), target, left == 0 and figure < limit)


def prepare(url: str, n: int) -> None:
    eng = new_engine(url, FrozenClock(T0))
    try:
        deploy(eng, f"{KEY}.bpmn", processes.timer_wait(KEY, "PT1H"))
        copies = -(-n // TEMPLATES)  # templates × copies = n when n is a multiple of them
        for _ in range(n // copies):
            eng.runtime.start(KEY, user="bench")
        if copies > 1:
            CaseCloner(eng).add(copies - 1)
    finally:
        eng.dispose()


def finished(eng: Engine) -> int:
    return eng.runtime.list(status="completed", key=KEY, limit=1)[1]


def burst(group: Group, sizes: Sizes, url: str, n: int, workers: int, label: str, target: str,
          judged: Callable[[list[float]], float], limit: float) -> None:
    """`judged` picks the figure the target is about from the lags (the last, the p99); it must stay
    below `limit` seconds."""
    prepare(url, n)
    probe = Engine.create(url)
    waiting = probe.runtime.list(status="active", key=KEY, limit=1)[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    interval = ["1"] if sizes.quick else []  # the quick run ticks every second so that something fires
    with ExitStack() as stack:
        procs: list[subprocess.Popen[str]] = []
        for _ in range(workers):
            proc = subprocess.Popen([sys.executable, "-m", "bench.timer_worker", url, DUE.isoformat(), *interval],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            stack.callback(_stop, proc)
            procs.append(proc)
        ticks = []
        for proc in procs:
            line = proc.stdout.readline().split() if proc.stdout else []
            if not line or line[0] != "ready":
                raise RuntimeError(f"timer worker did not start (exit status {proc.poll()})")
            ticks.append(float(line[1]))
        idle_rss = [memory_mb(p.pid) for p in procs]
        real_due = time.time() + max(ticks) / 2 + 0.5
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{real_due}\n")
            proc.stdin.flush()
        lags = _watch(probe, waiting, real_due, sizes.timers_cap_seconds, procs)
        peak_rss = [max(memory_mb(p.pid), memory_mb(p.pid, "VmHWM")) for p in procs]
    probe.dispose()
    tick = f"worker ticks every {max(ticks):g} s" + (" (the quick run's 1 s)" if sizes.quick else " (its default)")
    name = f"{label}: {waiting:,} timers due in the same second, {plural(workers, 'worker process', 'worker processes')}, {tick}"
    if len(lags) < waiting:
        group.add(name, f"{len(lags):,} of {waiting:,} fired within the {sizes.timers_cap_seconds:.0f} s cap"
                  + (f" (the first after {lags[0]:.1f} s)" if lags else ""),
                  f"> {sizes.timers_cap_seconds / limit:.0f}× the limit", target, False)
    else:
        figure = judged(lags)
        group.add(name, f"all fired after {max(lags):.1f} s; lag p50 {pct(lags, 50):.2f} s, p99 {pct(lags, 99):.2f} s "
                  f"({waiting / max(max(lags), 0.001):.0f}/s)", of_limit(figure, limit), target, figure < limit)
    group.add(f"{label}: worker RSS idle / peak", ", ".join(f"{i:.0f} / {p:.0f} MB"
                                                           for i, p in zip(idle_rss, peak_rss, strict=True)))


def _watch(probe: Engine, waiting: int, real_due: float, cap: float, procs: list[Any]) -> list[float]:
    """Lag of each fired timer (seconds after it fell due), from polling the count of finished cases."""
    lags: list[float] = []
    done = 0
    while time.time() < real_due + cap and done < waiting:
        time.sleep(0.05)
        now_done = finished(probe)
        if now_done > done:
            lag = max(0.0, time.time() - real_due)
            lags += [lag] * (now_done - done)
            done = now_done
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a timer worker exited during the measurement")
    return lags


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
