"""Marshmallow schemas of the JSON API: request bodies and query strings are loaded (validated) with
them, responses dumped with them, and /api/openapi.json is generated from them (openapi.py).

A field's `metadata["description"]` becomes its description in the OpenAPI document."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from engine.queries.paging import COUNT_CAP, MAX_OFFSET
from engine.services.runtime import STATUSES
from engine.services.tasks import TASK_SORTS

MAX_PAGE = 200


def _d(text: str, **more: object) -> dict[str, object]:
    return {"description": text, **more}


def _when(text: str) -> fields.String:
    """A moment as an ISO 8601 string with offset (the engine's read models already hold strings)."""
    return fields.String(allow_none=True, metadata=_d(text, format="date-time"))


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# -- shared ----------------------------------------------------------------------------------------
class DeploymentProblemSchema(Schema):
    file = fields.String(allow_none=True, metadata=_d("The resource the problem is in."))
    element_id = fields.String(allow_none=True, metadata=_d("The BPMN/DMN element, when known."))
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every error response (application/problem+json)."""

    type = fields.String(required=True, metadata=_d("A URI naming the kind of problem.", format="uri"))
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(metadata=_d("What went wrong in this request."))
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata=_d("Messages per field (invalid form data or request fields)."))
    problems = fields.List(fields.Nested(DeploymentProblemSchema),
                           metadata=_d("Every finding of a refused deployment."))


# -- definitions -----------------------------------------------------------------------------------
class FormFieldSchema(Schema):
    id = fields.String(required=True)
    label = fields.String(allow_none=True)
    type = fields.String(allow_none=True, metadata=_d("string, long, boolean, date, enum (camunda:formField type)."))
    default = fields.Raw(allow_none=True)
    validation = fields.Dict(keys=fields.String(), values=fields.Raw())
    properties = fields.Dict(keys=fields.String(), values=fields.Raw())
    options = fields.List(fields.Dict(keys=fields.String(), values=fields.Raw()),
                          metadata=_d("For enum fields: [{id, name}]."))


class DefinitionSchema(Schema):
    id = fields.Integer(required=True)
    key = fields.String(required=True, metadata=_d("The BPMN process id."))
    version = fields.Integer(required=True)
    name = fields.String(required=True)
    deployed_by = fields.String(allow_none=True)
    deployed_at = _when("When this version was deployed.")
    resource_name = fields.String(required=True, metadata=_d("The file the process was deployed from."))
    start_trigger = fields.Dict(keys=fields.String(), values=fields.Raw(), allow_none=True,
                                metadata=_d("A timer, message or signal start: {kind, expression|name, next}."))
    start_form = fields.List(fields.Nested(FormFieldSchema), metadata=_d("Fields of the start form."))


class DefinitionQuerySchema(StrictSchema):
    latest = fields.Boolean(load_default=False, metadata=_d("Only the newest version of each process."))


class DeployResultSchema(Schema):
    deployed = fields.List(fields.Nested(DefinitionSchema), required=True,
                           metadata=_d("New versions created by this deployment."))
    unchanged = fields.List(fields.Nested(DefinitionSchema), required=True,
                            metadata=_d("Processes whose deployed version was identical already."))


# -- tasks ---------------------------------------------------------------------------------------
class TaskSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    element_id = fields.String(required=True)
    forum = fields.String(allow_none=True, metadata=_d("The first candidate forum (lane or candidate group)."))
    candidate_groups = fields.List(fields.String(), required=True)
    instance_id = fields.Integer(required=True)
    assignee = fields.String(allow_none=True)
    due = _when("Due date, if any.")
    created = _when("When the task was created.")
    fields_ = fields.List(fields.Nested(FormFieldSchema), data_key="fields", attribute="fields",
                          metadata=_d("The task's form."))
    status = fields.String(required=True, validate=validate.OneOf(["open", "completed", "cancelled"]))
    documentation = fields.String(allow_none=True)
    completed_by = fields.String(allow_none=True)
    completed_at = _when("When the task was completed.")
    process_key = fields.String(allow_none=True)
    process_name = fields.String(allow_none=True)
    business_key = fields.String(allow_none=True)
    candidate_users = fields.List(fields.String(), metadata=_d("Users who may claim the task besides the forums."))
    follow_up = _when("Follow-up date (camunda:followUpDate), if any.")
    priority = fields.Integer(allow_none=True, metadata=_d("camunda:priority, if any."))


class PageSchema(Schema):
    total = fields.Integer(required=True, metadata=_d(
        f"Matches in all, counted up to {COUNT_CAP:,}; see total_exact."))
    total_exact = fields.Boolean(required=True, metadata=_d(
        f"false when there are more than {COUNT_CAP:,} matches (counting stops there; total is then {COUNT_CAP:,})."))
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next = fields.String(allow_none=True, required=True, metadata=_d(
        "Cursor of the next page: pass it as `after` (null on the last page). Deep pages cost what the first does."))


class TaskPageSchema(PageSchema):
    items = fields.List(fields.Nested(TaskSchema), required=True)


def _limit() -> fields.Integer:
    return fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE),
                          metadata=_d(f"Page size (1-{MAX_PAGE})."))


def _offset() -> fields.Integer:
    return fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET),
                          metadata=_d(f"Rows to skip (at most {MAX_OFFSET:,}; page further with `after`)."))


def _after() -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=2000),
                         metadata=_d("A page cursor: the `next` of the previous page."))


class TaskQuerySchema(StrictSchema):
    forum = fields.String(metadata=_d("Only tasks of this candidate forum."))
    process = fields.String(metadata=_d("Only tasks of this process key."))
    overdue = fields.Boolean(load_default=False, metadata=_d("Only tasks past their due date."))
    assigned = fields.String(validate=validate.OneOf(["me", "unassigned"]),
                             metadata=_d("me: assigned to the caller; unassigned: claimed by nobody."))
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "completed", "cancelled", "all"]))
    instance_id = fields.Integer(metadata=_d("The tasks of one case (any forum) instead of the caller's inbox."))
    sort = fields.String(load_default="due", validate=validate.OneOf(TASK_SORTS),
                         metadata=_d("due: overdue first, undated last; created: newest first; name; process."))
    limit = _limit()
    offset = _offset()
    after = _after()


class CompleteRequestSchema(StrictSchema):
    data = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict,
                       metadata=_d("Values of the task's form fields, by field id."))


class CompleteResultSchema(Schema):
    task = fields.Nested(TaskSchema, required=True)
    next_task = fields.Nested(TaskSchema, allow_none=True,
                              metadata=_d("The caller's next open task in the same case, if any."))


# -- instances -------------------------------------------------------------------------------------
class DefinitionRefSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    name = fields.String(allow_none=True)


class InstanceSummarySchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    definition = fields.Nested(DefinitionRefSchema, required=True)
    business_key = fields.String(allow_none=True)
    started_at = _when("When the case started.")
    started_by = fields.String(allow_none=True)
    ended_at = _when("When the case completed or was terminated.")
    next_due = _when("The next timer of the case.")
    incident = fields.String(allow_none=True, metadata=_d("The incident message, if the case has one."))


class InstancePageSchema(PageSchema):
    items = fields.List(fields.Nested(InstanceSummarySchema), required=True)


class IncidentSchema(Schema):
    message = fields.String(allow_none=True)
    element_id = fields.String(allow_none=True)
    time = _when("When the incident happened.")


class AuditEventSchema(Schema):
    id = fields.Integer(required=True)
    type = fields.String(required=True, metadata=_d("started, task_completed, suspended, message_received, ..."))
    time = _when("When it happened.")
    user = fields.String(allow_none=True)
    element_id = fields.String(allow_none=True)
    task_id = fields.Integer(allow_none=True)
    details = fields.Dict(keys=fields.String(), values=fields.Raw())


class WaitSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["timer", "message", "signal"]))
    element_id = fields.String(required=True)
    name = fields.String(allow_none=True, metadata=_d("The message name, or the timer event's name."))
    due = _when("When a timer fires.")


class InstanceSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    definition = fields.Nested(DefinitionRefSchema, required=True)
    business_key = fields.String(allow_none=True)
    data = fields.Dict(keys=fields.String(), values=fields.Raw(), metadata=_d("The case variables."))
    started_at = _when("When the case started.")
    started_by = fields.String(allow_none=True)
    ended_at = _when("When the case ended.")
    next_due = _when("The next timer of the case.")
    incident = fields.Nested(IncidentSchema, allow_none=True)
    tasks = fields.List(fields.Nested(TaskSchema), metadata=_d("Open tasks."))
    history = fields.List(fields.Nested(AuditEventSchema), metadata=_d("The audit trail, oldest first."))
    waits = fields.List(fields.Nested(WaitSchema), metadata=_d("Timers, messages and signals the case waits for."))
    completed_elements = fields.List(fields.String())
    active_elements = fields.List(fields.String())


class InstanceQuerySchema(StrictSchema):
    process = fields.String(metadata=_d("Process key."))
    version = fields.Integer(validate=validate.Range(min=1))
    status = fields.String(validate=validate.OneOf(STATUSES))
    business_key = fields.String(metadata=_d("Exact, or a prefix ending in * (K-2027-*)."))
    started_from = fields.AwareDateTime(default_timezone=None, metadata=_d("Started at or after (ISO 8601 with offset)."))
    started_to = fields.AwareDateTime(default_timezone=None, metadata=_d("Started before (ISO 8601 with offset)."))
    forum = fields.String(metadata=_d("Cases with an open task for this forum."))
    started_by = fields.String(metadata=_d("Cases started by this user (non-administrators: always themselves)."))
    limit = _limit()
    offset = _offset()
    after = _after()


class StartRequestSchema(StrictSchema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=255), metadata=_d("Process key."))
    business_key = fields.String(allow_none=True, validate=validate.Length(max=255))
    data = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict,
                       metadata=_d("Start form values (validated against the start form, if any)."))


class TerminateRequestSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class RetryRequestSchema(StrictSchema):
    data = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict,
                       metadata=_d("Variables to correct before the failed step runs again."))


class MessageRequestSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    business_key = fields.String(allow_none=True, metadata=_d("Correlate with the cases of this business key."))
    data = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=dict)
    all = fields.Boolean(load_default=False, metadata=_d("Deliver to every waiting case, not exactly one."))


class MessageResultSchema(Schema):
    instances = fields.List(fields.Integer(), required=True,
                            metadata=_d("The cases that received the message (or were started by it)."))
