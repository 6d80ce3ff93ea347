"""One declaration per API operation: the route, its schemas and its documentation.

    @operation("/tasks/<int:task_id>/complete", "POST", tag="tasks", summary="Complete a task",
               body=CompleteRequestSchema, response=CompleteResultSchema, errors=(403, 404, 409, 422))
    def complete(task_id, body): ...

The decorator registers the Flask route, loads the query string and JSON body with their schemas
(a refusal is a 400 problem with errors per field), dumps the return value with the response
schema, and records everything openapi.py needs to describe the operation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError

from .problems import ApiProblem

bp = Blueprint("api", __name__, url_prefix="/api")


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    tag: str
    description: str = ""
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    files: str | None = None  # multipart field name holding uploaded files
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    errors: tuple[int, ...] = ()
    public: bool = False


OPERATIONS: list[Operation] = []


def _messages(exc: ValidationError) -> dict[str, list[str]]:
    messages = exc.normalized_messages()
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        if isinstance(value, list):
            out[str(key)] = [str(v) for v in value]
        elif isinstance(value, dict):  # nested (e.g. a Dict's keys): flatten into one line each
            out[str(key)] = [f"{k}: {v}" for k, v in value.items()]
        else:
            out[str(key)] = [str(value)]
    return out


def json_body() -> Any:
    """The request's JSON document; an empty body is {}. Malformed JSON is a 400 problem."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "malformed-json", f"The request body is not valid JSON: {exc}",
                         "Malformed JSON") from None


def load(schema: type[Schema], data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiProblem(400, "invalid-request", f"The {where} must be a JSON object.", "Invalid request")
    try:
        return schema().load(data)
    except ValidationError as exc:
        raise ApiProblem(400, "invalid-request", f"The {where} has invalid fields.", "Invalid request",
                         errors=_messages(exc)) from None


def operation(rule: str, method: str = "GET", *, summary: str, tag: str, description: str = "",
              query: type[Schema] | None = None, body: type[Schema] | None = None, files: str | None = None,
              response: type[Schema] | None = None, many: bool = False, status: int = 200,
              errors: tuple[int, ...] = (), public: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(rule, method, fn.__name__, summary, tag, description or (fn.__doc__ or "").strip(), query,
                       body, files, response, many, status, errors, public)
        OPERATIONS.append(op)

        @wraps(fn)
        def view(**path: Any) -> Any:
            kwargs: dict[str, Any] = dict(path)
            if query is not None:
                kwargs["query"] = load(query, request.args.to_dict(flat=True), "query string")
            if body is not None:
                kwargs["body"] = load(body, json_body(), "request body")
            result = fn(**kwargs)
            if isinstance(result, Response):
                return result
            headers: dict[str, str] = {}
            if isinstance(result, tuple):
                result, headers = result
            payload = response(many=many).dump(result) if response is not None else result
            out = jsonify(payload)
            out.status_code = status
            out.headers.update(headers)
            return out

        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view
    return decorator


def public_endpoints() -> set[str]:
    return {f"{bp.name}.{op.endpoint}" for op in OPERATIONS if op.public}
