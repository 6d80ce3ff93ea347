"""Forget the finished part of a case's task tree, so its state is bounded by what is open.

SpiffWorkflow keeps every task a case ever ran: a review loop done 1,000 times leaves 1,000 levels
of completed tasks, which every step deserialises, walks and serialises again (the case's total cost
grew quadratically). What running needs of a finished task is little:

- the root, and the workflow's last completed task (its data is the case's data at the end);
- the parent of every task that is kept: joins look at an arriving task's parent, a task's data is
  stored as a change against its parent, boundary events hang under their split;
- a failed task (ERROR) and everything not finished;
- the arrivals at a join that is still waiting: SpiffWorkflow cancels every arrival but the latest
  and counts the branches that arrived by those cancelled tasks (and their parents);
- a multi-instance instance whose completion its body has not yet settled.

Everything else finished is removed; each kept task is re-linked under its nearest kept ancestor,
in the original order. Finished sub-workflows whose task went are removed with it. The audit trail
and the diagram projection keep the history a person reads.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.task import TaskState

from .bpmn.multi_instance import STATE as MI_STATE

_REMOVABLE = TaskState.COMPLETED | TaskState.CANCELLED


def prune(wf: Any) -> int:
    """Prune the top workflow and every sub-workflow. Returns how many tasks were removed."""
    removed = 0
    for workflow in [wf, *wf.subprocesses.values()]:
        removed += _prune_workflow(workflow)
    # A sub-workflow whose task went is finished (its task was): nothing can reach it any more.
    gone = [task_id for task_id in wf.subprocesses if _owner(wf, task_id) is None]
    for task_id in gone:
        del wf.subprocesses[task_id]
    if gone:
        wf._af_members = None  # engine/bpmn/scopes.py indexes the sub-workflows by scope
    return removed


def _owner(wf: Any, task_id: UUID) -> Any:
    for workflow in [wf, *wf.subprocesses.values()]:
        task = workflow.tasks.get(task_id)
        if task is not None:
            return task
    return None


def _prune_workflow(workflow: Any) -> int:
    tasks: dict[UUID, Any] = workflow.tasks
    root = workflow.task_tree
    keep: set[UUID] = {root.id}
    if workflow.last_task is not None and workflow.last_task.workflow is workflow:
        keep.add(workflow.last_task.id)
    waiting_joins = {t.task_spec for t in tasks.values()
                     if t.state == TaskState.WAITING and isinstance(t.task_spec, UnstructuredJoin)}
    for task in tasks.values():
        if not task.state & _REMOVABLE or task.task_spec in waiting_joins:
            keep.add(task.id)
        else:
            pending = (task.internal_data.get(MI_STATE) or {}).get("pending") or []
            keep.update(UUID(entry[0]) for entry in pending if isinstance(entry, list) and entry)
    if len(keep) == len(tasks):
        return 0
    for task_id in list(keep):
        task = tasks.get(task_id)
        if task is not None and task._parent is not None:
            keep.add(task._parent)
    keep &= tasks.keys()
    if len(keep) == len(tasks):
        return 0
    # Re-link each kept task under its nearest kept ancestor, children in their original order.
    children: dict[UUID, list[UUID]] = {task_id: [] for task_id in keep}
    for task_id in _in_tree_order(root, tasks):
        if task_id not in keep or task_id == root.id:
            continue
        task = tasks[task_id]
        ancestor = task._parent
        while ancestor is not None and ancestor not in keep:
            ancestor = tasks[ancestor]._parent
        task._parent = ancestor
        if ancestor is not None:
            children[ancestor].append(task_id)
    for task_id in keep:
        tasks[task_id]._children = children[task_id]
    removed = [task_id for task_id in tasks if task_id not in keep]
    for task_id in removed:
        del tasks[task_id]
    return len(removed)


def _in_tree_order(root: Any, tasks: dict[UUID, Any]) -> list[UUID]:
    order: list[UUID] = []
    stack = [root.id]
    while stack:
        task_id = stack.pop()
        order.append(task_id)
        task = tasks.get(task_id)
        if task is not None:
            stack.extend(reversed([c for c in task._children if c in tasks]))
    return order
