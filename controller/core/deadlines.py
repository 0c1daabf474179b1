"""The run's deadline: timeoutSeconds (or the default) after its first submission. It ends the
operator's watch, not ARM's command (ARM has no cancel), so no poll waits past it, and a raised
timeoutSeconds resumes watching a command the old deadline gave up on."""

from __future__ import annotations

from datetime import datetime

from controller.vocabulary import EventType, Reason, State

from .decision import Action, Decision, Event
from .durations import parse_timestamp, seconds_after
from .history import fail
from .observation import Observation, command_handle


def run_deadline(seen: Observation, submitted_at: object) -> datetime | None:
    """When a run first submitted at `submitted_at` stops being watched (None: not yet)."""
    submitted = parse_timestamp(submitted_at)
    return None if submitted is None else seconds_after(submitted, seen.timeout_seconds)


def overdue(seen: Observation) -> bool:
    deadline = run_deadline(seen, seen.status.get("submittedAt"))
    return deadline is not None and seen.now >= deadline


def by_the_deadline(seen: Observation, delay: float) -> float:
    """`delay`, or less: no poll waits past the deadline (timeoutSeconds after the first
    submission), where a command still running ends the watch. Else a first poll planned
    for later would find the command finished, and call a run on time that was not."""
    deadline = run_deadline(seen, seen.status.get("submittedAt"))
    if deadline is None:
        return delay
    left = (deadline - seen.now).total_seconds()
    return max(0.0, min(delay, left))


def deadline_exceeded(seen: Observation) -> Decision:
    command = seen.status.get("commandId") or "not submitted"
    return fail(
        seen,
        Reason.DEADLINE_EXCEEDED,
        f"no result after {seen.timeout_seconds}s (command {command}); stopped waiting. ARM "
        "has no cancel API, so the command itself may still run; raise "
        "spec.timeoutSeconds to resume watching it",
    )


def resumable(seen: Observation) -> bool:
    """A deadline ends our watch, not ARM's command: with a longer timeout, watch it again."""
    status = seen.status
    return (
        status.get("reason") == Reason.DEADLINE_EXCEEDED
        and command_handle(status) is not None
        and not seen.spec_moved_on
        and not overdue(seen)
    )


def resume(seen: Observation) -> Decision:
    status = seen.status
    history = list(status.get("history") or ())
    if history and history[-1].get("commandId") == status.get("commandId"):
        history.pop()  # the run is not over after all; it is recorded again when it ends
    message = (
        f"spec.timeoutSeconds is now {seen.timeout_seconds}s: watching command "
        f"{status.get('commandId')} again"
    )
    patch = seen.patch(
        State.RUNNING, Reason.RUNNING, message, history=history, finishedAt=None, duration=None
    )
    return Decision(Action.POLL, patch, events=(Event(EventType.NORMAL, Reason.RESUMED, message),))
