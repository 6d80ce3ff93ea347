"""Administration: the monitoring dashboard, users (roles, activation, forum membership) and every
user's API tokens."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import ConflictError, InvalidInputError
from engine.services.identity import ROLES
from engine.services.runtime import STATUSES

from .. import charts
from ..access import admin_required, engine
from ..templating import role_labels

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,49}$")
MIN_PASSWORD = 8


WEEKS = 12
AGE_COLOURS = ("#1d6b2c", "#00507f", "#b35900", "#b3001b")  # young to old; 3:1 against white


@bp.route("")
@admin_required
def dashboard() -> Any:
    """Counts per process and version, open work per forum, timers due soon, and weekly charts.
    Every figure is aggregated by the database (engine.reporting), never by loading rows here."""
    eng = engine()
    names = {d.key: d.name or d.key for d in eng.definitions.list(latest_only=True)}
    counts = eng.definitions.instance_counts()
    rows = [{"key": key, "name": names.get(key, key), "version": version, "counts": by_status,
             "total": sum(by_status.values())} for (key, version), by_status in sorted(counts.items())]
    forums = eng.reporting.open_tasks_by_forum()
    return render_template("admin/dashboard.html", rows=rows, statuses=STATUSES, forums=forums,
                           timers=eng.scheduler.upcoming(24), charts=_charts(eng, forums))


def _week_label(week: Any) -> str:
    return _("uge %(week)d", week=week.week)


def _charts(eng: Any, forums: list[Any]) -> dict[str, charts.Chart]:
    instances = eng.reporting.instances_per_week(WEEKS)
    tasks = eng.reporting.tasks_completed_per_week(WEEKS)
    first, last = instances[0], instances[-1]
    period = _("uge %(first)d %(first_year)d til uge %(last)d %(last_year)d", first=first.week,
               first_year=first.year, last=last.week, last_year=last.year)
    started = [w.values["started"] for w in instances]
    completed = [w.values["completed"] for w in instances]
    done = [w.values["completed"] for w in tasks]
    age_labels = {"0-7": _("0-7 dage"), "8-30": _("8-30 dage"), "31-90": _("31-90 dage"), "91+": _("over 90 dage")}
    forum_names = [f.forum or _("Uden forum") for f in forums]
    return {
        "instances": charts.grouped_columns(
            "chart-instances", _("Sager startet og afsluttet pr. uge"),
            _("Søjlediagram for %(period)s. I alt %(started)d sager startet og %(completed)d afsluttet; "
              "flest startet i en uge: %(max)d.", period=period, started=sum(started), completed=sum(completed),
              max=max(started, default=0)),
            [_week_label(w) for w in instances],
            [charts.Series(_("Startet"), started), charts.Series(_("Afsluttet"), completed)]),
        "throughput": charts.grouped_columns(
            "chart-throughput", _("Udførte opgaver pr. uge"),
            _("Søjlediagram for %(period)s. I alt %(total)d opgaver udført; flest i en uge: %(max)d.",
              period=period, total=sum(done), max=max(done, default=0)),
            [_week_label(w) for w in tasks], [charts.Series(_("Udførte opgaver"), done)]),
        "age": charts.stacked_rows(
            "chart-age", _("Åbne opgavers alder pr. forum"),
            _("Liggende søjler, en pr. forum, delt efter hvor mange dage opgaverne har været åbne. "
              "I alt %(total)d åbne opgaver i %(forums)d fora.", total=sum(f.open for f in forums),
              forums=len(forums)),
            forum_names, [charts.Series(label, [f.ages[key] for f in forums], colour)
                          for (key, label), colour in zip(age_labels.items(), AGE_COLOURS, strict=True)]),
    }


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


@bp.route("/tokens")
@admin_required
def tokens() -> Any:
    """Every user's API tokens (or one user's, with ?user=), to see what is in use and revoke any."""
    eng = engine()
    user = request.args.get("user", "").strip() or None
    if user is not None:
        eng.identity.get_user(user)  # NotFoundError (404) for a user that does not exist
    return render_template("admin/tokens.html", tokens=eng.tokens.list(user), user=user)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@admin_required
def revoke_token(token_id: int) -> Any:
    try:
        view = engine().tokens.revoke(token_id, by=current_user.username)
    except ConflictError:
        flash(_("Nøglen var allerede tilbagekaldt."), "info")
    else:
        flash(_("Nøglen %(name)s (%(user)s) er tilbagekaldt.", user=view.username, name=view.name), "success")
    user = request.form.get("user", "").strip()
    return redirect(url_for("admin.tokens", user=user) if user else url_for("admin.tokens"))
