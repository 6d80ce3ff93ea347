"""Typed engine exceptions. Callers (CLI, web, API) map them to exit codes and HTTP statuses."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine reports to a caller on purpose."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(EngineError):
    http_status = 404


class DeploymentError(EngineError):
    """A BPMN/DMN resource was refused. `problems` lists every finding; nothing was stored."""

    http_status = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class Problem:
    """One finding of deploy-time validation: which file, which element, what is wrong."""

    def __init__(self, file: str | None, element_id: str | None, message: str) -> None:
        self.file = file
        self.element_id = element_id
        self.message = message

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.element_id:
            where += f", element '{self.element_id}'"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return {"file": self.file, "element_id": self.element_id, "message": self.message}


class FormValidationError(EngineError):
    """Submitted task data does not satisfy the task's form. `errors` maps field id -> messages."""

    http_status = 422

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        fields = ", ".join(f"{k}: {' '.join(v)}" for k, v in sorted(errors.items()))
        super().__init__(f"invalid form data ({fields})")


class InvalidInputError(EngineError):
    """Bad input that is not a form field problem (malformed JSON data, unknown option...)."""


class ConflictError(EngineError):
    http_status = 409


class TaskAlreadyCompletedError(ConflictError):
    pass


class TaskAlreadyClaimedError(ConflictError):
    pass


class OptimisticLockingError(ConflictError):
    """The instance changed since it was loaded; the caller may reload and retry."""


class InvalidStateError(ConflictError):
    """The operation is not allowed in the instance's current state (e.g. complete on a suspended case)."""


class PermissionDeniedError(EngineError):
    http_status = 403


class AuthenticationError(EngineError):
    """Credentials (e.g. an API token) that do not identify an active user: unknown, expired or revoked."""

    http_status = 401


class MessageCorrelationError(EngineError):
    """No (or, for a single-target correlation, more than one) instance waits for the message."""

    http_status = 404


class StateNotStorable(ConflictError):
    """A step produced state that cannot be stored. The step is rolled back and the case gets an
    incident (RuntimeService.retrying); the caller sees this error, nothing of the step is kept."""

    def __init__(self, message: str, instance_id: int | None = None) -> None:
        super().__init__(message)
        self.instance_id = instance_id


class ScriptError(EngineError):
    """A script or expression failed: it becomes an incident on the instance."""
