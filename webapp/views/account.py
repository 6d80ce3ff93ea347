"""The user's own account: personal API tokens (engine.tokens) for scripts that call /api.

A new token is shown once, in the answer to the form that made it; it is never put in the session
(a cookie) or a flash message, and the page is sent with Cache-Control: no-store."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import ConflictError, InvalidInputError
from engine.services.tokens import MAX_ACTIVE_PER_USER, MAX_NAME, NewToken

from ..access import engine

bp = Blueprint("account", __name__, url_prefix="/account")

EXPIRY_DAYS = (30, 90, 365)  # the form's choices; "never" is the empty value
DEFAULT_EXPIRY = "90"


def expiry_choices() -> list[tuple[str, str]]:
    return [(str(days), _("%(days)d dage", days=days)) for days in EXPIRY_DAYS] + [("", _("Udløber aldrig"))]


def _validate(form: dict[str, str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    name = form["name"]
    if not name:
        errors["name"] = [_("Giv nøglen et navn, så du kan kende den igen.")]
    elif len(name) > MAX_NAME:
        errors["name"] = [_("Navnet må højst være %(max)d tegn.", max=MAX_NAME)]
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        errors["name"] = [_("Navnet må ikke indeholde kontroltegn.")]
    if form["expires"] not in {value for value, _label in expiry_choices()}:
        errors["expires"] = [_("Vælg en af udløbstiderne.")]
    return errors


@bp.route("/tokens", methods=["GET", "POST"])
def tokens() -> Any:
    eng = engine()
    form = {"name": "", "expires": DEFAULT_EXPIRY}
    errors: dict[str, list[str]] = {}
    created: NewToken | None = None
    status = 200
    if request.method == "POST":
        form = {"name": request.form.get("name", "").strip(), "expires": request.form.get("expires", "")}
        errors = _validate(form)
        if not errors:
            try:
                created = eng.tokens.create(current_user.username, form["name"],
                                            int(form["expires"]) if form["expires"] else None,
                                            by=current_user.username)
            except ConflictError:
                errors["form"] = [_("Du har allerede %(max)d aktive nøgler. Tilbagekald en, før du opretter en ny.",
                                    max=MAX_ACTIVE_PER_USER)]
            except InvalidInputError as exc:
                errors["name"] = [exc.message]
            else:
                form = {"name": "", "expires": DEFAULT_EXPIRY}
        if errors:
            status = 400
    response = make_response(render_template(
        "account/tokens.html", tokens=eng.tokens.list(current_user.username), created=created, form=form,
        errors=errors, expiry_choices=expiry_choices()), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke(token_id: int) -> Any:
    eng = engine()
    try:  # only the user's own tokens: another's is a 404 (NotFoundError), as if it did not exist
        view = eng.tokens.revoke(token_id, by=current_user.username, owner=current_user.username)
    except ConflictError:
        flash(_("Nøglen var allerede tilbagekaldt."), "info")
    else:
        flash(_("Nøglen %(name)s er tilbagekaldt og virker ikke længere.", name=view.name), "success")
    return redirect(url_for("account.tokens"))
