"""Administration: the monitoring dashboard and users (roles, activation, forum membership)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import ConflictError, InvalidInputError
from engine.services.identity import ROLES
from engine.services.runtime import STATUSES

from .. import timefmt
from ..access import admin_required, engine
from ..templating import role_labels

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,49}$")
MIN_PASSWORD = 8


@bp.route("")
@admin_required
def dashboard() -> Any:
    eng = engine()
    names = {d.key: d.name or d.key for d in eng.definitions.list(latest_only=True)}
    counts = eng.definitions.instance_counts()
    rows = [{"key": key, "name": names.get(key, key), "version": version, "counts": by_status,
             "total": sum(by_status.values())} for (key, version), by_status in sorted(counts.items())]
    now = eng.clock.now()
    open_tasks = eng.tasks.query()
    per_forum = Counter(t.forum or "" for t in open_tasks)
    overdue = Counter(t.forum or "" for t in open_tasks if timefmt.is_overdue(t.due, now))
    forums = [{"name": f, "open": per_forum[f], "overdue": overdue[f]}
              for f in sorted(per_forum, key=lambda f: (-overdue[f], f))]
    return render_template("admin/dashboard.html", rows=rows, statuses=STATUSES, forums=forums,
                           timers=eng.scheduler.upcoming(24))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> Any:
    eng = engine()
    errors: list[str] = []
    form: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = {"username": request.form.get("username", "").strip().lower(),
                "name": request.form.get("name", "").strip(),
                "role": request.form.get("role", "member"),
                "forums": request.form.getlist("forums")}
        password = request.form.get("password", "")
        if not USERNAME.match(form["username"]):
            errors.append(_("Brugernavnet skal være 2-50 tegn: små bogstaver, tal, punktum, _ eller -."))
        if form["role"] not in ROLES:
            errors.append(_("Vælg en gyldig rolle."))
        if len(password) < MIN_PASSWORD:
            errors.append(_("Adgangskoden skal være mindst %(min)d tegn.", min=MIN_PASSWORD))
        if not errors:
            try:
                eng.identity.add_user(form["username"], form["name"], form["role"], form["forums"], password)
            except ConflictError:
                errors.append(_("Brugeren %(user)s findes allerede.", user=form["username"]))
            except InvalidInputError as exc:
                errors.append(exc.message)
            else:
                flash(_("Brugeren %(user)s er oprettet.", user=form["username"]), "success")
                return redirect(url_for("admin.users"))
        status = 400
    return render_template("admin/users.html", users=eng.identity.users(), forums=eng.identity.forums(),
                           roles=ROLES, errors=errors, form=form), status


def _not_self(username: str) -> bool:
    if username == current_user.username:
        flash(_("Du kan ikke ændre din egen rolle eller deaktivere dig selv."), "error")
        return False
    return True


@bp.route("/users/<username>/role", methods=["POST"])
@admin_required
def set_role(username: str) -> Any:
    role = request.form.get("role", "")
    if role not in ROLES:
        raise InvalidInputError(_("Vælg en gyldig rolle."))
    if _not_self(username):
        engine().identity.update_user(username, role=role)
        flash(_("%(user)s har nu rollen %(role)s.", user=username, role=role_labels().get(role, role)), "success")
    return redirect(url_for("admin.users") + f"#user-{username}")


@bp.route("/users/<username>/active", methods=["POST"])
@admin_required
def set_active(username: str) -> Any:
    active = request.form.get("active") == "1"
    if _not_self(username):
        engine().identity.update_user(username, active=active)
        flash(_("%(user)s er aktiveret.", user=username) if active
              else _("%(user)s er deaktiveret.", user=username), "success")
    return redirect(url_for("admin.users") + f"#user-{username}")


@bp.route("/users/<username>/forums", methods=["POST"])
@admin_required
def set_membership(username: str) -> Any:
    forum = request.form.get("forum", "")
    member = request.form.get("member") == "1"
    engine().identity.set_membership(username, forum, member)
    flash(_("%(user)s er nu medlem af %(forum)s.", user=username, forum=forum) if member
          else _("%(user)s er ikke længere medlem af %(forum)s.", user=username, forum=forum), "success")
    return redirect(url_for("admin.users") + f"#user-{username}")
