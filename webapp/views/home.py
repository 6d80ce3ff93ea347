"""The start page: what needs the user's attention, the cases they started, and what they may start."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user

from ..access import engine, may_start

bp = Blueprint("home", __name__)

START_PAGE_ROWS = 10


@bp.route("/")
def index() -> Any:
    eng = engine()
    user = current_user.username
    tasks = eng.tasks.query(user=user, limit=START_PAGE_ROWS)  # overdue first: by due date, undated last
    started, started_total = eng.runtime.list(started_by=user, limit=START_PAGE_ROWS)
    startable = [d for d in eng.definitions.list(latest_only=True) if may_start(d.key)]
    return render_template("home.html", tasks=tasks, task_total=eng.tasks.count(user=user),
                           overdue_total=eng.tasks.count(user=user, overdue=True),
                           started=started, started_total=started_total, startable=startable)
