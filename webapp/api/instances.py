"""API: cases (start, list, read, suspend/resume/terminate/retry) and messages."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import url_for

from ..access import engine, is_admin, may_start, may_view_instance
from .auth import locale, role_required, username
from .paging import page_fields
from .problems import ApiProblem
from .registry import operation
from .schemas import (
    InstancePageSchema,
    InstanceQuerySchema,
    InstanceSchema,
    MessageRequestSchema,
    MessageResultSchema,
    RetryRequestSchema,
    StartRequestSchema,
    TerminateRequestSchema,
)

ADMIN_ONLY = "Administrators only."


@operation("/instances", "POST", tag="instances", summary="Start a case", body=StartRequestSchema,
           response=InstanceSchema, status=201, errors=(400, 403, 404, 422),
           description="Starts the latest version of process `key` with `data` validated against its start "
                       "form (422 with errors per field). Any user may start the open processes; process "
                       "owners and administrators any process.")
def start(body: dict[str, Any]) -> Any:
    if not may_start(body["key"]):
        raise ApiProblem(403, "forbidden", f"You may not start process '{body['key']}'.")
    inst = engine().runtime.start_with_form(body["key"], body["data"], username(),
                                            business_key=body.get("business_key") or None,
                                            locale=locale())
    return inst.to_dict(), {"Location": url_for("api.get_instance", instance_id=inst.id)}


@operation("/instances", "GET", tag="instances", summary="List cases", query=InstanceQuerySchema,
           response=InstancePageSchema, errors=(400,),
           description="Newest first, one page at a time. Administrators see every case; other users the "
                       "cases they started.")
def list_instances(query: dict[str, Any]) -> Any:
    started_by = query.get("started_by") if is_admin() else username()
    started_from, started_to = query.get("started_from"), query.get("started_to")
    result = engine().runtime.page(
        status=query.get("status"), key=query.get("process"), business_key=query.get("business_key"),
        version=query.get("version"), forum=query.get("forum"), started_by=started_by,
        started_from=started_from.astimezone(UTC) if started_from else None,
        started_to=started_to.astimezone(UTC) if started_to else None,
        limit=query["limit"], offset=query["offset"], after=query.get("after"))
    return {"items": result.items, **page_fields(result, query)}


def _visible(instance_id: int) -> Any:
    inst = engine().runtime.get(instance_id)  # NotFoundError -> 404
    if not may_view_instance(inst):
        raise ApiProblem(403, "forbidden", f"You may not see case {instance_id}.")
    return inst


@operation("/instances/<int:instance_id>", "GET", tag="instances", summary="Read a case",
           response=InstanceSchema, errors=(403, 404),
           description="Variables, open tasks, waits and the audit trail. Administrators, whoever started "
                       "the case, and members who have or had a task in it.")
def get_instance(instance_id: int) -> Any:
    return _visible(instance_id).to_dict()


@operation("/instances/<int:instance_id>/suspend", "POST", tag="instances", summary="Suspend a case",
           response=InstanceSchema, errors=(403, 404, 409), description=ADMIN_ONLY)
def suspend(instance_id: int) -> Any:
    role_required("admin")
    return engine().runtime.suspend(instance_id, username()).to_dict()


@operation("/instances/<int:instance_id>/resume", "POST", tag="instances", summary="Resume a suspended case",
           response=InstanceSchema, errors=(403, 404, 409), description=ADMIN_ONLY)
def resume(instance_id: int) -> Any:
    role_required("admin")
    return engine().runtime.resume(instance_id, username()).to_dict()


@operation("/instances/<int:instance_id>/terminate", "POST", tag="instances", summary="Terminate a case",
           body=TerminateRequestSchema, response=InstanceSchema, errors=(400, 403, 404, 409),
           description="Ends the case for good; open tasks are cancelled. A reason is required. " + ADMIN_ONLY)
def terminate(instance_id: int, body: dict[str, Any]) -> Any:
    role_required("admin")
    return engine().runtime.terminate(instance_id, username(), body["reason"]).to_dict()


@operation("/instances/<int:instance_id>/retry", "POST", tag="instances", summary="Retry a case's incident",
           body=RetryRequestSchema, response=InstanceSchema, errors=(400, 403, 404, 409),
           description="Runs the failed step again, after setting `data` (corrected variables). " + ADMIN_ONLY)
def retry(instance_id: int, body: dict[str, Any]) -> Any:
    role_required("admin")
    return engine().runtime.retry(instance_id, username(), body["data"] or None).to_dict()


@operation("/messages", "POST", tag="instances", summary="Send (correlate) a message", body=MessageRequestSchema,
           response=MessageResultSchema, errors=(400, 403, 404),
           description="Delivers message `name` to the case waiting for it (filtered by `business_key`; "
                       "`all` for every waiting case), or starts the process whose start event is that "
                       "message. Nothing waiting: 404. " + ADMIN_ONLY)
def correlate(body: dict[str, Any]) -> Any:
    role_required("admin")
    ids = engine().runtime.correlate(body["name"], business_key=body.get("business_key"), data=body["data"],
                                     user=username(), all_instances=body["all"])
    return {"instances": ids}
