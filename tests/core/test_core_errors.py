"""after_error: retryable vs fatal ARM failures, the submit budget, and outcome-unknown POSTs."""

from __future__ import annotations

import pytest

from controller.arm import (
    ArmResponseError,
    ArmTransportError,
    CommandRunning,
    MalformedLocationError,
    ResourceNotFoundError,
    SubmissionOutcomeUnknown,
    ThrottledError,
)
from controller.core import (
    Action,
    Event,
    Observation,
    after_poll,
    after_poll_error,
    after_prepare_error,
    after_submit_error,
    plan,
)
from controller.core.decide import invalid_spec

from .core_helpers import (
    CLUSTER,
    COMMAND_ID,
    NOW,
    SETTINGS,
    FakeFailure,
    at,
    iso,
    make_spec,
    merge,
    running,
    submitting,
    types,
)


def throttled(retry_after: float | None = None) -> ThrottledError:
    return ThrottledError(
        "Too many requests for subscription",
        status_code=429,
        code="TooManyRequests",
        retry_after=retry_after,
    )


def not_found() -> ResourceNotFoundError:
    return ResourceNotFoundError(
        f"The Resource 'Microsoft.ContainerService/managedClusters/{CLUSTER}' was not found.",
        status_code=404,
        code="ResourceNotFound",
    )


def missing_files() -> FakeFailure:
    """An input failure (not an ArmError) as the runtime raises it."""
    message = "ConfigMap default/manifests named in spec.filesFrom not found"
    return FakeFailure("FilesNotFound", message)


# retryable submit errors ------------------------------------------------------------------


def test_retryable_submit_error_plans_a_retry_and_keeps_the_state() -> None:
    spec = make_spec()
    status = submitting(spec)
    error = throttled()
    assert error.retryable

    decision = after_submit_error(Observation(spec, status, 1, at(1), SETTINGS), error)

    message = (
        "submission failed with TooManyRequests: Too many requests for subscription; retrying in 5s"
    )
    assert decision.action is Action.RETRY
    assert decision.delay == 5.0
    assert decision.events == (Event("Warning", "TooManyRequests", message),)
    after = merge(status, decision.patch)
    assert after["state"] == "Submitting"
    assert after["reason"] == "TooManyRequests"
    assert after["message"] == message
    assert after["nextAttemptAt"] == iso(at(6))
    assert after["attempts"] == 1  # the next plan counts the next attempt
    assert types(after) == {"Ready": "False", "Reconciling": "True"}


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (6, 160.0), (7, 300.0), (9, 300.0)],
)
def test_submit_backoff_grows_with_attempts_up_to_the_ceiling(attempts: int, delay: float) -> None:
    spec = make_spec(retries=10)
    status = {**submitting(spec), "attempts": attempts}
    decision = after_submit_error(Observation(spec, status, 1, NOW, SETTINGS), throttled())
    assert (decision.action, decision.delay) == (Action.RETRY, delay)
    assert decision.patch["nextAttemptAt"] == iso(at(delay))


@pytest.mark.parametrize(
    ("attempts", "retry_after", "delay"), [(1, 60.0, 60.0), (3, 2.0, 20.0), (1, 0.0, 5.0)]
)
def test_submit_backoff_honours_retry_after_when_longer(
    attempts: int, retry_after: float, delay: float
) -> None:
    spec = make_spec()
    status = {**submitting(spec), "attempts": attempts}
    error = throttled(retry_after)
    decision = after_submit_error(Observation(spec, status, 1, NOW, SETTINGS), error)
    assert decision.delay == delay


def test_retry_chain_waits_then_submits_the_next_attempt() -> None:
    spec = make_spec()
    status = submitting(spec)
    status = merge(
        status, after_submit_error(Observation(spec, status, 1, at(1), SETTINGS), throttled()).patch
    )

    waiting = plan(Observation(spec, status, 1, at(3), SETTINGS))
    due = plan(Observation(spec, status, 1, at(6), SETTINGS))

    assert (waiting.action, waiting.delay) == (Action.RETRY, 3.0)
    assert due.action is Action.SUBMIT
    after = merge(status, due.patch)
    assert (after["state"], after["attempts"], after["submittedAt"]) == ("Submitting", 2, iso(NOW))
    assert "nextAttemptAt" not in after


def test_retryable_input_error_is_retried_like_an_arm_error() -> None:
    spec = make_spec()
    decision = after_submit_error(
        Observation(spec, submitting(spec), 1, NOW, SETTINGS), missing_files()
    )
    assert decision.action is Action.RETRY
    assert decision.patch["reason"] == "FilesNotFound"


@pytest.mark.parametrize(("attempts", "delay"), [(1, 30.0), (2, 60.0), (3, 120.0), (5, 300.0)])
def test_an_input_that_may_appear_later_is_waited_for_minutes(attempts: int, delay: float) -> None:
    """GitOps applies a sync's objects in no set order: a filesFrom ConfigMap may come minutes
    after its RunCommand. Within spec.retries the waits grow from 30 s to 5 minutes (issue 24),
    not the 5 s of a throttled POST, and each says what is missing."""
    spec = make_spec(retries=10)
    status = {**submitting(spec), "state": "Pending", "attempts": attempts - 1}
    if attempts == 1:
        status = {}
    decision = after_prepare_error(Observation(spec, status, 1, NOW, SETTINGS), missing_files())
    assert (decision.action, decision.delay) == (Action.RETRY, delay)
    assert (
        "ConfigMap default/manifests named in spec.filesFrom not found"
        in (decision.patch["message"])
    )


def test_with_the_default_retries_a_missing_input_is_waited_for_minutes_then_said() -> None:
    spec = make_spec()  # retries: 3
    waited, status = 0.0, {}
    for _ in range(spec.retries):
        decision = after_prepare_error(Observation(spec, status, 1, NOW, SETTINGS), missing_files())
        assert decision.action is Action.RETRY
        waited += decision.delay
        status = merge(status, decision.patch)
    assert waited >= 180  # 30 + 60 + 120 s
    failed = after_prepare_error(Observation(spec, status, 1, NOW, SETTINGS), missing_files())
    assert failed.patch["state"] == "Failed" and failed.patch["reason"] == "FilesNotFound"
    message = failed.patch["message"]
    assert "ConfigMap default/manifests named in spec.filesFrom not found" in message
    assert "spec.runToken" in message  # how to run it once the input exists


def test_submit_retries_are_bounded_by_spec_retries() -> None:
    spec = make_spec(retries=2)
    last_retry = after_submit_error(
        Observation(spec, {**submitting(spec), "attempts": 2}, 1, NOW, SETTINGS), throttled()
    )
    status = {**submitting(spec), "attempts": 3}

    decision = after_submit_error(Observation(spec, status, 1, at(30), SETTINGS), throttled())

    assert last_retry.action is Action.RETRY
    message = "Too many requests for subscription after 3 attempts"
    assert decision.action is Action.IDLE
    assert decision.events == (
        Event("Warning", "Failed", f"{CLUSTER}: TooManyRequests: {message}"),
    )
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == (
        "Failed",
        "TooManyRequests",
        message,
    )
    assert types(after) == {"Ready": "False", "Stalled": "True"}
    assert after["history"][-1] == {
        "generation": 1,
        "state": "Failed",
        "reason": "TooManyRequests",
        "finishedAt": iso(at(30)),
    }


def test_zero_retries_fails_on_the_first_retryable_error() -> None:
    spec = make_spec(retries=0)
    error = ArmTransportError("connection reset by peer")
    decision = after_submit_error(Observation(spec, submitting(spec), 1, NOW, SETTINGS), error)
    assert decision.patch["state"] == "Failed"
    assert decision.patch["message"] == "connection reset by peer after 1 attempt"


# fatal errors -----------------------------------------------------------------------------


def test_fatal_error_fails_with_the_arm_code() -> None:
    spec = make_spec()
    status = submitting(spec)
    error = not_found()
    assert not error.retryable

    decision = after_submit_error(Observation(spec, status, 1, at(1), SETTINGS), error)

    assert decision.action is Action.IDLE
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == (
        "Failed",
        "ResourceNotFound",
        error.message,  # no "after N attempts": it was never retried
    )
    assert types(after) == {"Ready": "False", "Stalled": "True"}
    assert decision.events == (
        Event("Warning", "Failed", f"{CLUSTER}: ResourceNotFound: {error.message}"),
    )


def test_fatal_error_code_wins_over_a_retryable_status() -> None:
    spec = make_spec()
    error = ArmResponseError(
        "The value of parameter command is invalid.", status_code=500, code="InvalidParameter"
    )
    decision = after_submit_error(Observation(spec, submitting(spec), 1, NOW, SETTINGS), error)
    assert (decision.patch["state"], decision.patch["reason"]) == ("Failed", "InvalidParameter")


def test_fatal_error_with_ttl_schedules_deletion() -> None:
    spec = make_spec(ttlSecondsAfterFinished=120)
    decision = after_submit_error(
        Observation(spec, submitting(spec), 1, NOW, SETTINGS), not_found()
    )
    assert (decision.action, decision.delay) == (Action.DELETE, 120.0)


def test_error_past_the_deadline_ends_as_deadline_exceeded() -> None:
    spec = make_spec(timeoutSeconds=30)
    status = {**submitting(spec), "attempts": 2}
    decision = after_submit_error(Observation(spec, status, 1, at(31), SETTINGS), throttled())
    assert (decision.patch["state"], decision.patch["reason"]) == ("Failed", "DeadlineExceeded")


# submission outcome unknown ---------------------------------------------------------------


def test_outcome_unknown_is_not_resubmitted_under_at_most_once() -> None:
    spec = make_spec()
    status = submitting(spec)
    error = SubmissionOutcomeUnknown(
        "the POST timed out after it was sent", correlation_id=status["correlationId"]
    )

    decision = after_submit_error(Observation(spec, status, 1, at(30), SETTINGS), error)

    message = (
        f"the POST timed out after it was sent (correlation id {status['correlationId']}). "
        "ARM may or may not have accepted the command, so it was not submitted again "
        "(submitPolicy is AtMostOnce). Check the cluster, then change spec.runToken to run it "
        "again."
    )
    assert decision.action is Action.IDLE
    assert decision.events == (Event("Warning", "SubmissionOutcomeUnknown", message),)
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == (
        "Unknown",
        "SubmissionOutcomeUnknown",
        message,
    )
    assert types(after) == {"Ready": "False", "Stalled": "True"}


def test_malformed_location_is_an_unknown_outcome_too() -> None:
    spec = make_spec()
    status = submitting(spec)
    error = MalformedLocationError(
        "202 without a usable Location", correlation_id="c", location="ftp://x"
    )
    assert error.code == "MalformedLocation"

    decision = after_submit_error(Observation(spec, status, 1, NOW, SETTINGS), error)

    assert decision.action is Action.IDLE
    assert (decision.patch["state"], decision.patch["reason"]) == (
        "Unknown",
        "SubmissionOutcomeUnknown",
    )
    assert decision.patch["message"].startswith("202 without a usable Location (correlation id ")


def test_outcome_unknown_is_resubmitted_under_at_least_once() -> None:
    spec = make_spec(submitPolicy="AtLeastOnce")
    status = submitting(spec)
    error = SubmissionOutcomeUnknown("HTTP 503 on POST", correlation_id=status["correlationId"])

    decision = after_submit_error(Observation(spec, status, 1, at(2), SETTINGS), error)

    # Not at once: a retry is planned with backoff, recorded in status like any retry.
    message = "HTTP 503 on POST; submitting again in 5s because submitPolicy is AtLeastOnce"
    assert decision.action is Action.RETRY
    assert decision.delay == 5.0
    assert decision.patch["nextAttemptAt"] == iso(at(7))
    assert decision.patch["reason"] == "SubmissionOutcomeUnknown"
    assert decision.events == (Event("Warning", "SubmissionOutcomeUnknown", message),)
    after = merge(status, decision.patch)
    assert after["state"] == "Submitting"

    resubmit = plan(Observation(spec, after, 1, at(7), SETTINGS))
    assert resubmit.action is Action.SUBMIT
    assert resubmit.patch["attempts"] == 2
    assert resubmit.patch["correlationId"] == resubmit.correlation_id != status["correlationId"]


def test_a_malformed_location_is_never_resubmitted_even_at_least_once() -> None:
    spec = make_spec(submitPolicy="AtLeastOnce")
    status = submitting(spec)
    error = MalformedLocationError(
        "202 without a usable Location", correlation_id=status["correlationId"], location=None
    )

    decision = after_submit_error(Observation(spec, status, 1, at(2), SETTINGS), error)

    assert decision.patch["state"] == "Unknown"
    assert decision.patch["reason"] == "SubmissionOutcomeUnknown"


# poll errors ------------------------------------------------------------------------------


def test_retryable_poll_error_keeps_polling_without_consuming_attempts() -> None:
    spec = make_spec(retries=1)
    status = {**running(spec), "attempts": 2}  # the submit budget is already spent
    error = ArmTransportError("connection reset by peer")

    decision = after_poll_error(Observation(spec, status, 1, at(10), SETTINGS), error, 5.0)

    message = (
        f"polling command {COMMAND_ID} failed with ArmTransportError: connection reset by peer; "
        "retrying in 10s"
    )
    assert decision.action is Action.POLL
    assert decision.delay == 10.0  # doubles the last poll delay, not the submit attempts
    assert decision.events == (Event("Warning", "ArmTransportError", message),)
    assert "attempts" not in decision.patch
    assert "nextAttemptAt" not in decision.patch
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == (
        "Running",
        "ArmTransportError",
        message,
    )
    assert after["attempts"] == 2
    assert after["commandId"] == COMMAND_ID
    assert types(after) == {"Ready": "False", "Reconciling": "True"}


def test_poll_error_honours_retry_after() -> None:
    spec = make_spec()
    decision = after_poll_error(
        Observation(spec, running(spec), 1, NOW, SETTINGS), throttled(42.0), 0.0
    )
    assert (decision.action, decision.delay) == (Action.POLL, 42.0)


def test_a_successful_poll_after_a_poll_error_clears_the_error_reason() -> None:
    spec = make_spec()
    status = running(spec)
    answer = CommandRunning(started_at=None, retry_after=None, provisioning_state=None)
    status = merge(
        status, after_poll(Observation(spec, status, 1, at(1), SETTINGS), answer, 1.0).patch
    )
    status = merge(
        status,
        after_poll_error(Observation(spec, status, 1, at(2), SETTINGS), throttled(), 0.0).patch,
    )
    assert status["reason"] == "TooManyRequests"

    decision = after_poll(Observation(spec, status, 1, at(7), SETTINGS), answer, 5.0)

    after = merge(status, decision.patch)
    assert (after["state"], after["reason"]) == ("Running", "Running")
    assert after["message"] == f"command {COMMAND_ID} is running on {CLUSTER}"


def test_fatal_poll_error_fails_the_run() -> None:
    spec = make_spec()
    decision = after_poll_error(
        Observation(spec, running(spec), 1, NOW, SETTINGS), not_found(), 0.0
    )
    assert decision.action is Action.IDLE
    assert (decision.patch["state"], decision.patch["reason"]) == ("Failed", "ResourceNotFound")
    assert decision.patch["history"][-1]["commandId"] == COMMAND_ID


# invalid spec -----------------------------------------------------------------------------


def test_invalid_spec_fails_stalled_with_a_warning() -> None:
    decision = invalid_spec({}, 3, NOW, "invalid spec: spec.command is blank")

    assert decision.action is Action.IDLE
    assert decision.events == (
        Event("Warning", "InvalidSpec", "invalid spec: spec.command is blank"),
    )
    assert {k: decision.patch[k] for k in ("observedGeneration", "state", "reason")} == {
        "observedGeneration": 3,
        "state": "Failed",
        "reason": "InvalidSpec",
    }
    assert types(decision.patch) == {"Ready": "False", "Stalled": "True"}


# refusals that ran nothing: retried within spec.retries, final after -----------------------


def refused(code: str) -> ArmResponseError:
    """ARM's answer when the identity lacks an action; nothing ran."""
    return ArmResponseError(
        "The client 'operator' does not have authorization to perform action "
        "'Microsoft.ContainerService/managedClusters/runcommand/action'. If access was recently "
        "granted, please refresh your credentials.",
        status_code=403,
        code=code,
    )


@pytest.mark.parametrize("code", ["AuthorizationFailed", "LinkedAuthorizationFailed"])
def test_a_refused_authorization_is_retried_within_retries_then_final(code: str) -> None:
    """A role assignment takes minutes to reach ARM, and a refused POST ran nothing: the run
    waits with the usual backoff within spec.retries (as Azure Service Operator does), then
    fails with ARM's code and says what to grant."""
    spec = make_spec(retries=2)
    for attempts, delay in ((1, 5.0), (2, 10.0)):
        status = {**submitting(spec), "attempts": attempts}
        decision = after_submit_error(Observation(spec, status, 1, NOW, SETTINGS), refused(code))
        assert (decision.action, decision.delay) == (Action.RETRY, delay)
        assert decision.patch["reason"] == code

    status = {**submitting(spec), "attempts": 3}
    final = after_submit_error(Observation(spec, status, 1, NOW, SETTINGS), refused(code))

    after = merge(status, final.patch)
    assert (after["state"], after["reason"]) == ("Failed", code)
    assert after["message"].endswith("after 3 attempts")
    assert "commandResults/read" in after["message"]  # what to grant, beyond what ARM said


def test_a_refused_cluster_lookup_is_retried_within_retries_then_final() -> None:
    """The GET of the cluster (before any POST) refused for want of managedClusters/read."""
    spec = make_spec(retries=1)
    first = after_prepare_error(
        Observation(spec, {}, 1, NOW, SETTINGS), refused("AuthorizationFailed")
    )
    assert first.action is Action.RETRY
    status = merge({}, first.patch)
    final = after_prepare_error(
        Observation(spec, status, 1, NOW, SETTINGS), refused("AuthorizationFailed")
    )
    assert (final.patch["state"], final.patch["reason"]) == ("Failed", "AuthorizationFailed")


def test_a_policy_deny_is_final_at_once() -> None:
    """Azure Policy's deny stays until someone changes the policy: retrying cannot pass it."""
    spec = make_spec(retries=3)
    error = ArmResponseError(
        "Resource was disallowed by policy.", status_code=403, code="RequestDisallowedByPolicy"
    )
    decision = after_submit_error(Observation(spec, submitting(spec), 1, NOW, SETTINGS), error)
    assert decision.patch["state"] == "Failed"
    assert decision.patch["message"].startswith("Resource was disallowed by policy. An")
    assert "exemption" in decision.patch["message"]  # what a person can do
