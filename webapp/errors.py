"""Engine errors and HTTP errors as pages: 400, 403, 404, 409 and friends, in the user's language."""

from __future__ import annotations

from typing import Any

from flask import Flask, make_response, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine import EngineError


def _titles() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Ugyldig forespørgsel"), _("Forespørgslen kunne ikke behandles.")),
        403: (_("Adgang nægtet"), _("Du har ikke adgang til denne side eller handling.")),
        404: (_("Siden findes ikke"), _("Det, du leder efter, findes ikke (længere).")),
        405: (_("Handlingen er ikke tilladt"), _("Siden kan ikke bruges på den måde.")),
        409: (_("Konflikt"), _("Handlingen kunne ikke gennemføres, fordi sagen eller opgaven har ændret sig.")),
        413: (_("Filen er for stor"), _("Filen må højst fylde 5 MB.")),
        422: (_("Ugyldige data"), _("De indsendte data kunne ikke bruges.")),
        429: (_("For mange forsøg"), _("Vent lidt, og prøv igen.")),
        500: (_("Der opstod en fejl"), _("Der skete en uventet fejl. Prøv igen senere.")),
    }


def error_page(status: int, detail: str | None = None) -> tuple[str, int]:
    title, text = _titles().get(status, _titles()[500] if status >= 500 else _titles()[400])
    return render_template("error.html", status=status, title=title, text=text, detail=detail), status


def init_app(app: Flask) -> None:
    from .api import is_api_request, problem_for

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if is_api_request():  # unknown API paths and methods: problem+json, not a page
            return problem_for(exc)
        if exc.code is None or exc.code < 400:
            return exc
        response = make_response(error_page(exc.code))
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return error_page(400, _("Formularen var udløbet eller manglede sikkerhedsnøglen. "
                                 "Gå tilbage, genindlæs siden, og prøv igen."))

    @app.errorhandler(EngineError)
    def engine_error(exc: EngineError) -> Any:
        # Each engine error class carries its status: PermissionDenied 403, NotFound 404, Conflict 409,
        # invalid input 400, form/deployment problems 422.
        return error_page(exc.http_status, exc.message)
