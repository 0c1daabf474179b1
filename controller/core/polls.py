"""Polling a command ARM accepted: how long to wait between polls (Retry-After, else backoff up
to the budget's cadence, never past the run's deadline), what a poll that finds it running
records, and what a failed poll means (the command runs on regardless: polls are not attempts).
A recorded command is polled whatever the spec says now; a changed spec's run waits for it."""

from __future__ import annotations

from controller.arm.models import CommandResult, CommandRunning
from controller.vocabulary import EventType, Reason, State

from .deadlines import by_the_deadline, deadline_exceeded, overdue
from .decision import Action, Decision, Event, Failure, Patch
from .history import fail
from .observation import Observation
from .results import after_result
from .run_settings import Settings


def next_poll_delay(
    previous: float, retry_after: float | None, settings: Settings, cadence: float | None = None
) -> float:
    """Retry-After when ARM gives one; otherwise back off from about 1 s to ``cadence``, the
    interval the budget allows now (core.pollrate; unknown: poll_max_seconds)."""
    if retry_after is not None:
        return max(0.0, retry_after)
    ceiling = settings.poll_max_seconds if cadence is None else cadence
    return min(ceiling, max(settings.poll_initial_seconds, previous * 2))


def after_poll(
    seen: Observation,
    answer: CommandRunning | CommandResult,
    previous_delay: float,
    cadence: float | None = None,
) -> Decision:
    if isinstance(answer, CommandRunning):
        return _still_running(seen, answer, previous_delay, cadence)
    return after_result(seen, answer)


def _still_running(
    seen: Observation, answer: CommandRunning, previous_delay: float, cadence: float | None
) -> Decision:
    status = seen.status
    if overdue(seen):
        return deadline_exceeded(seen)
    patch: Patch = {}
    if (
        status.get("provisioningState") != answer.provisioning_state
        or status.get("startedAt") != answer.started_at
        or status.get("reason") not in (Reason.SUBMITTED, Reason.RUNNING)  # a poll error's
    ) and status.get("reason") != Reason.WAITING_FOR_RUNNING_COMMAND:
        patch = seen.patch(
            State.RUNNING, Reason.RUNNING,
            f"command {status.get('commandId')} is running on {seen.spec.cluster.name}",
            provisioningState=answer.provisioning_state, startedAt=answer.started_at,
        )  # fmt: skip
    delay = next_poll_delay(previous_delay, answer.retry_after, seen.settings, cadence)
    return Decision(Action.POLL, patch, delay=by_the_deadline(seen, delay))


def after_poll_error(seen: Observation, error: Failure, previous_delay: float) -> Decision:
    """A poll failed. The command runs on regardless: retryable errors poll again (until the
    deadline) without counting attempts; a fatal one ends our watch."""
    if overdue(seen):
        return deadline_exceeded(seen)
    if error.retryable:
        backoff = min(
            seen.settings.retry_max_seconds,
            max(seen.settings.retry_initial_seconds, previous_delay * 2),
        )
        delay = by_the_deadline(seen, max(backoff, error.retry_after or 0.0))
        message = (
            f"polling command {seen.status.get('commandId')} failed with {error.code}: "
            f"{error.message}; retrying in {delay:.0f}s"
        )
        patch = seen.patch(State(seen.state or State.RUNNING), error.code, message)
        event = Event(EventType.WARNING, error.code, message)
        return Decision(Action.POLL, patch, delay=delay, events=(event,))
    return fail(
        seen, error.code, error.message, f"{seen.spec.cluster.name}: {error.code}: {error.message}"
    )


def keep_polling(seen: Observation) -> Decision:
    """A recorded command runs whatever the spec says now; a new run waits until it ends."""
    status = seen.status
    if seen.spec_moved_on:
        if status.get("reason") == Reason.WAITING_FOR_RUNNING_COMMAND:
            return Decision(Action.POLL, seen.observed())
        message = (
            f"the spec changed while command {status.get('commandId')} runs; ARM cannot cancel "
            "it, so the new run starts when it ends"
        )
        patch = seen.patch(State.RUNNING, Reason.WAITING_FOR_RUNNING_COMMAND, message)
        return Decision(Action.POLL, patch)
    if status.get("reason") == Reason.WAITING_FOR_RUNNING_COMMAND:  # the change was reverted
        message = f"command {status.get('commandId')} is running on {seen.spec.cluster.name}"
        return Decision(Action.POLL, seen.patch(State.RUNNING, Reason.RUNNING, message))
    return Decision(Action.POLL, seen.observed())
