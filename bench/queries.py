"""The four reads at scale, side by side: inbox, case list with filters, case page, admin dashboard.

`python -m bench.queries` fills two databases with bench/dataset.py (10,000 and 100,000 cases, ~10
audit events each), then requests each page through the real web app (Flask's test client, logged in;
the engine on a real SQLite file, or PostgreSQL with BENCH_PG_URL) in interleaved rounds, and prints
p50/p95 per scale, the ratio of the p95s and whether the targets are met (p95 < 50 ms at 100k, within
2x of 10k). The service calls behind each page are timed too, to tell database from rendering.

Environment: BENCH_QUERY_SCALES (default "10000,100000"), BENCH_QUERY_ROUNDS (default 30),
BENCH_QUERY_DIR (keep the generated databases there and reuse them: generating 100k takes ~1 min),
BENCH_PG_URL (an admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres: also run on
PostgreSQL, in databases it creates and drops).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from engine import Engine, FrozenClock

from . import dataset

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
PASSWORD = "bench-password-1"
TARGET_MS = 50.0
TARGET_RATIO = 2.0


@dataclass
class Scale:
    label: str
    engine: Engine
    info: dataset.Dataset
    reads: dict[str, Callable[[], Any]]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def open_scale(url: str, instances: int, marker: Path | None = None) -> tuple[Engine, dataset.Dataset]:
    """An engine on a database holding `instances` generated cases (made now, or reused via marker)."""
    eng = Engine.create(url, clock=FrozenClock(NOW))
    eng.init_db()
    if marker is not None and marker.exists():
        info = dataset.Dataset(**json.loads(marker.read_text()))
    else:
        info = dataset.fill(eng, instances)
        eng.identity.update_user(info.inbox_user, password=PASSWORD)
        eng.identity.add_user("bench-admin", "Bench", "admin", [], PASSWORD)
        if marker is not None:
            marker.write_text(json.dumps(info.__dict__))
    return eng, info


def page_reads(eng: Engine, info: dataset.Dataset) -> dict[str, Callable[[], Any]]:
    from webapp import create_app

    app = create_app(eng, {"TESTING": True, "WTF_CSRF_ENABLED": False, "ALMENFLOW_SCHEDULER": False})
    member, admin = app.test_client(), app.test_client()
    for client, user in ((member, info.inbox_user), (admin, "bench-admin")):
        response = client.post("/login", data={"username": user, "password": PASSWORD})
        assert response.status_code == 302, f"login as {user} failed"
    case_id = eng.runtime.page(status="active", key="henvendelse", limit=1).items[0]["id"]

    def get(client: Any, url: str) -> Callable[[], Any]:
        def read() -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        return read

    return {
        "inbox (page)": get(member, "/tasks"),
        "inbox (service)": lambda: eng.tasks.page(user=info.inbox_user, limit=25),
        "case list status+process (page)": get(admin, "/instances?status=active&process=henvendelse"),
        "case list status+process (service)": lambda: eng.runtime.page(status="active", key="henvendelse",
                                                                      limit=25),
        "case page (page)": get(admin, f"/instances/{case_id}"),
        "case page (service)": lambda: eng.runtime.get(case_id),
        "admin dashboard (page)": get(admin, "/admin"),
    }


def measure(scales: list[Scale], rounds: int) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    for scale in scales:  # warm caches once
        for read in scale.reads.values():
            read()
    for _ in range(rounds):
        for scale in scales:
            for name, read in scale.reads.items():
                t0 = time.perf_counter()
                read()
                times.setdefault((scale.label, name), []).append((time.perf_counter() - t0) * 1000)
    return times


def report(title: str, scales: list[Scale], times: dict[tuple[str, str], list[float]]) -> list[str]:
    small, large = scales[0], scales[-1]
    lines = [f"### {title}", "",
             f"{small.label}: {small.info.instances:,} cases, {small.info.audit_events:,} audit events, "
             f"{small.info.open_tasks:,} open tasks ({small.info.inbox_open:,} in the inbox read); "
             f"{large.label}: {large.info.instances:,} cases, {large.info.audit_events:,} audit events, "
             f"{large.info.open_tasks:,} open tasks ({large.info.inbox_open:,} in the inbox read).", "",
             f"| read | p50 / p95 at {small.label} | p50 / p95 at {large.label} | p95 ratio | target met |",
             "| --- | --- | --- | --- | --- |"]
    for name in small.reads:
        a, b = times[(small.label, name)], times[(large.label, name)]
        ratio = pct(b, 95) / pct(a, 95)
        met = "yes" if pct(b, 95) < TARGET_MS and ratio <= TARGET_RATIO else "no"
        if "(service)" in name:
            met = "-"
        lines.append(f"| {name} | {statistics.median(a):.1f} / {pct(a, 95):.1f} ms | "
                     f"{statistics.median(b):.1f} / {pct(b, 95):.1f} ms | {ratio:.2f}x | {met} |")
    return lines + [""]


def run_sqlite(sizes: list[int], rounds: int, folder: Path) -> list[str]:
    scales = []
    for n in sizes:
        path = folder / f"queries-{n}.sqlite"
        marker = folder / f"queries-{n}.info"
        if path.exists() and not marker.exists():
            path.unlink()
        eng, info = open_scale(f"sqlite:///{path}", n, marker)
        scales.append(Scale(f"{n // 1000}k", eng, info, page_reads(eng, info)))
    try:
        return report("SQLite (one file, WAL)", scales, measure(scales, rounds))
    finally:
        for s in scales:
            s.engine.dispose()


def run_postgres(admin_url: str, sizes: list[int], rounds: int) -> list[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"almenflow_bench_{uuid.uuid4().hex[:8]}_{n}" for n in sizes]
    scales = []
    try:
        for name, n in zip(names, sizes, strict=True):
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            eng, info = open_scale(admin_url.rsplit("/", 1)[0] + f"/{name}", n)
            scales.append(Scale(f"{n // 1000}k", eng, info, page_reads(eng, info)))
        return report("PostgreSQL", scales, measure(scales, rounds))
    finally:
        for s in scales:
            s.engine.dispose()
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> list[str]:
    sizes = [int(s) for s in os.environ.get("BENCH_QUERY_SCALES", "10000,100000").split(",")]
    rounds = int(os.environ.get("BENCH_QUERY_ROUNDS", "30"))
    keep = os.environ.get("BENCH_QUERY_DIR")
    lines = [f"## Reads at scale (`python -m bench.queries`, {rounds} interleaved rounds)", ""]
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        lines += run_sqlite(sizes, rounds, Path(keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            lines += run_sqlite(sizes, rounds, Path(tmp))
    if os.environ.get("BENCH_PG_URL"):
        lines += run_postgres(os.environ["BENCH_PG_URL"], sizes, rounds)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
