"""A realistic database at scale, fast: 100,000 cases and ~1,000,000 audit events in a minute or two.

`fill(engine, instances)` deploys the KK process library (processes/), loads its organisation, starts one
real case per process to get a workflow state that loads, and then writes the bulk of the rows with
SQLAlchemy Core bulk inserts (COPY on PostgreSQL): cases spread over two years in every status, their
human tasks (open ones only on running cases), candidate forums and users, waits and timers, and ~10 audit
events per case. It works on SQLite and PostgreSQL; the benchmarks (bench/queries.py, bench/run.py) and the
query-plan tests (tests/engine/test_query_plans.py, tests/postgres/test_query_plans_pg.py) reuse it.

The generated human tasks are not the workflow's own tasks (their SpiffWorkflow ids are random): they are
for reading (inboxes, lists, counts, reports), not for completing.
"""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, union
from sqlalchemy.engine import Connection

from engine import Engine
from engine.models import (
    AuditEvent,
    Definition,
    Forum,
    HumanTask,
    Instance,
    Membership,
    TaskCandidate,
    TaskCandidateUser,
    User,
    Wait,
)

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
ORGANISATION = PROCESSES / "organisation.yaml"

# Share of cases per status (the rest completed).
STATUS_SHARES = (("active", 0.30), ("incident", 0.02), ("suspended", 0.01), ("terminated", 0.05))
VERSIONS_PER_PROCESS = 6
EVENTS_PER_INSTANCE = 10
BATCH = 5000
# The user whose inbox the benchmarks read: member of four forums that hold ~12 % of the open tasks.
INBOX_USER = "anna"
# Relative weight of a forum as a task's candidate group; the heavy ones are the ones of INBOX_USER.
# How common each process is: inquiries are the daily work, the yearly steering dialogue is rare.
PROCESS_WEIGHTS = {"henvendelse": 6.0, "faellesindstilling": 3.0, "partnerskabsaftale": 0.5, "styringsdialog": 0.2}
HEAVY_FORUMS = {"TMF": 0.6, "Samarbejdsforum": 0.3, "TMF sekretariat": 0.3, "Tværkommunal styregruppe": 0.15}

START_DATA: dict[str, dict[str, Any]] = {
    "henvendelse": {"titel": "Venteliste til ungdomsboliger", "beskrivelse": "Fælles venteliste.",
                    "rejst_af": "boligorganisation", "emne": "udlejning"},
    "faellesindstilling": {"titel": "Boligsocial helhedsplan", "sagsnummer": "2027-0012345",
                           "udvalg": ["TMU", "SOU"], "lokaludvalg": ["Lokaludvalg Nørrebro"],
                           "medunderskrivere": ["SOF"]},
    "styringsdialog": {"aar": 2027, "boligorganisationer": ["fsb", "AKB København", "3B"]},
}

FORM_FIELDS = [
    {"id": "beslutning", "label": "Beslutning", "type": "enum", "required": True,
     "values": [{"id": "godkendt", "name": "Godkendt"}, {"id": "afvist", "name": "Afvist"},
                {"id": "udsat", "name": "Udsat til næste møde"}]},
    {"id": "begrundelse", "label": "Begrundelse", "type": "string", "required": False, "multiline": True},
    {"id": "moededato", "label": "Mødedato", "type": "date", "required": False},
]
TASK_NAMES = ("Visitér henvendelse", "Behandl i temagruppen", "Forbered indstilling", "Godkend indstilling",
              "Høring i lokaludvalg", "Beslut i forum", "Orientér boligorganisationen", "Skriv referat",
              "Afstem med forvaltningen", "Send til medunderskrift")


@dataclass
class Dataset:
    """What fill() made: sizes, and the names a benchmark needs to ask realistic questions."""

    instances: int
    audit_events: int
    human_tasks: int
    open_tasks: int
    inbox_user: str
    inbox_forums: list[str]
    inbox_open: int
    process_keys: list[str]
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def fill(eng: Engine, instances: int, *, events_per_instance: int = EVENTS_PER_INSTANCE, seed: int = 7,
         versions: int = VERSIONS_PER_PROCESS) -> Dataset:
    """Fill an initialised, empty database (eng.init_db() done) with `instances` cases and their rows."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    now = eng.clock.now()
    eng.identity.load_organisation(ORGANISATION, with_passwords=False)
    eng.definitions.deploy([PROCESSES], user="system")
    states = _real_states(eng)
    with eng.db.engine.begin() as conn:
        defs = _add_versions(conn, states, versions)
        forums = [name for (name,) in conn.execute(select(Forum.name).order_by(Forum.id))]
        users = [name for (name,) in conn.execute(select(User.username).order_by(User.id))]
        inbox_forums = [name for (name,) in conn.execute(
            select(Forum.name).join(Membership, Membership.forum_id == Forum.id)
            .join(User, User.id == Membership.user_id).where(User.username == INBOX_USER))]
        first_ids = {t.name: _next_id(conn, t) for t in (Instance.__table__, HumanTask.__table__,
                                                         AuditEvent.__table__, Wait.__table__)}
    weights = [HEAVY_FORUMS.get(f, 0.2) for f in forums]
    gen = _Generator(rng, now, defs, states, forums, weights, users, first_ids)
    with eng.db.engine.begin() as conn:
        for chunk in _chunks(range(instances), BATCH):
            rows = gen.cases(chunk, events_per_instance)
            for table, values in rows.items():
                _bulk(conn, table, values)
        _fix_sequences(conn)
    _analyze(eng)
    with eng.db.engine.connect() as conn:
        counts = {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in
                  (Instance.__table__, HumanTask.__table__, TaskCandidate.__table__, AuditEvent.__table__,
                   Wait.__table__)}
        open_tasks = conn.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.status == "open"))
        # The inbox: open tasks of the user's forums, or with the user as a candidate, or assigned to them.
        mine = union(
            select(TaskCandidate.task_id).where(TaskCandidate.forum.in_(inbox_forums)),
            select(TaskCandidateUser.task_id).where(TaskCandidateUser.username == INBOX_USER),
            select(HumanTask.id).where(HumanTask.assignee == INBOX_USER)).subquery()
        inbox_open = conn.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.status == "open", HumanTask.id.in_(select(mine.c[0]))))
    return Dataset(instances=counts["instances"], audit_events=counts["audit_events"],
                   human_tasks=counts["human_tasks"], open_tasks=open_tasks or 0, inbox_user=INBOX_USER,
                   inbox_forums=inbox_forums, inbox_open=inbox_open or 0, process_keys=sorted(states),
                   seconds=time.perf_counter() - t0, counts=counts)


def _real_states(eng: Engine) -> dict[str, tuple[str, dict[str, Any]]]:
    """{process key: (state_json, variables)} of one real case per process that starts; the copies the
    generator makes load like any case of that process (the instance page reads them)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for info in eng.definitions.list(latest_only=True):
        try:
            view = eng.runtime.start(info.key, business_key=f"REAL-{info.key}", data=START_DATA.get(info.key),
                                     user="system")
        except Exception:  # a process that needs data we do not have: its cases are not generated
            continue
        with eng.db.engine.connect() as conn:
            state = conn.scalar(select(Instance.state_json).where(Instance.id == view.id))
        out[info.key] = (state or "{}", view.data)
    if not out:
        raise RuntimeError("no process of processes/ could be started")
    return out


def _add_versions(conn: Connection, states: dict[str, Any], versions: int) -> list[tuple[int, str, int]]:
    """Copies of each deployed definition as versions 2..n (same spec): [(id, key, version)]."""
    table = Definition.__table__
    base = [dict(r._mapping) for r in conn.execute(select(table).where(Definition.key.in_(states)))]
    out = [(r["id"], r["key"], r["version"]) for r in base]
    for row in base:
        for version in range(row["version"] + 1, row["version"] + versions):
            copy = {k: v for k, v in row.items() if k != "id"} | {"version": version, "next_start_at": None}
            new_id = conn.execute(insert(table).values(**copy).returning(table.c.id)).scalar_one()
            out.append((new_id, row["key"], version))
    return out


def _next_id(conn: Connection, table: Any) -> int:
    return (conn.scalar(select(func.max(table.c.id))) or 0) + 1


class _Generator:
    def __init__(self, rng: random.Random, now: datetime, defs: list[tuple[int, str, int]],
                 states: dict[str, tuple[str, dict[str, Any]]], forums: list[str], weights: list[float],
                 users: list[str], first_ids: dict[str, int]) -> None:
        self.rng, self.now, self.states = rng, now, states
        self.forums, self.weights, self.users = forums, weights, users
        # Newer versions carry more cases.
        self.defs = defs
        self.def_weights = [(1 + version) * PROCESS_WEIGHTS.get(key, 1.0) for _, key, version in defs]
        self.next = dict(first_ids)
        self.statuses = [s for s, _ in STATUS_SHARES] + ["completed"]
        self.status_weights = [w for _, w in STATUS_SHARES] + [1 - sum(w for _, w in STATUS_SHARES)]

    def _id(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value

    def cases(self, numbers: Iterable[int], events_per_instance: int) -> dict[Any, list[dict[str, Any]]]:
        rng = self.rng
        out: dict[Any, list[dict[str, Any]]] = {Instance.__table__: [], HumanTask.__table__: [],
                                                TaskCandidate.__table__: [], TaskCandidateUser.__table__: [],
                                                Wait.__table__: [], AuditEvent.__table__: []}
        span = timedelta(days=730).total_seconds()
        for n in numbers:
            def_id, key, _version = rng.choices(self.defs, self.def_weights)[0]
            state, variables = self.states[key]
            status = rng.choices(self.statuses, self.status_weights)[0]
            running = status in ("active", "incident", "suspended")
            # Running cases are younger than ended ones on average, as in real life.
            age = rng.random() ** (2 if running else 1) * span
            started = self.now - timedelta(seconds=age)
            ended = None
            if not running:
                ended = min(self.now - timedelta(minutes=1), started + timedelta(days=rng.uniform(1, 120)))
            iid = self._id("instances")
            due = None
            if status == "active" and rng.random() < 0.35:
                due = self.now + timedelta(hours=rng.uniform(-2, 24 * 60))
            out[Instance.__table__].append({
                "id": iid, "definition_id": def_id, "business_key": f"{key[:3].upper()}-{started.year}-{n:07d}",
                "status": status, "state_json": state, "variables": variables, "version": 3,
                "started_at": started, "started_by": rng.choice(self.users), "ended_at": ended,
                "next_due_at": due,
                "incident_message": "script failed: name 'x' is not defined" if status == "incident" else None,
                "incident_element_id": "beregn" if status == "incident" else None,
                "incident_at": started + timedelta(days=1) if status == "incident" else None,
                "parent_instance_id": None})
            if due is not None:
                out[Wait.__table__].append({"id": self._id("waits"), "instance_id": iid, "kind": "timer",
                                            "element_id": "frist", "name": "Frist", "due_at": due})
            elif running and rng.random() < 0.1:
                out[Wait.__table__].append({"id": self._id("waits"), "instance_id": iid, "kind": "message",
                                            "element_id": "svar", "name": "svar_modtaget", "due_at": None})
            events = self._tasks(out, iid, status, started, ended)
            self._events(out, iid, status, started, ended, events, events_per_instance)
        return out

    def _tasks(self, out: dict[Any, list[dict[str, Any]]], iid: int, status: str, started: datetime,
               ended: datetime | None) -> list[tuple[str, datetime, int]]:
        """Human tasks of one case: done ones, and one or two open ones while it runs."""
        rng = self.rng
        done = rng.randint(1, 4)
        open_count = 0
        if status in ("active", "incident", "suspended"):
            open_count = 2 if rng.random() < 0.1 else 1
        end = ended or self.now
        made: list[tuple[str, datetime, int]] = []
        for i in range(done + open_count):
            is_open = i >= done
            created = started + (end - started) * (i / (done + open_count + 1))
            tid = self._id("human_tasks")
            groups = [rng.choices(self.forums, self.weights)[0]]
            if rng.random() < 0.1:
                groups.append(rng.choices(self.forums, self.weights)[0])
            groups = list(dict.fromkeys(groups))
            users = [rng.choice(self.users)] if rng.random() < 0.02 else []
            due_at = created + timedelta(days=rng.randint(5, 60)) if rng.random() < 0.7 else None
            task_status = "open" if is_open else ("cancelled" if status == "terminated" and i == done - 1
                                                  else "completed")
            closed_at = None if is_open else created + (end - created) * rng.uniform(0.1, 0.9)
            assignee = None
            if not is_open or rng.random() < 0.2:
                assignee = rng.choice(self.users)
            out[HumanTask.__table__].append({
                "id": tid, "instance_id": iid, "spiff_task_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "element_id": f"opgave_{i}", "name": rng.choice(TASK_NAMES), "forum": groups[0],
                "candidate_groups": groups, "assignee": assignee,
                "due_at": due_at,
                "fields": FORM_FIELDS, "documentation": "Læs sagens bilag før mødet." if i % 2 else None,
                "status": task_status, "created_at": created, "completed_at": closed_at,
                "completed_by": assignee if task_status == "completed" else None,
                "follow_up_at": None, "priority": None, "candidate_users": users})
            for forum in groups:
                out[TaskCandidate.__table__].append({"task_id": tid, "forum": forum, "is_open": is_open,
                                                     "created_at": created, "due_at": due_at})
            for user in users:
                out[TaskCandidateUser.__table__].append({"task_id": tid, "username": user, "is_open": is_open})
            made.append(("task_created", created, tid))
            if closed_at is not None:
                made.append(("task_completed" if task_status == "completed" else "task_cancelled", closed_at, tid))
        return made

    def _events(self, out: dict[Any, list[dict[str, Any]]], iid: int, status: str, started: datetime,
                ended: datetime | None, tasks: list[tuple[str, datetime, int]], per_instance: int) -> None:
        rng = self.rng
        events: list[tuple[str, datetime, int | None, dict[str, Any]]] = [
            ("started", started, None, {"data": {"titel": "Sag"}, "version": 1})]
        for kind, when, tid in tasks:
            details: dict[str, Any] = {"name": "Opgave"}
            if kind == "task_completed":
                details["data"] = {"beslutning": "godkendt", "begrundelse": "Som indstillet."}
            events.append((kind, when, tid, details))
        end = ended or self.now
        while len(events) < per_instance - (0 if ended is None else 1):
            when = started + (end - started) * rng.random()
            events.append((rng.choice(("claimed", "timer_fired", "message_received", "variables_changed")), when,
                           None, {}))
        if ended is not None:
            events.append(("completed" if status == "completed" else "terminated", ended, None, {}))
        events.sort(key=lambda e: e[1])
        for kind, when, tid, details in events:
            out[AuditEvent.__table__].append({
                "id": self._id("audit_events"), "instance_id": iid, "type": kind, "time": when,
                "user": None if kind in ("started", "timer_fired") else rng.choice(self.users),
                "element_id": None, "task_id": tid, "details": details})


def _chunks(numbers: range, size: int) -> Iterator[range]:
    for start in range(numbers.start, numbers.stop, size):
        yield range(start, min(start + size, numbers.stop))


def _bulk(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, rows)
    else:
        conn.execute(insert(table), rows)


def _copy(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY ... FROM STDIN, many times faster than INSERT batches for a million rows."""
    columns = list(rows[0])
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join(_copy_text(row[c]) for c in columns) + "\n")
    cursor = conn.connection.driver_connection.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        copy.write(buf.getvalue())


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _fix_sequences(conn: Connection) -> None:
    """Explicit ids leave PostgreSQL's sequences behind: move them past the rows written."""
    if conn.dialect.name != "postgresql":
        return
    for table in ("instances", "human_tasks", "audit_events", "waits", "definitions"):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                          f"(SELECT coalesce(max(id), 1) FROM {table}))"))


def _analyze(eng: Engine) -> None:
    """Planner statistics and (PostgreSQL) the visibility map, as autovacuum would leave them after a
    bulk load: without VACUUM every index-only scan would still visit the table."""
    if eng.db.is_postgres:
        with eng.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return
    with eng.db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
