"""Cases (process instances): the administrators' list, the case page, and operations on a case."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import InvalidInputError, MessageCorrelationError
from engine.services.runtime import STATUSES

from ..access import admin_required, engine, may_view_instance
from ..paging import Page, current_page
from ..templating import status_labels
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
    filters: dict[str, Any] = dict(status=status or None, key=key or None, business_key=business_key or None,
                                   version=version, started_from=_day(args.get("started_from")),
                                   started_to=_day(args.get("started_to"), next_day=True), forum=forum or None)
    try:
        result = eng.runtime.page(**filters, limit=page.size, **page.cursors())
    except InvalidInputError:  # a cursor that is not ours (edited link): the first page instead
        page = Page(1, page.size, 0)
        result = eng.runtime.page(**filters, limit=page.size)
    page.fill(result)
    rows = result.items
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
    # As UTC: the columns hold UTC, and SQLite compares date-times as text.
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(UTC)


@bp.route("/instances/<int:instance_id>")
def detail(instance_id: int) -> Any:
    return _detail_page(instance_id)


def _detail_page(instance_id: int, errors: dict[str, list[str]] | None = None,
                 values: dict[str, str] | None = None, status: int = 200) -> Any:
    """The case page; after a refused action, with that form's errors and what the user typed."""
    eng = engine()
    inst = eng.runtime.get(instance_id)
    if not may_view_instance(inst):
        abort(403)
    messages = sorted({w.name for w in inst.waits if w.kind == "message" and w.name})
    return render_template("instances/detail.html", inst=inst, comments=eng.history.comments(inst.id),
                           waiting_messages=messages, action_errors=errors or {},
                           action_values=values or {}), status


def parse_variables(raw: str) -> tuple[dict[str, Any], str | None]:
    """Variables typed as a JSON object: (data, None), or ({}, a Danish message saying what is wrong)."""
    if not raw.strip():
        return {}, None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, _("Ugyldig JSON (linje %(line)d, kolonne %(col)d): %(error)s", line=exc.lineno,
                     col=exc.colno, error=exc.msg)
    if not isinstance(data, dict):
        return {}, _('Skal være et JSON-objekt, fx {"beslutning": "godkendt"}.')
    for key in data:
        if not key.isidentifier() or key.startswith("_"):
            return {}, _('"%(key)s" er ikke et gyldigt variabelnavn: brug bogstaver, tal og _, '
                         'og start ikke med et tal eller _.', key=key)
    return data, None


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
    """Run the failed step again, optionally after correcting variables (a JSON object)."""
    raw = request.form.get("variables", "")
    data, error = parse_variables(raw)
    if error:
        return _detail_page(instance_id, {"variables": [error]}, {"variables": raw}, 422)
    engine().runtime.retry(instance_id, current_user.username, data or None)
    if data:
        return _done(instance_id, _("Det fejlede trin er kørt igen med de rettede data."))
    return _done(instance_id, _("Det fejlede trin er kørt igen."))


@bp.route("/instances/<int:instance_id>/message", methods=["POST"])
@admin_required
def message(instance_id: int) -> Any:
    """Deliver a message the case waits for (correlated by the case's business key)."""
    eng = engine()
    inst = eng.runtime.get(instance_id, history=False)
    name = request.form.get("message_name", "").strip()
    raw = request.form.get("message_variables", "")
    values = {"message_name": name, "message_variables": raw}
    errors: dict[str, list[str]] = {}
    data, error = parse_variables(raw)
    if error:
        errors["message_variables"] = [error]
    waiting = {w.name for w in inst.waits if w.kind == "message"}
    if not name:
        errors["message_name"] = [_("Skriv navnet på beskeden.")]
    elif inst.status != "active":
        errors["message_name"] = [_("Sagen er %(status)s; den kan ikke modtage beskeder nu.",
                                    status=status_labels().get(inst.status, inst.status).lower())]
    elif name not in waiting:
        errors["message_name"] = [_('Sagen venter ikke på beskeden "%(name)s".', name=name)]
    if not errors:
        # This case waits for the message, so with its business key (or none) it is the one receiver:
        # when another case with the same key waits too, the engine refuses rather than guessing.
        try:
            eng.runtime.correlate(name, business_key=inst.business_key, data=data, user=current_user.username)
        except MessageCorrelationError:
            errors["message_name"] = [_("Beskeden kan ikke leveres entydigt til denne sag: andre sager med "
                                        "samme sagsnummer venter også på den.")]
        else:
            return _done(instance_id, _('Beskeden "%(name)s" er sendt til sagen.', name=name))
    return _detail_page(instance_id, errors, values, 422)
