"""AlmenFlow's BPMN engine. No web framework is imported anywhere in this package."""

from .clock import Clock, FrozenClock, SystemClock
from .engine import Engine
from .errors import (
    ConflictError,
    DeploymentError,
    EngineError,
    FormValidationError,
    InvalidInputError,
    InvalidStateError,
    MessageCorrelationError,
    NotFoundError,
    OptimisticLockingError,
    PermissionDeniedError,
    Problem,
    TaskAlreadyClaimedError,
    TaskAlreadyCompletedError,
)

__all__ = [
    "Clock", "ConflictError", "DeploymentError", "Engine", "EngineError", "FormValidationError", "FrozenClock",
    "InvalidInputError", "InvalidStateError", "MessageCorrelationError", "NotFoundError",
    "OptimisticLockingError", "PermissionDeniedError", "Problem", "SystemClock", "TaskAlreadyClaimedError",
    "TaskAlreadyCompletedError",
]
