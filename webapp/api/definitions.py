"""API: process definitions (list, deploy)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import request

from engine.parsing import Resource
from engine.services.definitions import SUFFIXES

from ..access import engine, is_owner, may_start
from .auth import role_required, username
from .problems import ApiProblem
from .registry import operation
from .schemas import DefinitionQuerySchema, DefinitionSchema, DeployResultSchema


@operation("/definitions", "GET", tag="definitions", summary="List process definitions",
           query=DefinitionQuerySchema, response=DefinitionSchema, many=True,
           description="Every version of every process for process owners and administrators; "
                       "for forum members the processes they may start (latest versions).")
def list_definitions(query: dict[str, Any]) -> Any:
    if not is_owner():
        return [d.to_dict() for d in engine().definitions.list(latest_only=True) if may_start(d.key)]
    return [d.to_dict() for d in engine().definitions.list(latest_only=query["latest"])]


@operation("/definitions", "POST", tag="definitions", summary="Deploy BPMN/DMN files",
           files="files", response=DeployResultSchema, status=201, errors=(400, 403, 413, 422),
           description="multipart/form-data with one or more `files` (.bpmn, .dmn). All or nothing: a "
                       "refused deployment (422) lists every problem and stores nothing. Process owners "
                       "and administrators only.")
def deploy() -> Any:
    role_required("owner", "admin")
    uploads = [(f, f.filename) for f in request.files.getlist("files") if f and f.filename]
    if not uploads:
        raise ApiProblem(400, "invalid-request", "Send one or more files in the multipart field 'files'.",
                         "Invalid request", errors={"files": ["At least one .bpmn or .dmn file is required."]})
    resources = []
    for upload, filename in uploads:
        name = PurePath(filename.replace("\\", "/")).name[:255]
        if not name.lower().endswith(SUFFIXES):
            raise ApiProblem(400, "invalid-request", f"'{name}' is not a .bpmn or .dmn file.", "Invalid request",
                             errors={"files": [f"{name}: only {', '.join(SUFFIXES)} files can be deployed."]})
        resources.append(Resource(name, upload.read()))
    result = engine().definitions.deploy(resources, user=username())
    return {"deployed": [d.to_dict() for d in result["deployed"]],
            "unchanged": [d.to_dict() for d in result["unchanged"]]}
