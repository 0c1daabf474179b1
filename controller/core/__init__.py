"""The pure core: from a RunCommand's spec, its status and ARM's latest answer, decide what
happens next and which status patch records it. No I/O here, so it is tested in milliseconds.

Layering: ``core`` may import ``controller.arm``'s value types (the vocabulary of ARM answers),
never kopf, kubernetes or httpx; import-linter enforces it (``make lint``).
"""

from controller.vocabulary import EventType, Reason, State

from .backoff import after_prepare_error
from .decide import invalid_spec, plan
from .decision import Action, Decision, Event, Failure
from .input_rules import InputFailure
from .observation import Observation, command_handle
from .polls import after_poll, after_poll_error
from .run_settings import Settings
from .spec import InvalidSpec, RunSpec
from .submissions import after_submit, after_submit_error

__all__ = [
    "Action",
    "Decision",
    "Event",
    "EventType",
    "Failure",
    "InputFailure",
    "InvalidSpec",
    "Observation",
    "Reason",
    "RunSpec",
    "Settings",
    "State",
    "after_poll",
    "after_poll_error",
    "after_prepare_error",
    "after_submit",
    "after_submit_error",
    "command_handle",
    "invalid_spec",
    "plan",
]
