"""Timers: fire due timers and timer start events. `run_due` is what the worker calls.

Due instances are claimed in batches: one query reads the ids of up to CLAIM_BATCH due instances (on
PostgreSQL `FOR UPDATE SKIP LOCKED`, so it passes over rows another worker is firing right now), then
each is fired in its own transaction, which locks the row (SKIP LOCKED again) and checks that it is
still due: a row another worker fired in the meantime is not due any more and is skipped. So any
number of workers can call run_due concurrently, each timer fires exactly once, and a worker holds
only one batch of ids in memory however many timers wait. `next_due()` tells the worker when to
wake up next (engine/worker.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import literal_column, select
from sqlalchemy.orm import Session

from ..execution import fire_due_timers
from ..models import Definition, Instance

if TYPE_CHECKING:
    from ..clock import Clock
    from ..db import Database
    from ..limits import Limits
    from ..projection import Projector
    from ..scripting import RestrictedScriptEngine
    from ..timer_starts import TimerStartSchedule
    from ..uow import UnitOfWorkFactory
    from .runtime import RuntimeService

# Ids claimed per query, and instances fired per run_due call (the worker calls again at once when
# more are due): what a worker holds in memory is one batch of ids, however many timers wait.
CLAIM_BATCH = 100
DEFAULT_RUN_LIMIT = 10_000


class SchedulerService:
    def __init__(self, uow: UnitOfWorkFactory,
                 clock: Clock,
                 limits: Limits,
                 db: Database,
                 projector: Projector,
                 script_engine: RestrictedScriptEngine,
                 runtime: RuntimeService,
                 timer_starts: TimerStartSchedule) -> None:
        self._uow = uow
        self._clock = clock
        self._limits = limits
        self._db = db
        self._projector = projector
        self._script_engine = script_engine
        self._runtime = runtime
        self._timer_starts = timer_starts

    def run_due(self, limit: int = DEFAULT_RUN_LIMIT, batch: int = CLAIM_BATCH) -> dict[str, int]:
        """Fire what is due now, batch after batch, until nothing is due or `limit` instances were fired.
        Returns counts of fired instances and timer-started instances. Each call does a bounded amount
        of work (also at most Limits.max_timer_starts_per_run processes started); what is left is due
        again on the next call, which the worker makes at once (next_due() is then in the past)."""
        fired = 0
        while fired < limit:
            ids = self._claim_batch(min(batch, limit - fired))
            if not ids:
                break
            fired += sum(self._fire_one(instance_id) for instance_id in ids)
        started = self._start_timer_processes(self._limits.max_timer_starts_per_run)
        return {"fired": fired, "started": started}

    def next_due(self) -> datetime | None:
        """When the next timer of a running case or the next timer start is due (None: nothing waits).
        Two index look-ups (the smallest next_due_at, the smallest next_start_at)."""
        with self._uow.read() as uow:
            session = uow.session
            instance_due = session.scalar(select(Instance.next_due_at).where(
                Instance.status == literal_column("'active'"), Instance.next_due_at.is_not(None))
                .order_by(Instance.next_due_at).limit(1))
            start_due = session.scalar(select(Definition.next_start_at).where(Definition.next_start_at.is_not(None))
                                       .order_by(Definition.next_start_at).limit(1))
        return min((d for d in (instance_due, start_due) if d is not None), default=None)

    def _claim_batch(self, size: int) -> list[int]:
        """Ids of up to `size` due instances, earliest due first, none that another worker holds now."""
        with self._uow.read() as uow:
            session = uow.session
            q = (select(Instance.id).where(Instance.status == literal_column("'active'"),
                                           Instance.next_due_at <= self._clock.now())
                 .order_by(Instance.next_due_at).limit(size))
            if self._db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            return list(session.scalars(q))

    def _fire_one(self, instance_id: int) -> int:
        """Fire one claimed instance in its own transaction: 1 if it fired, 0 if it was not due any more
        (another worker fired it) or is being fired by another worker right now."""
        with self._uow.write() as uow:
            session = uow.session
            now = self._clock.now()
            q = select(Instance).where(Instance.id == instance_id, Instance.status == "active",
                                       Instance.next_due_at <= now)
            if self._db.is_postgres:
                q = q.with_for_update(skip_locked=True).execution_options(populate_existing=True)
            inst = session.scalar(q)
            if inst is None:
                return 0
            self._fire(session, inst, now)
            return 1

    def _claim_next(self, session: Session, query: Any) -> Any:
        """The first due row, locked for this worker; rows other workers hold are skipped (PostgreSQL)."""
        query = query.limit(1)
        if self._db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        return session.scalar(query)

    def _fire(self, session: Session, inst: Instance, now: datetime) -> None:
        before = inst.state_json
        wf = self._runtime.load(session, inst)
        step = fire_due_timers(wf, now)
        self._projector.persist(session, inst, wf, user=None, step=step)
        if inst.next_due_at is not None and inst.next_due_at <= now and inst.state_json == before:
            inst.next_due_at = None  # a timer that cannot fire must not be picked up in a loop

    def _start_timer_processes(self, limit: int) -> int:
        started = 0
        while started < limit:
            with self._uow.write() as uow:
                session = uow.session
                now = self._clock.now()
                definition = self._claim_next(session, select(Definition).where(
                    Definition.next_start_at <= now).order_by(Definition.next_start_at))
                if definition is None:
                    return started
                due = definition.next_start_at
                try:
                    value = self._timer_starts.value(definition.start_timer)
                    definition.next_start_at = self._timer_starts.next_start(value, due, definition.deployed_at)
                except Exception as exc:  # no instance to carry an incident: stop the timer, say why
                    definition.next_start_at = None
                    self._projector.audit(session, None, "incident", user=None, details={
                        "definition": definition.key, "version": definition.version,
                        "message": "the timer start event stopped: "
                                   + (exc.describe() if hasattr(exc, "describe") else f"{exc.__class__.__name__}: {exc}")})
                    continue
                if definition.next_start_at is not None and definition.next_start_at <= due:
                    definition.next_start_at = None  # a schedule that does not advance must not start again
                inst = self._runtime.start_in(session, definition, None, {}, user=None)
                self._projector.audit(session, inst, "timer_fired", user=None,
                                             details={"start_timer": definition.start_timer})
                started += 1
        return started

    def upcoming(self, within_hours: int = 24, limit: int = 50) -> list[dict[str, Any]]:
        """The first `limit` timers due within the next hours, soonest first (an index range on
        waits.due_at; the dashboard shows a page of them, not every one)."""
        from ..models import Wait

        with self._uow.read() as uow:
            session = uow.session
            now = self._clock.now()
            rows = session.execute(select(Wait, Instance.id, Instance.business_key)
                                   .join(Instance, Wait.instance_id == Instance.id)
                                   .where(Wait.kind == "timer", Wait.due_at <= now + timedelta(hours=within_hours),
                                          Instance.status == literal_column("'active'"))
                                   .order_by(Wait.due_at).limit(limit)).all()
            return [{"instance_id": instance_id, "element_id": w.element_id, "name": w.name,
                     "due": w.due_at.isoformat() if w.due_at else None, "business_key": business_key}
                    for w, instance_id, business_key in rows]
