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
from typing import Any

from sqlalchemy import literal_column, select
from sqlalchemy.orm import Session

from ..bpmn import timer_bounds
from ..execution import fire_due_timers
from ..models import Definition, Instance
from ..timers import next_due as timer_next_due
from ..timers import parse_cycle

# Ids claimed per query, and instances fired per run_due call (the worker calls again at once when
# more are due): what a worker holds in memory is one batch of ids, however many timers wait.
CLAIM_BATCH = 100
DEFAULT_RUN_LIMIT = 10_000


class SchedulerService:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def first_start(self, expression: str) -> datetime | None:
        """When a timer start event first fires, from now. Raises ValueError (with the reason) for a value
        that is invalid or outside the timer bounds; deploy turns that into a refusal."""
        return self._next_start(self._start_value(expression), None)

    def _start_value(self, expression: str) -> str:
        value = timer_bounds.literal(expression)  # the usual case: an ISO literal, nothing to evaluate
        if value is None:
            value = str(self._engine.script_engine.environment.evaluate(expression, {}))
        timer_bounds.any_due(value, self._engine.clock.now(), self._engine.limits)  # bounds, or ValueError
        return value

    def _next_start(self, value: str, after: datetime | None, anchor: datetime | None = None) -> datetime | None:
        """The first start after `after` (and after now: missed starts are skipped, not caught up).
        A cycle counts from `anchor` (the deployment), so R3/PT1H starts three times in all."""
        now = self._engine.clock.now()
        if value.upper().startswith("R"):
            cycles, start, duration = parse_cycle(value, anchor or now, self._engine.limits)
            if after is None:
                return start
            if duration <= timedelta(0):
                return None
            floor = max(after, now)
            index = 0 if start > floor else (floor - start) // duration + 1
            if cycles != -1 and index >= cycles:
                return None
            return start + index * duration
        if after is not None:
            return None  # a date or duration start fires once
        return timer_next_due(value, now, self._engine.limits)

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
        started = self._start_timer_processes(self._engine.limits.max_timer_starts_per_run)
        return {"fired": fired, "started": started}

    def next_due(self) -> datetime | None:
        """When the next timer of a running case or the next timer start is due (None: nothing waits).
        Two index look-ups (the smallest next_due_at, the smallest next_start_at)."""
        with self._engine.uow.read() as uow:
            session = uow.session
            instance_due = session.scalar(select(Instance.next_due_at).where(
                Instance.status == literal_column("'active'"), Instance.next_due_at.is_not(None))
                .order_by(Instance.next_due_at).limit(1))
            start_due = session.scalar(select(Definition.next_start_at).where(Definition.next_start_at.is_not(None))
                                       .order_by(Definition.next_start_at).limit(1))
        return min((d for d in (instance_due, start_due) if d is not None), default=None)

    def _claim_batch(self, size: int) -> list[int]:
        """Ids of up to `size` due instances, earliest due first, none that another worker holds now."""
        with self._engine.uow.read() as uow:
            session = uow.session
            q = (select(Instance.id).where(Instance.status == literal_column("'active'"),
                                           Instance.next_due_at <= self._engine.clock.now())
                 .order_by(Instance.next_due_at).limit(size))
            if self._engine.db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            return list(session.scalars(q))

    def _fire_one(self, instance_id: int) -> int:
        """Fire one claimed instance in its own transaction: 1 if it fired, 0 if it was not due any more
        (another worker fired it) or is being fired by another worker right now."""
        with self._engine.uow.write() as uow:
            session = uow.session
            now = self._engine.clock.now()
            q = select(Instance).where(Instance.id == instance_id, Instance.status == "active",
                                       Instance.next_due_at <= now)
            if self._engine.db.is_postgres:
                q = q.with_for_update(skip_locked=True).execution_options(populate_existing=True)
            inst = session.scalar(q)
            if inst is None:
                return 0
            self._fire(session, inst, now)
            return 1

    def _claim_next(self, session: Session, query: Any) -> Any:
        """The first due row, locked for this worker; rows other workers hold are skipped (PostgreSQL)."""
        query = query.limit(1)
        if self._engine.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        return session.scalar(query)

    def _fire(self, session: Session, inst: Instance, now: datetime) -> None:
        before = inst.state_json
        wf = self._engine.runtime.load(session, inst)
        step = fire_due_timers(wf, now)
        self._engine.projector.persist(session, inst, wf, user=None, step=step)
        if inst.next_due_at is not None and inst.next_due_at <= now and inst.state_json == before:
            inst.next_due_at = None  # a timer that cannot fire must not be picked up in a loop

    def _start_timer_processes(self, limit: int) -> int:
        started = 0
        while started < limit:
            with self._engine.uow.write() as uow:
                session = uow.session
                now = self._engine.clock.now()
                definition = self._claim_next(session, select(Definition).where(
                    Definition.next_start_at <= now).order_by(Definition.next_start_at))
                if definition is None:
                    return started
                due = definition.next_start_at
                try:
                    value = self._start_value(definition.start_timer)
                    definition.next_start_at = self._next_start(value, due, definition.deployed_at)
                except Exception as exc:  # no instance to carry an incident: stop the timer, say why
                    definition.next_start_at = None
                    self._engine.projector.audit(session, None, "incident", user=None, details={
                        "definition": definition.key, "version": definition.version,
                        "message": "the timer start event stopped: "
                                   + (exc.describe() if hasattr(exc, "describe") else f"{exc.__class__.__name__}: {exc}")})
                    continue
                if definition.next_start_at is not None and definition.next_start_at <= due:
                    definition.next_start_at = None  # a schedule that does not advance must not start again
                inst = self._engine.runtime.start_in(session, definition, None, {}, user=None)
                self._engine.projector.audit(session, inst, "timer_fired", user=None,
                                             details={"start_timer": definition.start_timer})
                started += 1
        return started

    def upcoming(self, within_hours: int = 24, limit: int = 50) -> list[dict[str, Any]]:
        """The first `limit` timers due within the next hours, soonest first (an index range on
        waits.due_at; the dashboard shows a page of them, not every one)."""
        from ..models import Wait

        with self._engine.uow.read() as uow:
            session = uow.session
            now = self._engine.clock.now()
            rows = session.execute(select(Wait, Instance.id, Instance.business_key)
                                   .join(Instance, Wait.instance_id == Instance.id)
                                   .where(Wait.kind == "timer", Wait.due_at <= now + timedelta(hours=within_hours),
                                          Instance.status == literal_column("'active'"))
                                   .order_by(Wait.due_at).limit(limit)).all()
            return [{"instance_id": instance_id, "element_id": w.element_id, "name": w.name,
                     "due": w.due_at.isoformat() if w.due_at else None, "business_key": business_key}
                    for w, instance_id, business_key in rows]
