"""The pure core: from a RunCommand's spec, its status and ARM's latest answer, decide what
happens next and which status patch records it. No I/O here, so it is tested in milliseconds.

Layering: ``core`` may import ``controller.arm`` models and errors (the vocabulary of ARM
answers), never kopf, kubernetes or httpx clients.
"""

from .decide import (
    Action,
    Decision,
    Event,
    Settings,
    after_error,
    after_poll,
    after_submit,
    invalid_spec,
    plan,
)
from .spec import InvalidSpec, RunSpec

__all__ = [
    "Action",
    "Decision",
    "Event",
    "InvalidSpec",
    "RunSpec",
    "Settings",
    "after_error",
    "after_poll",
    "after_submit",
    "invalid_spec",
    "plan",
]
