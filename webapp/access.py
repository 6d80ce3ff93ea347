"""Who may see what: role checks for routes and read access to tasks and cases.

Acting on a task (claim, complete) is decided by the engine; these helpers only decide what a
page may show, so a member does not browse cases they have no part in."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from flask import abort, current_app
from flask_login import current_user

from engine import Engine
from engine.views import InstanceView, TaskView

P = ParamSpec("P")


def engine() -> Engine:
    return current_app.extensions["almenflow"]


def is_admin() -> bool:
    return bool(current_user.is_authenticated and current_user.role == "admin")


def is_owner() -> bool:
    """Process owners and administrators may manage process definitions."""
    return bool(current_user.is_authenticated and current_user.role in ("owner", "admin"))


def roles_required(*roles: str) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    def decorator(fn: Callable[P, Any]) -> Callable[P, Any]:
        @wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            if not current_user.is_authenticated:
                # Flask-Login (untyped) sets app.login_manager in init_app.
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if current_user.role not in roles:
                abort(403)
            return fn(*args, **kwargs)
        return wrapper
    return decorator


admin_required = roles_required("admin")
owner_required = roles_required("owner", "admin")


def may_view_task(task: TaskView) -> bool:
    if is_admin():
        return True
    user = current_user.username
    if user in (task.assignee, task.completed_by):
        return True
    groups = set(task.candidate_groups or ([task.forum] if task.forum else []))
    return bool(groups & set(current_user.forums))


def may_view_instance(inst: InstanceView) -> bool:
    """Administrators, whoever started the case, and members who have or had a task in it."""
    if is_admin() or inst.started_by == current_user.username:
        return True
    return any(may_view_task(t) for t in engine().tasks.query(instance_id=inst.id, status="all"))


def may_start(key: str) -> bool:
    return is_owner() or key in current_app.config["ALMENFLOW_OPEN_PROCESSES"]
