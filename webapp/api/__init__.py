"""The JSON API under /api: the same operations as the web pages, for scripts and other systems.

    registry.py   one declaration per operation (route + schemas + documentation)
    schemas.py    marshmallow schemas of requests and responses
    openapi.py    /api/openapi.json, generated from the two above
    auth.py       login session (with CSRF header) or HTTP Basic
    problems.py   errors as application/problem+json
    definitions.py, instances.py, tasks.py   the operations
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine import EngineError

from . import definitions, instances, tasks  # noqa: F401  (the operations register themselves)
from .auth import authenticate
from .openapi import document
from .problems import ApiProblem, from_api_problem, from_engine_error, from_http_exception, problem
from .registry import bp, operation, public_endpoints

PREFIX = "/api/"


@operation("/openapi.json", "GET", tag="meta", summary="This API's OpenAPI document", public=True)
def openapi() -> Any:
    """Generated from the operations and their marshmallow schemas."""
    return jsonify(document(request.script_root + "/" if request.script_root else "/"))


@bp.before_request
def _authenticate() -> None:
    authenticate(public=request.endpoint in public_endpoints())


def is_api_request() -> bool:
    return request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/")


def problem_for(exc: BaseException) -> Any:
    """The problem response for any error raised while serving an API request."""
    if isinstance(exc, ApiProblem):
        return from_api_problem(exc)
    if isinstance(exc, CSRFError):
        return problem(400, "csrf", "Send the CSRF token of your session in the X-CSRFToken header "
                                    "(or use HTTP Basic).", "CSRF token missing or invalid")
    if isinstance(exc, EngineError):
        return from_engine_error(exc)
    if isinstance(exc, HTTPException):
        return from_http_exception(exc)
    return problem(500, "internal", "An unexpected error occurred.")


def init_app(app: Flask) -> None:
    from ..auth import csrf

    csrf.exempt(bp)  # auth.authenticate checks the token itself, for session requests only
    app.register_blueprint(bp)


for _exc_class in (ApiProblem, CSRFError, EngineError, HTTPException):
    bp.register_error_handler(_exc_class, problem_for)
