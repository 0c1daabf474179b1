"""Retry planning for a run that has not reached ARM, or that ARM refused: exponential backoff
within spec.retries, never sooner than ARM's Retry-After, longer for an input that may appear
later. Polls back off on their own terms (polls.py): a command in flight is not an attempt."""

from __future__ import annotations

from dataclasses import replace

from controller.vocabulary import EventType, Reason, State

from .attempts import attempt_fields
from .deadlines import deadline_exceeded, overdue
from .decision import Action, Decision, Event, Failure
from .durations import format_timestamp, seconds_after
from .history import fail
from .observation import Observation
from .run_settings import Settings

# Inputs another object provides, which GitOps may apply after the RunCommand.
_MAY_APPEAR_LATER = frozenset({Reason.FILES_NOT_FOUND, Reason.CREDENTIALS_NOT_FOUND})


def retry_backoff(attempts: int, settings: Settings, initial: float | None = None) -> float:
    exponent = min(max(attempts - 1, 0), 32)  # bounded: 2**32 s already exceeds any ceiling
    first = settings.retry_initial_seconds if initial is None else initial
    return min(settings.retry_max_seconds, first * 2.0**exponent)


def attempts_made(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def submit_again(seen: Observation, reason: str, message: str, delay: float) -> Decision:
    """Give the claim up and plan the next attempt in `delay` seconds, with a warning."""
    patch = seen.patch(
        State.SUBMITTING, reason, message,
        nextAttemptAt=format_timestamp(seconds_after(seen.now, delay)),
        claimedBy=None, claimedAt=None,
    )  # fmt: skip
    warning = Event(EventType.WARNING, reason, message)
    return Decision(Action.RETRY, patch, delay=delay, events=(warning,))


def after_prepare_error(seen: Observation, error: Failure) -> Decision:
    """Inputs, credentials, token or cluster lookup failed before anything was claimed or sent:
    retry within spec.retries if the error may pass, fail the run otherwise. Never Unknown."""
    run_fields = attempt_fields(seen)
    attempts = int(run_fields["attempts"])
    counted = seen.with_status(
        {key: value for key, value in {**seen.status, **run_fields}.items() if value is not None}
    )
    if overdue(counted):
        decision = deadline_exceeded(counted)
        return replace(decision, patch={**run_fields, **decision.patch})
    may_appear = error.code in _MAY_APPEAR_LATER
    if error.retryable and attempts <= seen.spec.retries:
        initial = seen.settings.missing_input_initial_seconds if may_appear else None
        delay = max(retry_backoff(attempts, seen.settings, initial), error.retry_after or 0.0)
        message = (
            f"nothing was sent: {error.code}: {error.message}; trying again in {delay:.0f}s "
            f"({attempts_made(attempts)} of {seen.spec.retries + 1})"
        )
        patch = counted.patch(
            State.PENDING, error.code, message,
            **{**run_fields, "nextAttemptAt": format_timestamp(seconds_after(seen.now, delay))},
        )  # fmt: skip
        event = Event(EventType.WARNING, error.code, message)
        return Decision(Action.RETRY, patch, delay=delay, events=(event,))
    suffix = f" after {attempts_made(attempts)}; nothing was sent" if error.retryable else ""
    if may_appear:  # nothing watches for it: say how to run once it exists
        suffix += "; once it exists, change spec.runToken to run again"
    message = f"{error.message}{suffix}"
    decision = fail(
        counted, error.code, message, f"{seen.spec.cluster.name}: {error.code}: {message}"
    )
    return replace(decision, patch={**run_fields, **decision.patch})
