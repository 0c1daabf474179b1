"""What ARM's answer to a POST means: an accepted command is recorded before anything else; a
certain refusal is retried within spec.retries; a POST whose fate is unknown is sent again only
where submitPolicy allows (AtLeastOnce while retries remain, ExactlyOnce behind its fence), and
otherwise ends the run Unknown."""

from __future__ import annotations

import math

from controller.arm.models import CommandHandle
from controller.vocabulary import EventType, Reason, State

from .backoff import attempts_made, retry_backoff, submit_again
from .deadlines import by_the_deadline, deadline_exceeded, overdue
from .decision import Action, Decision, Event, Failure
from .durations import first_poll_seconds
from .history import fail, finish
from .observation import Observation


def after_submit(
    seen: Observation,
    handle: CommandHandle,
    expected_seconds: float | None = None,
    cadence: float | None = None,
) -> Decision:
    """ARM accepted the POST: record the command id before anything else happens.

    The first poll waits a little longer than ``expected_seconds`` (how long recent runs like
    this one took, see core.durations) when known, but no more than half a ``cadence`` (the
    interval the budget allows between polls, see core.pollrate) past it, so a run that ends on
    time is seen well within one cadence; never less than ARM's Retry-After."""
    message = f"command {handle.command_id} submitted to {seen.spec.cluster.name}"
    patch = seen.patch(
        State.RUNNING, Reason.SUBMITTED, message,
        commandId=handle.command_id, location=handle.location,
        correlationId=handle.correlation_id, nextAttemptAt=None,
    )  # fmt: skip
    if expected_seconds is not None:
        within = math.inf if cadence is None else cadence
        delay = max(handle.retry_after or 0.0, first_poll_seconds(expected_seconds, within))
    elif handle.retry_after is not None:
        delay = handle.retry_after
    else:
        delay = seen.settings.poll_initial_seconds
    submitted = Event(EventType.NORMAL, Reason.SUBMITTED, message)
    backoff_from = seen.settings.poll_initial_seconds / 2 if expected_seconds is not None else None
    return Decision(
        Action.POLL,
        patch,
        delay=by_the_deadline(seen, delay),
        events=(submitted,),
        backoff_from=backoff_from,
    )


def after_submit_error(seen: Observation, error: Failure) -> Decision:
    """The POST was refused, or its fate is unknown. Only a certain refusal is retried."""
    if error.outcome_unknown:
        return outcome_unknown(seen, error.message, accepted=error.accepted)
    if overdue(seen):
        return deadline_exceeded(seen)
    attempts = seen.attempts
    if error.retryable and attempts <= seen.spec.retries:
        delay = max(retry_backoff(attempts, seen.settings), error.retry_after or 0.0)
        message = f"submission failed with {error.code}: {error.message}; retrying in {delay:.0f}s"
        return submit_again(seen, error.code, message, delay)
    suffix = f" after {attempts_made(attempts)}" if error.retryable else ""
    message = f"{error.message}{suffix}"
    return fail(seen, error.code, message, f"{seen.spec.cluster.name}: {error.code}: {message}")


def outcome_unknown(seen: Observation, why: str, *, accepted: bool = False) -> Decision:
    """ARM may have accepted the command. `accepted`: it certainly did (a 202 whose Location
    cannot be used), so AtLeastOnce must not submit it again. ExactlyOnce submits the same
    run again, accepted or not: its fence lets the command run once whatever happens, so
    only spec.retries and the run's deadline bound the resubmissions."""
    spec, attempts = seen.spec, seen.attempts
    if spec.exactly_once and seen.status.get("fence"):  # the submission in doubt was fenced
        return resubmit_fenced(seen, why)
    retry = spec.at_least_once and attempts <= spec.retries and not accepted
    if retry and not seen.spec_moved_on:
        delay = retry_backoff(attempts, seen.settings)
        message = f"{why}; submitting again in {delay:.0f}s because submitPolicy is AtLeastOnce"
        return submit_again(seen, Reason.SUBMISSION_OUTCOME_UNKNOWN, message, delay)
    if spec.exactly_once:
        policy = "it was sent without a fence, before submitPolicy became ExactlyOnce"
    elif spec.at_least_once:
        policy = f"{attempts_made(attempts)} made"
    else:
        policy = "submitPolicy is AtMostOnce"
    message = (
        f"{why} (correlation id {seen.status.get('correlationId')}). ARM may or may not have "
        f"accepted the command, so it was not submitted again ({policy}). Check the cluster, "
        "then change spec.runToken to run it again."
    )
    return _unknown(seen, message)


def may_resubmit_fenced(seen: Observation) -> bool:
    """A resubmission of a fenced run may be sent again: within retries and the deadline."""
    return (
        bool(seen.status.get("fence"))
        and seen.spec.exactly_once
        and 1 < seen.attempts <= seen.spec.retries
        and not overdue(seen)
        and not seen.spec_moved_on
    )


def resubmit_fenced(seen: Observation, why: str) -> Decision:
    attempts, retries = seen.attempts, seen.spec.retries
    fence = seen.status.get("fence")
    if attempts <= retries and not overdue(seen) and not seen.spec_moved_on:
        delay = retry_backoff(attempts, seen.settings)
        message = (
            f"{why}; submitting the same run again in {delay:.0f}s (attempt {attempts + 1} "
            f"of at most {retries + 1}): submitPolicy is ExactlyOnce, and its fence {fence} "
            "in the cluster lets the command run only once"
        )
        return submit_again(seen, Reason.SUBMISSION_OUTCOME_UNKNOWN, message, delay)
    if seen.spec_moved_on:
        stop = "the spec has changed since"
    elif attempts > retries:
        stop = f"{attempts_made(attempts)} made (spec.retries is {retries})"
    else:
        stop = f"the run's deadline ({seen.timeout_seconds}s) has passed"
    message = (
        f"{why} (correlation id {seen.status.get('correlationId')}). The run was not "
        f"submitted again: {stop}. If the command ran, fence {fence} in namespace "
        "aks-command of the cluster holds its exit code and output; change spec.runToken "
        "to run it again."
    )
    return _unknown(seen, message)


def _unknown(seen: Observation, message: str) -> Decision:
    event = Event(EventType.WARNING, Reason.SUBMISSION_OUTCOME_UNKNOWN, message)
    return finish(seen, State.UNKNOWN, Reason.SUBMISSION_OUTCOME_UNKNOWN, message, (event,))
