"""Runtime: start instances, correlate messages, read them, and operate on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from marshmallow import ValidationError
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, load_only

from ..bpmn.event_definitions import AlmenSignalEventDefinition
from ..calls import CallResolver
from ..errors import (
    FormValidationError,
    InvalidInputError,
    InvalidStateError,
    MessageCorrelationError,
    NotFoundError,
    StateNotStorable,
)
from ..execution import StepResult, advance, element_states, every_task
from ..forms import validate_form
from ..limits import DEFAULT_LIMITS, Limits
from ..models import AuditEvent, Definition, HumanTask, Instance, Wait
from ..parsing import AlmenMessageEventDefinition, public_id
from ..queries import instances as instance_queries
from ..sandbox.values import DataError, check_variables
from ..timers import clear_failures
from ..uow import UnitOfWork
from ..views import AuditView, InstanceView, TaskView, WaitView, _iso, instance_summary, instance_view
from . import monitoring, signals

if TYPE_CHECKING:
    from ..clock import Clock
    from ..db import Database
    from ..limits import Limits
    from ..projection import Projector
    from ..scripting import RestrictedScriptEngine
    from ..serialization import WorkflowCodec
    from ..uow import UnitOfWorkFactory
    from .definitions import DefinitionService

T = TypeVar("T")
STATUSES = instance_queries.STATUSES

def check_data(data: Any, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Variables given by a caller (form, API, CLI, message): names that scripts can use, values that
    are JSON within the size bounds. Refused as a whole otherwise, so nothing half-applied is stored."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError("data must be a JSON object")
    for key in data:
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise InvalidInputError(f"'{key}' is not a valid variable name")
    try:
        check_variables(data, limits.max_variable_bytes, limits.max_instance_bytes, limits.max_data_depth)
    except DataError as exc:
        raise InvalidInputError(f"data refused: {exc}") from None
    return data


@dataclass
class InstancePage:
    """One page of the case list: `total` counts at most paging.COUNT_CAP (a larger value means "more
    than that"); `next`/`previous` are cursors for the neighbouring pages (None: there is none)."""

    items: list[dict[str, Any]]
    total: int
    next: str | None = None
    previous: str | None = None


class RuntimeService:
    def __init__(self, uow: UnitOfWorkFactory,
                 clock: Clock,
                 limits: Limits,
                 db: Database,
                 codec: WorkflowCodec,
                 script_engine: RestrictedScriptEngine,
                 projector: Projector,
                 definitions: DefinitionService) -> None:
        self._uow = uow
        self._clock = clock
        self._limits = limits
        self._db = db
        self._codec = codec
        self._script_engine = script_engine
        self._projector = projector
        self._definitions = definitions

    @property
    def projector(self) -> Projector:
        return self._projector

    @property
    def limits(self) -> Limits:
        return self._limits

    # -- shared plumbing used by the other services too -----------------------------------
    def load(self, session: Session, inst: Instance) -> BpmnWorkflow:
        """The case's workflow: the one its last step in this process left (WorkflowCache), or its
        stored state restored against the definition's shared spec objects."""
        codec = self._codec
        resolver = CallResolver(session, codec, lambda: inst.definition)
        wf = codec.workflows.take(inst.id, inst.version) if inst.id is not None else None
        if wf is not None:
            wf.script_engine = self._script_engine
            wf.call_resolver = resolver
            return wf

        def spec_json() -> str:  # read only when the definition's spec objects are not cached
            found = session.scalar(select(Definition.spec_json).where(Definition.id == inst.definition_id))
            if found is None:
                raise NotFoundError(f"no definition {inst.definition_id} (of instance {inst.id})")
            return found

        return codec.load(inst.state_json, inst.definition_id, spec_json, self._script_engine, resolver=resolver)

    def instance(self, session: Session, instance_id: int, *, lock: bool = False) -> Instance:
        q = select(Instance).where(Instance.id == instance_id)
        if lock and self._db.is_postgres:
            # Waits for the row and reads what the previous holder committed (SQLite's write
            # transactions are serialised at BEGIN IMMEDIATE instead).
            q = q.with_for_update().execution_options(populate_existing=True)
        inst = session.scalar(q)
        if inst is None:
            raise NotFoundError(f"no instance {instance_id}")
        return inst

    def retrying(self, fn: Callable[[Session], T]) -> T:
        """Run `fn(session)` as one unit of work, repeated on conflicts (UnitOfWorkFactory.run). A step
        whose state cannot be stored is rolled back and the case gets an incident instead."""
        try:
            return self._uow.run(lambda uow: fn(uow.session))
        except StateNotStorable as exc:
            if exc.instance_id is not None:
                self._record_incident(exc.instance_id, exc.message)
            raise

    def _record_incident(self, instance_id: int, message: str) -> None:
        """Put a case in incident after its step was rolled back (the step's own state is lost)."""
        with self._uow.write() as uow:
            session = uow.session
            inst = self.instance(session, instance_id, lock=True)
            if inst.status in ("completed", "terminated"):
                return
            inst.status = "incident"
            inst.incident_message = message[:4000]
            inst.incident_element_id = None
            inst.incident_at = self._clock.now()
            self._projector.audit(session, inst, "incident", user=None, details={"message": message})

    # -- start ------------------------------------------------------------------------------
    def start(self, key: str, business_key: str | None = None, data: dict[str, Any] | None = None,
              user: str | None = None, version: int | None = None) -> InstanceView:
        data = check_data(data, self._limits)
        with self._uow.write() as uow:
            session = uow.session
            definition = self._definitions.find(session, key, version)
            inst = self.start_in(session, definition, business_key, data, user)
            history = self._history(uow, inst)
        return self._started_view(uow, inst, definition, history)

    def start_with_form(self, key: str, data: dict[str, Any] | None, user: str | None,
                        business_key: str | None = None, locale: str = "da") -> InstanceView:
        """Start from a submitted start form: the data is validated against the start event's
        camunda:formData first (field-level errors, nothing started)."""
        data = check_data(data, self._limits)
        with self._uow.write() as uow:
            session = uow.session
            definition = self._definitions.find(session, key)
            try:
                cleaned = validate_form(list(definition.start_form or []), data, locale)
            except ValidationError as exc:
                raise FormValidationError(exc.normalized_messages()) from None
            inst = self.start_in(session, definition, business_key, cleaned, user)
            history = self._history(uow, inst)
        return self._started_view(uow, inst, definition, history)

    @staticmethod
    def _history(uow: UnitOfWork, inst: Instance) -> list[AuditView]:
        uow.flush()
        return [AuditView.of(e) for e in uow.session.scalars(
            select(AuditEvent).where(AuditEvent.instance_id == inst.id).order_by(AuditEvent.id))]

    @staticmethod
    def _started_view(uow: UnitOfWork, inst: Instance, definition: Definition,
                      history: list[AuditView]) -> InstanceView:
        """The view of a case started in `uow` (committed), from what the unit wrote: everything the
        case has is from that unit, so only its audit trail is read back."""
        tasks = [TaskView.of(SimpleNamespace(**row), inst, definition) for row in uow.written_tasks
                 if row["instance_id"] == inst.id]
        waits = [WaitView(w["kind"], w["element_id"], w["name"], _iso(w["due_at"]))
                 for w in uow.written_waits.get(inst.id, [])]
        return instance_view(inst, definition, tasks, history, waits)

    def start_in(self, session: Session, definition: Definition, business_key: str | None,
                 data: dict[str, Any], user: str | None, parent_id: int | None = None) -> Instance:
        wf = self._codec.new_workflow(lambda: definition.spec_json, self._script_engine,
                                             resolver=CallResolver(session, self._codec, definition),
                                             definition_id=definition.id)
        start_task = wf.get_tasks(state=TaskState.READY)[0] if wf.get_tasks(state=TaskState.READY) else None
        if start_task is not None and data:
            start_task.set_data(**data)
        now = self._clock.now()
        # Inserted by persist with its state, in one statement; the audit events get its id then.
        inst = Instance(definition=definition, business_key=business_key, status="active", state_json="{}",
                        variables={}, started_at=now, started_by=user, parent_instance_id=parent_id,
                        open_tasks={})
        session.add(inst)
        self._projector.audit(session, inst, "started", user=user,
                                     details={"data": data, "version": definition.version})
        step = advance(wf)
        self._projector.persist(session, inst, wf, user=user, step=step)
        return inst

    # -- messages ---------------------------------------------------------------------------
    def correlate(self, name: str, business_key: str | None = None, data: dict[str, Any] | None = None,
                  user: str | None = None, all_instances: bool = False) -> list[int]:
        """Deliver message `name` to the instance(s) waiting for it (filtered by business key), or
        start the process whose start event is that message. Nothing waiting is an error."""
        data = check_data(data, self._limits)
        return self.retrying(lambda session: self.deliver(session, name, business_key, data, user, all_instances))

    def deliver(self, session: Session, name: str, business_key: str | None, data: dict[str, Any],
                user: str | None, all_instances: bool = False, sender_id: int | None = None) -> list[int]:
        """correlate() inside the caller's transaction (also used for messages thrown by instances)."""
        # IN (subquery), not JOIN + DISTINCT: PostgreSQL cannot compare the json columns DISTINCT needs.
        waiting_ids = select(Wait.instance_id).where(Wait.kind == "message", Wait.name == name)
        q = select(Instance).where(Instance.id.in_(waiting_ids), Instance.status == "active")
        if business_key is not None:
            q = q.where(Instance.business_key == business_key)
        if sender_id is not None:
            q = q.where(Instance.id != sender_id)
        targets = list(session.scalars(q.order_by(Instance.id)))
        if not targets:
            starter = session.scalar(select(Definition).where(Definition.start_message == name)
                                     .order_by(Definition.version.desc()).limit(1))
            if starter is not None:
                start_data = {starter.start_variable: data} if starter.start_variable else data
                inst = self.start_in(session, starter, business_key, start_data, user, parent_id=sender_id)
                self._projector.audit(session, inst, "message_received", user=user,
                                             details={"message": name, "data": data, "from_instance": sender_id})
                return [inst.id]
            where = f" with business key '{business_key}'" if business_key else ""
            raise MessageCorrelationError(f"no instance{where} is waiting for message '{name}'")
        if len(targets) > 1 and not all_instances:
            raise MessageCorrelationError(
                f"{len(targets)} instances wait for message '{name}'; give a business key or correlate all")
        delivered = []
        for target in targets:
            inst = self.instance(session, target.id, lock=True)
            if inst.status != "active":
                continue
            wf = self.load(session, inst)
            waiting = [t for t in wf.event_manager.tasks.values()
                       if isinstance(t.task_spec.event_definition, AlmenMessageEventDefinition)
                       and t.task_spec.event_definition.name == name]
            if not waiting:
                continue
            definition = waiting[0].task_spec.event_definition
            wf.catch(BpmnEvent(definition, payload={"payload": data, "result_var": None}))
            self._projector.audit(session, inst, "message_received", user=user,
                                         element_id=public_id(waiting[0].task_spec.bpmn_id),
                                         details={"message": name, "data": data, "from_instance": sender_id})
            step = advance(wf)
            self._projector.persist(session, inst, wf, user=user, step=step)
            delivered.append(inst.id)
        if not delivered:
            raise MessageCorrelationError(f"no instance is waiting for message '{name}'")
        return delivered

    # -- signals ----------------------------------------------------------------------------
    def signal(self, name: str, data: dict[str, Any] | None = None, user: str | None = None) -> dict[str, list[int]]:
        """Broadcast signal `name` (Camunda semantics): every active instance waiting for it receives it and
        every process whose start event it is starts. Nobody receiving it is not an error."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError("a signal needs a name")
        data = check_data(data)
        return self.retrying(lambda session: signals.broadcast(self, session, name.strip(), data, user))

    def dispatch_thrown(self, session: Session, sender: Instance, events: list[Any], user: str | None) -> None:
        """Messages an instance threw that nothing inside it caught go to other instances: one waiting
        for the message with the sender's business key, or a process whose start event is that message.
        With no receiver the sender gets an incident; the message is not silently dropped. Signals go
        to every other instance waiting for them (services/signals.py)."""
        for event in events:
            definition = event.event_definition
            if isinstance(definition, AlmenSignalEventDefinition):
                self._dispatch_signal(session, sender, definition.name, event.payload, user)
                continue
            if not isinstance(definition, MessageEventDefinition):
                continue
            payload = event.payload.get("payload") if isinstance(event.payload, dict) else event.payload
            data = payload if isinstance(payload, dict) else ({"besked": payload} if payload is not None else {})
            try:
                receivers = self.deliver(session, definition.name, sender.business_key, check_data(data, self._limits), user,
                                         all_instances=True, sender_id=sender.id)
            except (MessageCorrelationError, InvalidInputError) as exc:
                sender.status = "incident"
                sender.incident_message = f"message '{definition.name}' was sent but not received: {exc.message}"
                sender.incident_at = self._clock.now()
                self._projector.audit(session, sender, "incident", user=user,
                                             details={"message": sender.incident_message})
                continue
            self._projector.audit(session, sender, "message_sent", user=user,
                                         details={"message": definition.name, "to_instances": receivers})

    def _dispatch_signal(self, session: Session, sender: Instance, name: str, payload: Any, user: str | None) -> None:
        data = payload if isinstance(payload, dict) else ({"signal": payload} if payload is not None else {})
        try:
            signals.broadcast(self, session, name, check_data(data), user, sender=sender)
        except (signals.SignalDepthError, InvalidInputError) as exc:
            sender.status = "incident"
            sender.incident_message = f"signal '{name}' was thrown but not delivered: {exc.message}"
            sender.incident_at = self._clock.now()
            self._projector.audit(session, sender, "incident", user=user,
                                         details={"message": sender.incident_message})

    # -- reading ----------------------------------------------------------------------------
    def get(self, instance_id: int, *, history: bool = True) -> InstanceView:
        with self._uow.read() as uow:
            session = uow.session
            inst = self.instance(session, instance_id)
            tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id,
                                                            HumanTask.status == "open")
                                    .order_by(HumanTask.id)).all()
            events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == inst.id)
                                     .order_by(AuditEvent.id)).all() if history else []
            waits = session.scalars(select(Wait).where(Wait.instance_id == inst.id)).all()
            elements = None
            if inst.completed_elements is None or inst.active_elements is None:  # saved before the projection
                elements = element_states(self.load(session, inst))
            header = self._definitions.header(session, inst.definition_id)
            return instance_view(inst, header, [TaskView.of(t, inst, header) for t in tasks],
                                 [AuditView.of(e) for e in events],
                                 [WaitView(w.kind, w.element_id, w.name, _iso(w.due_at)) for w in waits], elements)

    def step_counts(self, key: str, version: int | None = None) -> dict[str, int]:
        """{element id: running instances there} for a definition version (the latest by default): open
        human tasks, timer/message waits and incidents of active, incident and suspended instances."""
        with self._uow.read() as uow:
            session = uow.session
            return monitoring.step_counts(session, self._definitions.find(session, key, version).id)

    def list(self, status: str | None = None, key: str | None = None, business_key: str | None = None,
             version: int | None = None, started_from: datetime | None = None,
             started_to: datetime | None = None, forum: str | None = None,
             started_by: str | None = None,
             limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """(one page of cases newest first, how many match: at most paging.COUNT_CAP + 1)."""
        result = self.page(status=status, key=key, business_key=business_key, version=version,
                           started_from=started_from, started_to=started_to, forum=forum, started_by=started_by,
                           limit=limit, offset=offset)
        return result.items, result.total

    def page(self, *, limit: int = 50, after: str | None = None, before: str | None = None, offset: int = 0,
             **filters: Any) -> InstancePage:
        """One page of list() and the cursors of the pages around it (engine/queries/instances.py:
        every page costs one index walk of `limit` ids, however deep)."""
        if limit < 1:
            raise InvalidInputError("limit must be positive")
        with self._uow.read() as uow:
            session = uow.session
            f = instance_queries.InstanceFilter(session, **filters)
            if f.empty:
                return InstancePage([], 0)
            total = f.count(session)
            ids = instance_queries.page(session, f, limit, after=after, before=before, offset=offset)
            rows = {r.id: r for r in session.scalars(
                select(Instance).where(Instance.id.in_(ids.items))
                .options(load_only(Instance.id, Instance.status, Instance.business_key, Instance.started_at,
                                   Instance.started_by, Instance.ended_at, Instance.next_due_at,
                                   Instance.incident_message, Instance.definition_id, Instance.version),
                         joinedload(Instance.definition).load_only(Definition.key, Definition.version,
                                                                   Definition.name)))}
            return InstancePage([instance_summary(rows[i]) for i in ids.items if i in rows], total,
                                ids.next, ids.previous)

    # -- operations -------------------------------------------------------------------------
    def suspend(self, instance_id: int, user: str | None = None) -> InstanceView:
        return self._transition(instance_id, user, "suspended", allowed=("active", "incident"))

    def resume(self, instance_id: int, user: str | None = None) -> InstanceView:
        def after(session: Session, inst: Instance) -> None:
            inst.status = "incident" if inst.incident_message else "active"
        return self._transition(instance_id, user, "resumed", allowed=("suspended",), after=after)

    def terminate(self, instance_id: int, user: str | None = None, reason: str | None = None) -> InstanceView:
        if not reason or not reason.strip():
            raise InvalidInputError("a reason is required to terminate an instance")

        def after(session: Session, inst: Instance) -> None:
            inst.status = "terminated"
            inst.ended_at = self._clock.now()
            inst.next_due_at = None
            for row in session.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id,
                                                               HumanTask.status == "open")):
                row.status = "cancelled"
                row.completed_at = inst.ended_at
            for w in session.scalars(select(Wait).where(Wait.instance_id == inst.id)):
                session.delete(w)
        return self._transition(instance_id, user, "terminated", allowed=("active", "suspended", "incident"),
                                after=after, details={"reason": reason.strip()})

    def _transition(self, instance_id: int, user: str | None, event: str, allowed: tuple[str, ...],
                    after: Callable[[Session, Instance], None] | None = None,
                    details: dict[str, Any] | None = None) -> InstanceView:
        def work(session: Session) -> None:
            inst = self.instance(session, instance_id, lock=True)
            if inst.status not in allowed:
                raise InvalidStateError(f"instance {instance_id} is {inst.status}; cannot {event.rstrip('ed')}")
            if after is None:
                inst.status = event
            else:
                after(session, inst)
            self._projector.audit(session, inst, event, user=user, details=details)
        self.retrying(work)
        return self.get(instance_id)

    def retry(self, instance_id: int, user: str | None = None, data: dict[str, Any] | None = None) -> InstanceView:
        """Run the failed step again, optionally after correcting variables."""
        data = check_data(data, self._limits)

        def work(session: Session) -> None:
            inst = self.instance(session, instance_id, lock=True)
            if inst.status != "incident":
                raise InvalidStateError(f"instance {instance_id} has no incident to retry (it is {inst.status})")
            wf = self.load(session, inst)
            timers = clear_failures(wf, data)  # a failed timer evaluates again
            failed = every_task(wf, TaskState.ERROR)
            for task in failed:
                if data:
                    task.data.update(data)
                task._set_state(TaskState.READY)
            if data and not failed and not timers:
                for task in wf.get_tasks(state=TaskState.READY):
                    task.data.update(data)
            self._projector.audit(session, inst, "retried", user=user,
                                         element_id=inst.incident_element_id,
                                         details={"data": data, "previous_incident": inst.incident_message})
            inst.status = "active"
            inst.incident_message = inst.incident_element_id = None
            inst.incident_at = None
            step: StepResult = advance(wf)
            self._projector.persist(session, inst, wf, user=user, step=step)
        self.retrying(work)
        return self.get(instance_id)
