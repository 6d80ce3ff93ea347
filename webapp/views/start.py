"""Start a new case: the processes the user may start, and each one's generated start form.

Any logged-in user may start the open processes (ALMENFLOW_OPEN_PROCESSES, "én indgang");
process owners and administrators may start any process. The start form comes from the start
event's camunda:formData; the engine validates it (engine.runtime.start_with_form)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from engine import FormValidationError, InvalidInputError

from .. import formgen
from ..access import engine, may_start, may_view_instance

bp = Blueprint("start", __name__)

BUSINESS_KEY = "business_key"
BUSINESS_KEY_MAX = 255


def startable() -> list[Any]:
    return [d for d in engine().definitions.list(latest_only=True) if may_start(d.key)]


@bp.route("/start")
def index() -> Any:
    definitions = sorted(startable(), key=lambda d: (d.name or d.key).lower())
    return render_template("start/list.html", definitions=definitions)


def _business_key_control(value: str, errors: dict[str, list[str]]) -> formgen.Control:
    return formgen.Control(
        name=BUSINESS_KEY, label=_("Sagsnummer"), widget="text", value=value,
        help=_("Valgfrit. Brug jeres eget sagsnummer, hvis sagen har et; ellers kan feltet være tomt."),
        errors=[str(m) for m in errors.get(BUSINESS_KEY, [])], attrs={"maxlength": str(BUSINESS_KEY_MAX)})


@bp.route("/start/<key>", methods=["GET", "POST"])
def form(key: str) -> Any:
    if not may_start(key):
        abort(403)
    eng = engine()
    definition = eng.definitions.get(key)  # NotFoundError -> 404
    fields = list(definition.start_form or [])
    own_key_field = any(f["id"] == BUSINESS_KEY for f in fields)
    errors: dict[str, list[str]] = {}
    posted = None
    status = 200
    business_key = ""
    if request.method == "POST":
        user = current_user.username
        business_key = "" if own_key_field else request.form.get(BUSINESS_KEY, "").strip()
        data = formgen.posted_data(fields, request.form)
        if len(business_key) > BUSINESS_KEY_MAX:
            errors[BUSINESS_KEY] = [_("Må højst være %(max)d tegn.", max=BUSINESS_KEY_MAX)]
        inst = None
        try:
            if not errors:
                inst = eng.runtime.start_with_form(key, data, user, business_key=business_key or None,
                                                   locale=str(get_locale() or "da"))
        except FormValidationError as exc:
            errors.update(exc.errors)
        except InvalidInputError as exc:
            errors["_form"] = [exc.message]
        if inst is not None:
            return _started(inst, user)
        posted, status = request.form, 422
    controls = formgen.build_controls(fields, None, posted, errors)
    if not own_key_field:
        controls.insert(0, _business_key_control(business_key, errors))
    return render_template("start/form.html", definition=definition, controls=controls,
                           error_summary=formgen.error_summary(controls, {k: v for k, v in errors.items()
                                                                          if k != "_form"}),
                           form_error=" ".join(errors.get("_form", []))), status


def _started(inst: Any, user: str) -> Any:
    """To the user's first task in the new case, else the case page."""
    label = inst.business_key or _("Sag %(id)d", id=inst.id)
    first = engine().tasks.next_for(inst.id, user)
    if first is not None:
        flash(_("Sagen %(case)s er startet. Her er din første opgave.", case=label), "success")
        return redirect(url_for("tasks.detail", task_id=first.id))
    flash(_("Sagen %(case)s er startet.", case=label), "success")
    if may_view_instance(inst):
        return redirect(url_for("instances.detail", instance_id=inst.id))
    return redirect(url_for("home.index"))
