"""Timers: fire due timers and timer start events. `run_due` is what the scheduler calls.

On PostgreSQL due instances are claimed with SELECT ... FOR UPDATE SKIP LOCKED, so any number
of workers can call run_due concurrently and each timer fires exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..bpmn import timer_bounds
from ..execution import fire_due_timers
from ..models import Definition, Instance
from ..timers import next_due as timer_next_due
from ..timers import parse_cycle


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

    def run_due(self, limit: int = 100) -> dict[str, int]:
        """Fire what is due now. Returns counts of fired instances and timer-started instances. Each call
        does a bounded amount of work (at most `limit` instances fired and Limits.max_timer_starts_per_run
        processes started); what is left is due again on the next call."""
        fired = self._fire_instances(limit)
        started = self._start_timer_processes(self._engine.limits.max_timer_starts_per_run)
        return {"fired": fired, "started": started}

    def _fire_instances(self, limit: int) -> int:
        count = 0
        while count < limit:
            with self._engine.uow.write() as uow:
                session = uow.session
                now = self._engine.clock.now()
                inst = self._claim_next(session, select(Instance).where(
                    Instance.status == "active", Instance.next_due_at <= now).order_by(Instance.next_due_at))
                if inst is None:
                    return count
                self._fire(session, inst, now)
                count += 1
        return count

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

    def upcoming(self, within_hours: int = 24) -> list[dict[str, Any]]:
        from datetime import timedelta

        from ..models import Wait

        with self._engine.uow.read() as uow:
            session = uow.session
            now = self._engine.clock.now()
            rows = session.execute(select(Wait, Instance).join(Instance, Wait.instance_id == Instance.id)
                                   .where(Wait.kind == "timer", Wait.due_at <= now + timedelta(hours=within_hours),
                                          Instance.status == "active").order_by(Wait.due_at)).all()
            return [{"instance_id": i.id, "element_id": w.element_id, "name": w.name,
                     "due": w.due_at.isoformat() if w.due_at else None, "business_key": i.business_key}
                    for w, i in rows]
