"""What every benchmark group shares: the result row, sizes for the full and the quick run, process
and PostgreSQL helpers, and counting SQL. Linux only (CPU and memory of other processes come from /proc)."""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from engine import Clock, Engine
from engine.parsing import Resource

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class Skip(Exception):
    """A measurement that cannot run here (no PostgreSQL server, a helper module missing): its rows say why."""


@dataclass
class Result:
    """One line of a group's table. `met` is None when there is no target or nothing was measured."""

    measure: str
    value: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def met_text(self) -> str:
        return {True: "yes", False: "**no**", None: "–"}[self.met]


@dataclass
class Group:
    key: str
    title: str
    about: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, measure: str, value: str, ratio: str = "", target: str = "", met: bool | None = None) -> Result:
        row = Result(measure, value, ratio, target, met)
        self.results.append(row)
        print(f"  {measure}: {value}" + (f"  [{ratio}]" if ratio else "") +
              (f"  target {target}: {row.met_text}" if target else ""), flush=True)
        return row

    def skip(self, measure: str, reason: str, target: str = "") -> None:
        self.add(measure, f"skipped: {reason}", target=target)


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between `make bench` and `make bench-quick`."""

    quick: bool
    five_rounds: int = 7
    five_per_round: int = 25
    http_instances: int = 150
    http_basic_instances: int = 6
    scale_small: int = 10_000
    scale_large: int = 100_000
    scale_repeats: int = 20
    scale_templates: int = 20  # template cases per process (8 processes)
    loop_short: int = 10
    loop_long: int = 1_000
    loop_rounds: int = 7
    loop_cap_seconds: float = 120.0  # building the long history stops here (it grows quadratically today)
    mi_items: int = 1_000
    mi_cap_seconds: float = 60.0
    timers_sqlite: int = 2_000
    timers_postgres: int = 10_000
    timers_cap_seconds: float = 60.0
    basics_instances: int = 200

    @classmethod
    def full(cls) -> Sizes:
        return cls(quick=False)

    @classmethod
    def small(cls) -> Sizes:
        return cls(quick=True, five_rounds=3, five_per_round=4, http_instances=15, http_basic_instances=1,
                   scale_small=300, scale_large=1_500, scale_repeats=3, scale_templates=5, loop_short=5, loop_long=40, loop_rounds=3, loop_cap_seconds=10.0,
                   mi_items=30, mi_cap_seconds=10.0, timers_sqlite=60, timers_postgres=120, timers_cap_seconds=8.0,
                   basics_instances=20)


# -- numbers ---------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def of_limit(value: float, limit: float) -> str:
    """A measured value as a multiple of its limit (below 1 is within it)."""
    return f"{value / limit:.2f}× the limit" if limit else ""


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


# -- other processes -------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, all its threads (0 when it has gone). The scheduler's nanosecond
    counts per thread are precise but forget threads that have ended (argon2's hashing threads, say);
    user + system time in /proc/<pid>/stat keeps them, in 10 ms ticks. The larger of the two is used."""
    ticks = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0
    nanoseconds = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        tasks = []
    for task in tasks:
        try:
            nanoseconds += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended just now, or no schedstat in this kernel
    return max(ticks, nanoseconds / 1e9)


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory (VmRSS) or its peak so far (VmHWM) of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Direct child processes (e.g. a server's evaluator processes)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def evaluator_pids(eng: Engine) -> list[int]:
    """The evaluator processes this engine's scripts run in (engine/sandbox/pool.py), if it has any."""
    try:
        return list(eng.script_engine.environment.pool.pids())
    except AttributeError:
        return []


# -- engines and databases -------------------------------------------------------------------
def new_engine(url: str, clock: Clock | None = None) -> Engine:
    eng = Engine.create(url, clock=clock)
    eng.init_db()
    return eng


def deploy(eng: Engine, name: str, xml: str, user: str = "bench") -> None:
    eng.definitions.deploy([Resource(name, xml.encode())], user=user)


def pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True,
                               connect_timeout=3)
    except psycopg.Error as exc:
        raise Skip(f"no PostgreSQL server answers on {PG_HOST}:{PG_PORT} ({str(exc).strip().splitlines()[0]})") from None


@contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A fresh database for one measurement, dropped afterwards; Skip when no server answers."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Skip("psycopg is not installed") from None
    name = f"almenflow_bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_backend_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server processes connected to this database (local server:
    their /proc entries are readable). Sessions that closed in between are not counted."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    name = url.rsplit("/", 1)[1]
    probe = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
    with probe.connect() as conn:
        pids = [r[0] for r in conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n "
                                                "AND pid <> pg_backend_pid()"), {"n": name})]
    probe.dispose()
    return sum(cpu_seconds(p) for p in pids)


# -- counting SQL and state loads ------------------------------------------------------------
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class SqlCounter:
    """Counts what one engine sends to its database: statements (without transaction control),
    transactions begun, commits. Listens on the engine's own SQLAlchemy Engine."""

    def __init__(self, eng: Engine) -> None:
        self.sa = eng.db.engine
        self.statements = 0
        self.begins = 0
        self.commits = 0
        self.texts: list[str] = []

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head in _CONTROL:
            return
        self.statements += 1
        self.texts.append(" ".join(statement.split())[:160])

    def _begin(self, conn: Any) -> None:
        self.begins += 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def __enter__(self) -> SqlCounter:
        event.listen(self.sa, "before_cursor_execute", self._statement)
        event.listen(self.sa, "begin", self._begin)
        event.listen(self.sa, "commit", self._commit)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.sa, "before_cursor_execute", self._statement)
        event.remove(self.sa, "begin", self._begin)
        event.remove(self.sa, "commit", self._commit)

    def take(self) -> tuple[int, int, int]:
        """(statements, transactions, commits) since the last take."""
        out = (self.statements, self.begins, self.commits)
        self.statements = self.begins = self.commits = 0
        self.texts = []
        return out


class LoadCounter:
    """Counts deserialisations of workflow state by wrapping the engine's codec `load` (the one place the
    engine turns stored state back into a SpiffWorkflow workflow). `available` is False when the engine
    has no such method any more; then reads are judged by their SQL alone."""

    def __init__(self, eng: Engine) -> None:
        self.codec = getattr(eng, "codec", None)
        self.available = callable(getattr(self.codec, "load", None))
        self.calls = 0

    def __enter__(self) -> LoadCounter:
        if self.available:
            original: Callable[..., Any] = self.codec.load

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return original(*args, **kwargs)

            self.codec.load = counted
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.available:
            del self.codec.load  # the instance attribute; the class's method shows through again

    def take(self) -> int:
        out, self.calls = self.calls, 0
        return out


# -- case state size -------------------------------------------------------------------------
# Tables that hold what happened (the audit trail, projections kept for history), not what a case
# needs to run its next step.
HISTORY_TABLES = {"audit_events", "comments", "human_tasks", "task_candidates", "task_candidate_users"}


def state_bytes(eng: Engine, instance_id: int) -> int:
    """Bytes a case's stored state takes: every text/JSON/binary value in the instance's row and in the
    rows of tables that reference it (transitively), history tables excepted. Read from the schema, so
    it follows the persistence layer when it changes (per-task rows count as they are stored)."""
    from sqlalchemy import MetaData, Text, func, select

    meta = MetaData()
    meta.reflect(eng.db.engine)
    total = 0
    with eng.db.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"

        def size(column: Any) -> Any:  # bytes as stored; JSON has no length of its own on PostgreSQL
            return func.octet_length(column.cast(Text)) if postgres else func.length(column.cast(Text))

        for table, link in instance_graph(meta):
            sized = [c for c in table.columns if _is_bulky(c.type)]
            if table.name in HISTORY_TABLES or not sized:
                continue
            row = conn.execute(select(*[func.coalesce(func.sum(size(c)), 0) for c in sized])
                               .where(link(instance_id))).one()
            total += sum(int(v or 0) for v in row)
    return total


def _is_bulky(type_: Any) -> bool:
    from sqlalchemy import JSON, LargeBinary, String, Text

    return isinstance(type_, (Text, JSON, LargeBinary)) or (isinstance(type_, String) and (type_.length or 0) > 255)


def instance_graph(meta: Any) -> list[tuple[Any, Callable[[int], Any]]]:
    """(table, where-clause builder for one instance id) for `instances` and every table that references
    it through foreign keys, directly or through another such table."""
    from sqlalchemy import select

    instances = meta.tables["instances"]
    links: dict[str, tuple[Any, Callable[[int], Any]]] = {"instances": (instances, lambda i: instances.c.id == i)}
    changed = True
    while changed:
        changed = False
        for table in meta.sorted_tables:
            if table.name in links:
                continue
            for fk in table.foreign_keys:
                parent = fk.column.table
                if parent.name in links and parent.name != table.name:
                    parent_table, parent_link = links[parent.name]
                    column, target = fk.parent, fk.column

                    def link(i: int, column: Any = column, target: Any = target, parent_table: Any = parent_table,
                             parent_link: Any = parent_link) -> Any:
                        return column.in_(select(target).where(parent_link(i)))

                    links[table.name] = (table, link)
                    changed = True
                    break
    return list(links.values())
