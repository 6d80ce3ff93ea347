"""API: human tasks (inbox query, read, claim, unclaim, complete)."""

from __future__ import annotations

from typing import Any

from ..access import engine, may_view_instance, may_view_task
from .auth import locale, username
from .paging import page_fields
from .problems import ApiProblem
from .registry import operation
from .schemas import CompleteRequestSchema, CompleteResultSchema, TaskPageSchema, TaskQuerySchema, TaskSchema


@operation("/tasks", "GET", tag="tasks", summary="Query tasks", query=TaskQuerySchema, response=TaskPageSchema,
           errors=(400, 403, 404),
           description="The caller's inbox (tasks of their forums and tasks assigned to them), filtered, "
                       "sorted and paged by the database. With `instance_id`: the tasks of that case, if the "
                       "caller may see it.")
def list_tasks(query: dict[str, Any]) -> Any:
    eng = engine()
    filters: dict[str, Any] = {"forum": query.get("forum"), "process_key": query.get("process"),
                               "overdue": query["overdue"], "assigned": query.get("assigned"),
                               "status": query["status"], "user": username()}
    if "instance_id" in query:
        inst = eng.runtime.get(query["instance_id"], history=False)
        if not may_view_instance(inst):
            raise ApiProblem(403, "forbidden", f"You may not see case {inst.id}.")
        filters["instance_id"] = inst.id
        if filters["assigned"] is None:
            filters["user"] = None  # every task of the case, whichever forum
    result = eng.tasks.page(**filters, sort=query["sort"], limit=query["limit"], offset=query["offset"],
                            after=query.get("after"))
    return {"items": [t.to_dict() for t in result.items], **page_fields(result, query)}


def _visible(task_id: int) -> Any:
    task = engine().tasks.get(task_id)  # NotFoundError -> 404
    if not may_view_task(task):
        raise ApiProblem(403, "forbidden", f"You may not see task {task_id}.")
    return task


@operation("/tasks/<int:task_id>", "GET", tag="tasks", summary="Read a task", response=TaskSchema,
           errors=(403, 404), description="Members of its forums, its assignee and administrators.")
def get_task(task_id: int) -> Any:
    return _visible(task_id).to_dict()


@operation("/tasks/<int:task_id>/claim", "POST", tag="tasks", summary="Claim a task", response=TaskSchema,
           errors=(403, 404, 409), description="Assigns the task to the caller (409 if someone has it).")
def claim(task_id: int) -> Any:
    _visible(task_id)
    return engine().tasks.claim(task_id, username()).to_dict()


@operation("/tasks/<int:task_id>/unclaim", "POST", tag="tasks", summary="Give a task back to its forum",
           response=TaskSchema, errors=(403, 404, 409),
           description="The assignee, or an administrator for anyone's task.")
def unclaim(task_id: int) -> Any:
    _visible(task_id)
    return engine().tasks.unclaim(task_id, username()).to_dict()


@operation("/tasks/<int:task_id>/complete", "POST", tag="tasks", summary="Complete a task",
           body=CompleteRequestSchema, response=CompleteResultSchema, errors=(400, 403, 404, 409, 422),
           description="`data` is validated against the task's form: 422 with messages per field "
                       "(Danish, or English with Accept-Language: en), and nothing changes.")
def complete(task_id: int, body: dict[str, Any]) -> Any:
    task = _visible(task_id)
    eng = engine()
    done = eng.tasks.complete(task_id, username(), body["data"], locale=locale())
    following = eng.tasks.next_for(task.instance_id, username())
    return {"task": done.to_dict(), "next_task": following.to_dict() if following else None}
