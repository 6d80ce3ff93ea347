"""Row 4: the inbox, the instance list with filters, a case page and the admin dashboard at 10,000 and
100,000 cases (~10 audit events each, so ~1,000,000 at the large size), on embedded SQLite.

HOOK (the "queries" part of issue 7): when bench/dataset.py and bench/queries.py exist, their data
generator and page reads are used (see `_from_queries_helper`); without them this module's own
fallback below runs: template cases made through the services, copied with bench/clone.py, and the
pages timed through the web app in-process (Flask test client: the whole request, routing, services,
SQL and templates, without sockets)."""

from __future__ import annotations

import importlib
import importlib.util
import tempfile
import time
from datetime import timedelta
from typing import Any

from engine import Engine

from . import processes
from .clone import CaseCloner
from .common import Group, Sizes, deploy, median, new_engine, of_limit, pct

PROCESSES = 8  # five_0 ... five_7, each with its own forum
MEMBER, ADMIN, PASSWORD = "member", "admin", "bench-password-1"
TARGET_P95 = 0.050


def run(group: Group, sizes: Sizes) -> None:
    if _from_queries_helper(group, sizes):
        return
    with tempfile.TemporaryDirectory() as tmp:
        eng = new_engine(f"sqlite:///{tmp}/scale.sqlite")
        try:
            _fallback(group, sizes, eng, tmp)
        finally:
            eng.dispose()


def _from_queries_helper(group: Group, sizes: Sizes) -> bool:
    """HOOK: bench.dataset (generator) and bench.queries (page and service reads) belong to the "queries"
    helper. Their pieces are used as they are: queries.open_scale(url, n) fills a database with
    dataset.fill, queries.page_reads(engine, info) names the reads, queries.measure(scales, rounds) times
    them in interleaved rounds (ms). Returns False (the fallback runs) while they are not there."""
    if importlib.util.find_spec("bench.dataset") is None or importlib.util.find_spec("bench.queries") is None:
        return False
    queries = importlib.import_module("bench.queries")
    if not all(callable(getattr(queries, name, None)) for name in ("open_scale", "page_reads", "measure", "Scale")):
        group.add("bench/queries.py", "found without open_scale/page_reads/measure/Scale; the fallback measured")
        return False
    scales: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for n in (sizes.scale_small, sizes.scale_large):
                t0 = time.perf_counter()
                eng, info = queries.open_scale(f"sqlite:///{tmp}/queries-{n}.sqlite", n)
                scales.append(queries.Scale(f"{n:,}", eng, info, queries.page_reads(eng, info)))
                group.add(f"database at {n:,} (bench/dataset.py)",
                          f"{info.instances:,} cases, {info.audit_events:,} audit events, {info.open_tasks:,} open "
                          f"tasks ({info.inbox_open:,} in the inbox read); made in {time.perf_counter() - t0:.1f} s")
            times = queries.measure(scales, sizes.scale_repeats)
        finally:
            for scale in scales:
                scale.engine.dispose()
    small, large = scales
    for name in small.reads:
        a = [t / 1000 for t in times[(small.label, name)]]
        b = [t / 1000 for t in times[(large.label, name)]]
        _judge(group, name, small.label, large.label, a, b, judged="(service)" not in name)
    return True


def _judge(group: Group, name: str, small: str, large: str, a: list[float], b: list[float], judged: bool = True) -> None:
    """Two rows per read: p95 at the small size (target < 50 ms), at the large one (and ≤ 2× the small)."""
    s95, l95 = pct(a, 95), pct(b, 95)
    group.add(f"{name} at {small}: p95 (median)", f"{s95 * 1000:.1f} ms ({median(a) * 1000:.1f} ms)",
              of_limit(s95, TARGET_P95) if judged else "", "p95 < 50 ms" if judged else "",
              s95 < TARGET_P95 if judged else None)
    group.add(f"{name} at {large}: p95 (median)", f"{l95 * 1000:.1f} ms ({median(b) * 1000:.1f} ms)",
              f"{l95 / s95:.1f}× the {small} figure", "p95 < 50 ms and ≤ 2×" if judged else "",
              (l95 < TARGET_P95 and l95 <= 2 * s95) if judged else None)


# -- fallback ------------------------------------------------------------------------------------------
def _templates(eng: Engine, per_process: int) -> None:
    """Cases of every kind the pages show, ~10 audit events each: 60 % completed, 25 % waiting in A
    (dated), 15 % in B; each had its task claimed and handed back a few times."""
    forums = [f"Forum {i}" for i in range(PROCESSES)]
    for forum in forums:
        eng.identity.add_forum(forum)
    eng.identity.add_user(MEMBER, forums=forums[:2], password=PASSWORD)
    eng.identity.add_user(ADMIN, role="admin", forums=forums, password=PASSWORD)
    for i in range(PROCESSES):
        deploy(eng, f"five_{i}.bpmn", processes.five_step(f"five_{i}", forums[i], f"Fem trin {i}", due="P14D"))
    for i in range(PROCESSES):
        for j in range(per_process):
            inst = eng.runtime.start(f"five_{i}", business_key=f"KK-{i}-{j}", user=ADMIN)
            share = j / per_process
            kind = "done" if share < 0.6 else "in A" if share < 0.85 else "in B"
            task = inst.tasks[0].id
            for _ in range(4 if kind == "in A" else 2):
                eng.tasks.claim(task, ADMIN)
                eng.tasks.unclaim(task, ADMIN)
            if kind == "in A":
                continue
            eng.tasks.complete(task, ADMIN, {"n": 1})
            following = eng.tasks.query(instance_id=inst.id)[0].id
            if kind == "in B":
                eng.tasks.claim(following, ADMIN)
                continue
            eng.tasks.complete(following, ADMIN)


def _login(app: Any, user: str) -> Any:
    client = app.test_client()
    response = client.post("/login", data={"username": user, "password": PASSWORD})
    assert response.status_code == 302, f"login as {user} failed: {response.status_code}"
    return client


def _pages(eng: Engine, tmp: str) -> list[tuple[str, Any, str]]:
    from webapp import create_app

    app = create_app(eng, {"WTF_CSRF_ENABLED": False, "ALMENFLOW_INSTANCE_PATH": tmp})
    member, admin = _login(app, MEMBER), _login(app, ADMIN)
    return [
        ("inbox page /tasks (member of 2 of 8 forums)", member, "/tasks"),
        ("start page / (inbox excerpt and counts)", member, "/"),
        ("instance list, status + process filter", admin, "/instances?status=active&process=five_3"),
        ("instance list, a page in the middle", admin, "/instances?page={middle}"),
        ("case page /instances/<id> (a completed case)", admin, "/instances/{case}"),
        ("admin dashboard /admin", admin, "/admin"),
    ]


def _time_pages(pages: list[tuple[str, Any, str]], repeats: int, **fill: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name, _, _ in pages}
    for _name, client, path in pages:  # warm: templates compiled, caches filled
        client.get(path.format(**fill))
    for _ in range(repeats):  # interleaved: each round requests every page once
        for name, client, path in pages:
            began = time.perf_counter()
            response = client.get(path.format(**fill))
            times[name].append(time.perf_counter() - began)
            assert response.status_code == 200, f"{path}: HTTP {response.status_code}"
    return times


def _fallback(group: Group, sizes: Sizes, eng: Engine, tmp: str) -> None:
    t0 = time.perf_counter()
    _templates(eng, sizes.scale_templates)
    cloner = CaseCloner(eng, shift=timedelta(days=730) * cloner_step(sizes))
    templates = cloner.templates
    events = sum(len(rows) for name, rows in cloner.rows.items() if name == "audit_events")
    group.add("template cases made through the services (copied to reach each size)",
              f"{templates} cases, {events / templates:.1f} audit events each, {time.perf_counter() - t0:.1f} s")
    case = next(r["id"] for r in cloner.rows["instances"] if r["status"] == "completed")
    pages = _pages(eng, tmp)
    results: dict[int, dict[str, list[float]]] = {}
    for size in (sizes.scale_small, sizes.scale_large):
        t0 = time.perf_counter()
        have = templates * (cloner.copies + 1)
        if size > have:
            cloner.add(-(-(size - have) // templates))
        with eng.db.engine.connect() as conn:
            from sqlalchemy import text

            n_inst = conn.scalar(text("SELECT count(*) FROM instances"))
            n_events = conn.scalar(text("SELECT count(*) FROM audit_events"))
            n_open = conn.scalar(text("SELECT count(*) FROM human_tasks WHERE status = 'open'"))
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("ANALYZE")
        group.add(f"database at {size:,}", f"{n_inst:,} cases, {n_events:,} audit events, {n_open:,} open tasks; "
                  f"copied in {time.perf_counter() - t0:.1f} s")
        results[size] = _time_pages(pages, sizes.scale_repeats, case=case, middle=max(1, n_inst // 50))
    small, large = results[sizes.scale_small], results[sizes.scale_large]
    for name, _, _ in pages:
        _judge(group, name, f"{sizes.scale_small:,}", f"{sizes.scale_large:,}", small[name], large[name])


def cloner_step(sizes: Sizes) -> float:
    """Copies spread over two years at the large size: the fraction of that span between two copies."""
    return 1 / max(1, sizes.scale_large // (PROCESSES * sizes.scale_templates))
