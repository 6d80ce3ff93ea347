"""The inbox and the task page: case context, claim/unclaim, comments and the generated form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from engine import FormValidationError, InvalidInputError
from engine.services.tasks import TASK_SORTS
from engine.views import TaskView

from .. import formgen
from ..access import admin_required, engine, is_admin, may_view_task
from ..paging import Page, current_page

bp = Blueprint("tasks", __name__)

COMMENT_MAX = 5000


def inbox_filters(args: Any, user: str) -> dict[str, Any]:
    """The engine query's filters from the inbox's query string; unknown values mean "no filter"."""
    due = args.get("due", "")
    assigned = args.get("assigned", "")
    return {
        "user": user,
        "forum": args.get("forum", "").strip() or None,
        "process_key": args.get("process", "").strip() or None,
        "overdue": due == "overdue",
        "has_due": due == "dated",
        "assigned": assigned if assigned in ("me", "unassigned") else None,
    }


@bp.route("/tasks")
def inbox() -> Any:
    """Filtering, sorting and paging happen in the database: a capped count and one page of rows,
    reached through a cursor (engine/queries/paging.py)."""
    eng = engine()
    args = request.args
    sort = args.get("sort", "due") if args.get("sort") in TASK_SORTS else "due"
    filters = inbox_filters(args, current_user.username)
    page = current_page()
    try:
        result = eng.tasks.page(**filters, sort=sort, limit=page.size, **page.cursors())
    except InvalidInputError:  # a cursor that is not ours (edited link): the first page instead
        page = Page(1, page.size, 0)
        result = eng.tasks.page(**filters, sort=sort, limit=page.size)
    page.fill(result)
    tasks = result.items
    processes = sorted({(d.key, d.name or d.key) for d in eng.definitions.list(latest_only=True)},
                       key=lambda kv: kv[1].lower())
    return render_template("tasks/list.html", tasks=tasks, page=page, forums=current_user.forums,
                           processes=processes, sort=sort, args=args)


def _visible_task(task_id: int) -> TaskView:
    task = engine().tasks.get(task_id)
    if not may_view_task(task):
        abort(403)
    return task


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
def detail(task_id: int) -> Any:
    eng = engine()
    user = current_user.username
    task = _visible_task(task_id)
    errors: dict[str, list[str]] = {}
    posted = None
    status = 200
    if request.method == "POST":
        data = formgen.posted_data(task.fields, request.form)
        try:
            eng.tasks.complete(task_id, user, data, locale=str(get_locale() or "da"))
        except FormValidationError as exc:
            errors, posted, status = exc.errors, request.form, 422
        else:
            following = eng.tasks.next_for(task.instance_id, user)
            if following is not None:
                flash(_("Opgaven \"%(name)s\" er udført. Her er den næste opgave i sagen.", name=task.name),
                      "success")
                return redirect(url_for("tasks.detail", task_id=following.id))
            flash(_("Opgaven \"%(name)s\" er udført.", name=task.name), "success")
            return redirect(url_for("tasks.inbox"))
    inst = eng.runtime.get(task.instance_id)
    controls = formgen.build_controls(task.fields, inst.data, posted, errors)
    may_act = task.status == "open" and eng.tasks.may_act(task, user)
    return render_template(
        "tasks/detail.html", task=task, inst=inst, controls=controls,
        error_summary=formgen.error_summary(controls, errors) if errors else [],
        may_act=may_act, comments=eng.history.comments(inst.id),
        users=eng.identity.users() if is_admin() else [], comment_max=COMMENT_MAX), status


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
def claim(task_id: int) -> Any:
    task = _visible_task(task_id)
    engine().tasks.claim(task.id, current_user.username)
    flash(_("Du har taget opgaven."), "success")
    return redirect(url_for("tasks.detail", task_id=task.id))


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
def unclaim(task_id: int) -> Any:
    task = _visible_task(task_id)
    engine().tasks.unclaim(task.id, current_user.username)
    flash(_("Opgaven er frigivet til forummet."), "success")
    return redirect(url_for("tasks.detail", task_id=task.id))


@bp.route("/tasks/<int:task_id>/assign", methods=["POST"])
@admin_required
def assign(task_id: int) -> Any:
    assignee = request.form.get("assignee", "").strip() or None
    engine().tasks.assign(task_id, assignee, current_user.username)
    if assignee:
        flash(_("Opgaven er tildelt %(user)s.", user=assignee), "success")
    else:
        flash(_("Opgaven er sendt tilbage til forummet."), "success")
    return redirect(url_for("tasks.detail", task_id=task_id))


@bp.route("/tasks/<int:task_id>/comments", methods=["POST"])
def comment(task_id: int) -> Any:
    task = _visible_task(task_id)
    text = request.form.get("text", "").strip()
    if not text:
        flash(_("Skriv en kommentar, før du gemmer."), "error")
    elif len(text) > COMMENT_MAX:
        flash(_("En kommentar må højst være %(max)d tegn.", max=COMMENT_MAX), "error")
    else:
        engine().history.add_comment(task.instance_id, current_user.username, text, task_id=task.id)
        flash(_("Kommentaren er gemt."), "success")
    return redirect(url_for("tasks.detail", task_id=task.id) + "#comments")
