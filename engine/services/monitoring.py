"""Monitoring queries over the projections (no workflow is loaded): where running instances stand."""

from __future__ import annotations

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from ..models import HumanTask, Instance, Wait

RUNNING = ("active", "incident", "suspended")


def step_counts(session: Session, definition_id: int) -> dict[str, int]:
    """{element id: number of running instances there} for one definition version.

    An instance stands at an element when it has an open human task there, waits there for a timer
    or a message, or has its incident there; one instance counts once per element."""
    running = (Instance.definition_id == definition_id, Instance.status.in_(RUNNING))
    tasks = (select(HumanTask.instance_id.label("instance_id"), HumanTask.element_id.label("element_id"))
             .join(Instance, Instance.id == HumanTask.instance_id)
             .where(HumanTask.status == "open", *running))
    waits = (select(Wait.instance_id.label("instance_id"), Wait.element_id.label("element_id"))
             .join(Instance, Instance.id == Wait.instance_id).where(*running))
    incidents = (select(Instance.id.label("instance_id"), Instance.incident_element_id.label("element_id"))
                 .where(Instance.incident_element_id.is_not(None), *running))
    at = union(tasks, waits, incidents).subquery()  # UNION: one row per (instance, element)
    rows = session.execute(select(at.c.element_id, func.count()).group_by(at.c.element_id)
                           .order_by(at.c.element_id)).all()
    return {element_id: count for element_id, count in rows if element_id}
