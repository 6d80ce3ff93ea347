"""Signal broadcast (Camunda 7 semantics), inside the caller's transaction.

A signal goes to every active instance waiting for it (intermediate catch, boundary and event
sub-process start events, the `waits` rows of kind "signal") and starts every process whose latest
version has that signal as its start event. Nobody receiving it is not an error; it is audited.
A signal whose receivers throw signals again is followed to at most Limits.max_signal_depth levels:
deeper, the instance that threw it gets an incident (a loop of signals cannot run the server down).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn import BpmnEvent
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..bpmn.event_definitions import AlmenSignalEventDefinition
from ..errors import EngineError
from ..execution import advance
from ..models import Definition, Instance, Wait
from ..parsing import public_id

if TYPE_CHECKING:
    from .runtime import RuntimeService

_local = threading.local()


class SignalDepthError(EngineError):
    """Signals triggered signals deeper than the engine follows."""


def _depth() -> int:
    return getattr(_local, "depth", 0)


def broadcast(runtime: RuntimeService, session: Session, name: str, data: dict[str, Any], user: str | None,
              sender: Instance | None = None) -> dict[str, list[int]]:
    """Deliver signal `name` with variables `data`; returns {"instances": received, "started": started}."""
    limit = runtime.limits.max_signal_depth
    if _depth() >= limit:
        raise SignalDepthError(f"signal '{name}' was thrown by a signal {limit} levels deep; signals that "
                               "trigger each other are not followed further")
    _local.depth = _depth() + 1
    try:
        received = _deliver(runtime, session, name, data, user, sender)
        started = _start(runtime, session, name, data, user, sender)
    finally:
        _local.depth -= 1
    details = {"signal": name, "data": data, "to_instances": received, "started_instances": started}
    runtime.projector.audit(session, sender, "signal_sent", user=user, details=details)
    return {"instances": received, "started": started}


def _deliver(runtime: RuntimeService, session: Session, name: str, data: dict[str, Any], user: str | None,
             sender: Instance | None) -> list[int]:
    # IN (subquery), not JOIN + DISTINCT: PostgreSQL cannot compare the json columns DISTINCT needs.
    waiting_ids = select(Wait.instance_id).where(Wait.kind == "signal", Wait.name == name)
    query = select(Instance).where(Instance.id.in_(waiting_ids), Instance.status == "active")
    if sender is not None and sender.id is not None:
        query = query.where(Instance.id != sender.id)  # the sender's own catchers caught it when it was thrown
    received = []
    for target in session.scalars(query.order_by(Instance.id)).all():
        inst = runtime.instance(session, target.id, lock=True)  # as every writer of a case does
        if inst.status != "active":
            continue  # changed meanwhile (or by an earlier delivery of this same signal)
        wf = runtime.load(session, inst)
        catchers = [t for t in wf.event_manager.tasks.values()
                    if isinstance(t.task_spec.event_definition, AlmenSignalEventDefinition)
                    and t.task_spec.event_definition.name == name]
        if not catchers:
            continue
        wf.catch(BpmnEvent(catchers[0].task_spec.event_definition, payload=data))
        runtime.projector.audit(session, inst, "signal_received", user=user,
                               element_id=public_id(catchers[0].task_spec.bpmn_id),
                               details={"signal": name, "data": data,
                                        "from_instance": sender.id if sender is not None else None})
        runtime.projector.persist(session, inst, wf, user=user, step=advance(wf))
        received.append(inst.id)
    return received


def _start(runtime: RuntimeService, session: Session, name: str, data: dict[str, Any], user: str | None,
           sender: Instance | None) -> list[int]:
    # Only the newest version of a process is subscribed to its start signal.
    newest = (select(Definition.key, func.max(Definition.version).label("version"))
              .group_by(Definition.key).subquery())
    definitions = session.scalars(
        select(Definition).join(newest, (newest.c.key == Definition.key) & (newest.c.version == Definition.version))
        .where(Definition.start_signal == name).order_by(Definition.key)).all()
    started = []
    for definition in definitions:
        start_data = {definition.start_variable: data} if definition.start_variable else data
        inst = runtime.start_in(session, definition, None, start_data, user,
                                       parent_id=sender.id if sender is not None else None)
        runtime.projector.audit(session, inst, "signal_received", user=user,
                               details={"signal": name, "data": data,
                                        "from_instance": sender.id if sender is not None else None})
        started.append(inst.id)
    return started
