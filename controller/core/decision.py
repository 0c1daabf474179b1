"""What a decision is: the action the wiring performs, the status patch that records it, and
the events it posts. Every policy module returns a :class:`Decision`; none performs it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from .fence import Fence
from .output import OutputRef, OutputWrite

Patch = dict[str, Any]


class Failure(Protocol):
    """What the core needs to know of a failed call: ARM errors and input errors alike. Each
    error carries its own classification; the core never inspects exception types."""

    code: str
    message: str
    retryable: bool
    retry_after: float | None
    outcome_unknown: bool  # a POST may have been accepted: never resend it blindly
    accepted: bool  # ARM certainly accepted it (a 202 whose Location cannot be used)


class Action(enum.Enum):
    IDLE = "idle"  # nothing to do until the object changes
    SUBMIT = "submit"  # prepare, write Decision.patch as the claim, then POST at once
    POLL = "poll"  # GET the result after Decision.delay seconds
    RETRY = "retry"  # look again (plan) after Decision.delay seconds
    DELETE = "delete"  # delete the object after Decision.delay seconds (ttlSecondsAfterFinished)


@dataclass(frozen=True)
class Event:
    type: str  # EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    action: Action
    patch: Patch = field(default_factory=dict)
    delay: float = 0.0
    events: tuple[Event, ...] = ()
    correlation_id: str | None = None
    finished: str | None = None  # the final state, when this decision ends a run
    # What the next poll's backoff doubles from, when not ``delay``: a first poll that waited
    # for the expected end of the run backs off from the initial interval if the run is late.
    backoff_from: float | None = None
    # The run's full output, written BEFORE the patch (which names it in logsRef), and the
    # output objects of runs that fell out of history, deleted after the patch landed.
    output: OutputWrite | None = None
    delete_outputs: tuple[OutputRef, ...] = ()
    # submitPolicy ExactlyOnce: the fence this submission ships (the wrapper runs the command).
    fence: Fence | None = None
