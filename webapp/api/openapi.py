"""The OpenAPI 3.1 document, generated from the operations (registry.py) and their marshmallow
schemas (schemas.py): nothing about the API is written twice.

Field mapping: String/Integer/Float/Boolean/Raw/Dict/List/Nested -> JSON Schema types;
required -> `required`; allow_none -> a "null" type; OneOf/Range/Length -> enum/minimum/maximum/
minLength/maxLength; load_default -> default; metadata description/format -> the same keywords."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, fields, missing, validate

from .problems import MEDIA_TYPE
from .registry import OPERATIONS, Operation
from .schemas import ProblemSchema

RULE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
TITLE = "AlmenFlow API"
VERSION = "1.0"
ERROR_TEXT = {400: "Invalid request", 401: "Not authenticated, or the API token was refused", 403: "Not allowed", 404: "Not found",
              409: "Conflict with the current state", 413: "Upload too large", 422: "Validation failed",
              429: "Too many failed logins"}


def _name(schema: Schema | type[Schema]) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def _ref(schema: Schema | type[Schema], components: dict[str, Any]) -> dict[str, Any]:
    name = _name(schema)
    if name not in components:
        components[name] = {}  # placeholder: recursion-safe
        components[name] = schema_object(schema if isinstance(schema, Schema) else schema(), components)
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(spec: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in spec:
        return {"anyOf": [spec, {"type": "null"}]}
    kind = spec.get("type")
    if kind is None:
        return spec
    spec["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
    if "enum" in spec:
        spec["enum"] = [*spec["enum"], None]
    return spec


def field_schema(field: fields.Field, components: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema for one marshmallow field."""
    spec: dict[str, Any]
    if isinstance(field, fields.Nested):
        spec = _ref(field.schema, components)
    elif isinstance(field, fields.List):
        spec = {"type": "array", "items": field_schema(field.inner, components)}
    elif isinstance(field, fields.Dict):
        values = field.value_field
        spec = {"type": "object", "additionalProperties": field_schema(values, components) if values else True}
    elif isinstance(field, fields.Boolean):
        spec = {"type": "boolean"}
    elif isinstance(field, fields.Integer):
        spec = {"type": "integer"}
    elif isinstance(field, fields.Number):
        spec = {"type": "number"}
    elif isinstance(field, fields.AwareDateTime | fields.DateTime):
        spec = {"type": "string", "format": "date-time"}
    elif isinstance(field, fields.Date):
        spec = {"type": "string", "format": "date"}
    elif isinstance(field, fields.String):
        spec = {"type": "string"}
    else:  # Raw: any JSON value
        spec = {}
    for v in field.validators:
        if isinstance(v, validate.OneOf):
            spec["enum"] = list(v.choices)
        elif isinstance(v, validate.Range):
            if v.min is not None:
                spec["minimum"] = v.min
            if v.max is not None:
                spec["maximum"] = v.max
        elif isinstance(v, validate.Length):
            text = spec.get("type") == "string"
            if v.min is not None:
                spec["minLength" if text else "minItems"] = v.min
            if v.max is not None:
                spec["maxLength" if text else "maxItems"] = v.max
    meta = field.metadata or {}
    if "description" in meta:
        spec["description"] = meta["description"]
    if "format" in meta:
        spec["format"] = meta["format"]
    default = field.load_default
    if default is not missing and default is not None and not callable(default):
        spec["default"] = default
    if field.allow_none:
        spec = _nullable(spec)
    return spec


def schema_object(schema: Schema, components: dict[str, Any]) -> dict[str, Any]:
    properties = {}
    required = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        properties[key] = field_schema(field, components)
        if field.required:
            required.append(key)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if schema.__doc__:
        out["description"] = " ".join(schema.__doc__.split())
    if schema.unknown == RAISE:
        out["additionalProperties"] = False
    return out


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in RULE_PARAM.findall(rule):
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {"type": "integer"} if converter == "int" else {"type": "string"}})
    return "/api" + RULE_PARAM.sub(r"{\2}", rule), params


def _query_params(schema: type[Schema], components: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, field in schema().fields.items():
        spec = field_schema(field, components)
        param: dict[str, Any] = {"name": field.data_key or name, "in": "query", "required": bool(field.required),
                                 "schema": spec}
        if "description" in spec:
            param["description"] = spec.pop("description")
        out.append(param)
    return out


def _operation(op: Operation, components: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    path, params = _path(op.rule)
    if op.query is not None:
        params += _query_params(op.query, components)
    doc: dict[str, Any] = {"operationId": op.endpoint, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        doc["description"] = op.description
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body, components)}}}
    elif op.files:
        doc["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": [op.files],
            "properties": {op.files: {"type": "array",
                                      "items": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}}}
    ok: dict[str, Any] = {"description": "OK" if op.status == 200 else "Created"}
    if op.response is not None:
        schema = _ref(op.response, components)
        ok["content"] = {"application/json": {"schema": {"type": "array", "items": schema} if op.many else schema}}
    problem = {MEDIA_TYPE: {"schema": _ref(ProblemSchema, components)}}
    responses: dict[str, Any] = {str(op.status): ok}
    codes = set(op.errors) | ({401, 429} if not op.public else set())
    if op.body is not None or op.query is not None:
        codes.add(400)
    for code in sorted(codes):
        responses[str(code)] = {"description": ERROR_TEXT.get(code, "Error"), "content": problem}
    doc["responses"] = responses
    if op.public:
        doc["security"] = []
    return path, doc


def document(server_url: str = "/") -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        path, doc = _operation(op, components)
        paths.setdefault(path, {})[op.method.lower()] = doc
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "AlmenFlow's process engine over HTTP: definitions, cases, tasks and messages. "
                                "Scripts authenticate with a personal API token (Authorization: Bearer af_..., "
                                "made on the page Account > API tokens or with `almenflow token create`) or "
                                "with HTTP Basic (username and password; checked once, then remembered for a "
                                "few minutes). A browser uses its login session and sends the CSRF token in "
                                "X-CSRFToken on POST. Errors are application/problem+json (RFC 9457)."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"basic": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "af_ + 43 URL-safe characters",
                           "description": "A personal API token. It acts with its user's role and forums; an "
                                          "unknown, expired or revoked token, or one whose user is deactivated, "
                                          "is refused with 401."},
                "basic": {"type": "http", "scheme": "basic",
                          "description": "Username and password (rate-limited like the login form)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "The web app's login session; POST needs the X-CSRFToken header."},
            },
        },
    }
