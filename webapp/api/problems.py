"""Errors as RFC 9457 problem details (application/problem+json): every refusal is a 4xx with a
machine-readable type, a short English title, a detail, and field errors or deployment problems
where there are some."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, json
from werkzeug.exceptions import HTTPException

from engine import (
    ConflictError,
    DeploymentError,
    EngineError,
    FormValidationError,
    InvalidInputError,
    MessageCorrelationError,
    NotFoundError,
    PermissionDeniedError,
)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:almenflow:problem:"


class ApiProblem(Exception):
    """Raised by API code to answer with a problem; `extra` adds members such as `errors`."""

    def __init__(self, status: int, slug: str, detail: str | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or slug)
        self.status, self.slug, self.detail, self.title = status, slug, detail, title
        self.headers = headers or {}
        self.extra = extra


def problem(status: int, slug: str, detail: str | None = None, title: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_api_problem(exc: ApiProblem) -> Response:
    return problem(exc.status, exc.slug, exc.detail, exc.title, exc.headers, **exc.extra)


def from_engine_error(exc: EngineError) -> Response:
    """Engine exceptions by family: validation 422, permission 403, missing 404, conflicts 409,
    other bad input 400."""
    if isinstance(exc, FormValidationError):
        return problem(422, "form-validation", "The submitted data does not satisfy the form.",
                       "Invalid form data", errors=exc.errors)
    if isinstance(exc, DeploymentError):
        return problem(422, "deployment", "The resources were refused; nothing was deployed.",
                       "Deployment refused", problems=[p.to_dict() for p in exc.problems])
    if isinstance(exc, PermissionDeniedError):
        return problem(403, "permission-denied", exc.message)
    if isinstance(exc, MessageCorrelationError):
        return problem(404, "message-not-correlated", exc.message, "Message not correlated")
    if isinstance(exc, NotFoundError):
        return problem(404, "not-found", exc.message)
    if isinstance(exc, ConflictError):
        return problem(409, "conflict", exc.message, "Conflict")
    if isinstance(exc, InvalidInputError):
        return problem(400, "invalid-input", exc.message, "Invalid input")
    status = exc.http_status if 400 <= exc.http_status < 500 else 400
    return problem(status, "engine-error", exc.message)


def from_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
    slug = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
            405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}.get(status, "http-error")
    return problem(status, slug, exc.description if status != 404 else "No such API resource.",
                   headers=headers)
