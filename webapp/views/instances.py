"""Cases (process instances): the administrators' list, the case page, and operations on a case."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.services.runtime import STATUSES

from ..access import admin_required, engine, may_view_instance
from ..paging import current_page
from ..timefmt import LOCAL_TZ

bp = Blueprint("instances", __name__)


@bp.route("/instances")
@admin_required
def index() -> Any:
    eng = engine()
    args = request.args
    key = args.get("process", "").strip()
    status = args.get("status", "") if args.get("status") in STATUSES else ""
    business_key = args.get("business_key", "").strip()
    try:
        version = int(args["version"]) if args.get("version") else None
    except ValueError:
        version = None
    forum = args.get("forum", "").strip()
    page = current_page()
    rows, total = eng.runtime.list(status=status or None, key=key or None, business_key=business_key or None,
                                   version=version, started_from=_day(args.get("started_from")),
                                   started_to=_day(args.get("started_to"), next_day=True), forum=forum or None,
                                   limit=page.size, offset=page.offset)
    page.total = total
    processes = sorted({(d.key, d.name or d.key) for d in eng.definitions.list(latest_only=True)},
                       key=lambda kv: kv[1].lower())
    return render_template("instances/list.html", rows=rows, page=page, processes=processes,
                           statuses=STATUSES, forums=[f["name"] for f in eng.identity.forums()], args=args)


def _day(value: str | None, next_day: bool = False) -> datetime | None:
    """A date from a filter field as the start of that day in Copenhagen (or of the next day, for 'to')."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    if next_day:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


@bp.route("/instances/<int:instance_id>")
def detail(instance_id: int) -> Any:
    eng = engine()
    inst = eng.runtime.get(instance_id)
    if not may_view_instance(inst):
        abort(403)
    return render_template("instances/detail.html", inst=inst, comments=eng.history.comments(inst.id))


def _done(instance_id: int, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("instances.detail", instance_id=instance_id))


@bp.route("/instances/<int:instance_id>/suspend", methods=["POST"])
@admin_required
def suspend(instance_id: int) -> Any:
    engine().runtime.suspend(instance_id, current_user.username)
    return _done(instance_id, _("Sagen er sat på pause."))


@bp.route("/instances/<int:instance_id>/resume", methods=["POST"])
@admin_required
def resume(instance_id: int) -> Any:
    engine().runtime.resume(instance_id, current_user.username)
    return _done(instance_id, _("Sagen er genoptaget."))


@bp.route("/instances/<int:instance_id>/terminate", methods=["POST"])
@admin_required
def terminate(instance_id: int) -> Any:
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash(_("Skriv en begrundelse for at afbryde sagen."), "error")
        return redirect(url_for("instances.detail", instance_id=instance_id) + "#actions")
    engine().runtime.terminate(instance_id, current_user.username, reason)
    return _done(instance_id, _("Sagen er afbrudt."))


@bp.route("/instances/<int:instance_id>/retry", methods=["POST"])
@admin_required
def retry(instance_id: int) -> Any:
    engine().runtime.retry(instance_id, current_user.username)
    return _done(instance_id, _("Det fejlede trin er kørt igen."))
