"""plan: what the operator does when it looks at an object afresh."""

from __future__ import annotations

import copy
import uuid

from controller.core import Action, Event, Observation, plan

from .core_helpers import (
    CLUSTER,
    COMMAND_ID,
    NOW,
    RESOURCE_ID,
    SETTINGS,
    at,
    finished,
    iso,
    make_spec,
    merge,
    running,
    submitting,
    types,
)

CLEARED = (
    "commandId",
    "location",
    "provisioningState",
    "exitCode",
    "startedAt",
    "finishedAt",
    "duration",
    "logs",
    "logsTruncated",
    "logsBytes",
    "nextAttemptAt",
)


def test_first_sight_submits_and_records_the_attempt() -> None:
    spec = make_spec()
    decision = plan(Observation(spec, {}, 1, NOW, SETTINGS))

    assert decision.action is Action.SUBMIT
    assert decision.delay == 0.0
    assert decision.events == ()
    patch = decision.patch
    assert patch["state"] == "Submitting"
    assert patch["reason"] == "Submitting"
    assert patch["message"] == f"submitting the command to {CLUSTER}"
    assert patch["attempts"] == 1
    assert patch["submittedAt"] == "2025-03-01T12:00:00Z"
    assert patch["observedGeneration"] == 1
    assert patch["specHash"] == spec.run_hash
    assert patch["clusterName"] == CLUSTER
    assert patch["clusterId"] == RESOURCE_ID
    assert patch["correlationId"] == decision.correlation_id
    assert uuid.UUID(str(decision.correlation_id)).version == 4
    assert {key: patch[key] for key in CLEARED} == dict.fromkeys(CLEARED)
    assert types(patch) == {"Ready": "False", "Reconciling": "True"}


def test_each_submission_gets_a_fresh_correlation_id() -> None:
    spec = make_spec()
    first = plan(Observation(spec, {}, 1, NOW, SETTINGS))
    second = plan(Observation(spec, {}, 1, NOW, SETTINGS))
    assert first.correlation_id != second.correlation_id


def test_suspended_first_sight_stays_pending_without_reconciling() -> None:
    spec = make_spec(suspend=True)
    decision = plan(Observation(spec, {}, 1, NOW, SETTINGS))

    assert decision.action is Action.IDLE
    assert decision.correlation_id is None
    assert decision.patch["state"] == "Pending"
    assert decision.patch["reason"] == "Suspended"
    assert decision.patch["message"] == "spec.suspend is true: nothing is submitted"
    assert decision.patch["specHash"] == spec.run_hash
    # Results of an earlier run do not describe this spec: the merge patch clears them.
    assert decision.patch["attempts"] is None
    assert decision.patch["commandId"] is None and decision.patch["exitCode"] is None
    assert types(decision.patch) == {"Ready": "False"}


def test_resuming_a_suspended_object_submits_its_first_attempt() -> None:
    suspended = make_spec(suspend=True)
    status = merge({}, plan(Observation(suspended, {}, 1, NOW, SETTINGS)).patch)
    again = plan(Observation(suspended, status, 1, at(10), SETTINGS))
    assert (again.action, again.patch["state"]) == (Action.IDLE, "Pending")

    decision = plan(Observation(make_spec(suspend=False), status, 2, at(20), SETTINGS))

    assert decision.action is Action.SUBMIT
    assert decision.patch["attempts"] == 1
    assert decision.patch["submittedAt"] == iso(at(20))
    assert decision.patch["observedGeneration"] == 2


def test_reapplying_the_same_spec_after_success_does_nothing() -> None:
    spec = make_spec(runToken="1")
    status = finished(spec)
    assert status["state"] == "Succeeded"

    decision = plan(Observation(make_spec(runToken="1"), status, 1, at(3600), SETTINGS))

    assert decision.action is Action.IDLE
    assert decision.patch == {}
    assert decision.correlation_id is None


def test_toggling_only_suspend_after_success_just_observes_the_generation() -> None:
    status = finished(make_spec())

    decision = plan(Observation(make_spec(suspend=True), status, 2, at(3600), SETTINGS))

    assert decision.action is Action.IDLE
    expected = copy.deepcopy(status)
    expected["observedGeneration"] = 2
    for condition in expected["conditions"]:
        condition["observedGeneration"] = 2
    assert merge(status, decision.patch) == expected


def test_run_token_change_after_success_submits_a_new_run() -> None:
    status = finished(make_spec(runToken="1"))
    spec = make_spec(runToken="2")

    decision = plan(Observation(spec, status, 2, at(3600), SETTINGS))

    assert decision.action is Action.SUBMIT
    after = merge(status, decision.patch)
    assert after["state"] == "Submitting"
    assert after["attempts"] == 1
    assert after["specHash"] == spec.run_hash
    assert after["submittedAt"] == iso(at(3600))
    assert after["correlationId"] == decision.correlation_id
    assert not set(CLEARED) & set(after)  # the last run's details are gone
    assert [entry["runToken"] for entry in after["history"]] == ["1"]  # kept


def test_spec_change_while_running_waits_for_the_running_command() -> None:
    status = running(make_spec(command="sleep 600"))
    decision = plan(Observation(make_spec(command="sleep 1"), status, 2, at(5), SETTINGS))
    assert decision.action is Action.POLL
    after = merge(status, decision.patch)
    assert after["commandId"] == COMMAND_ID
    assert after["reason"] == "WaitingForRunningCommand"
    assert types(after) == {"Ready": "False", "Reconciling": "True"}


def test_running_with_a_command_id_resumes_polling() -> None:
    spec = make_spec()
    status = running(spec)
    assert status["commandId"] == COMMAND_ID

    decision = plan(Observation(spec, status, 1, at(30), SETTINGS))

    assert decision.action is Action.POLL
    assert decision.patch == {"observedGeneration": 1}
    assert decision.delay == 0.0


def test_crash_between_post_and_record_is_unknown_under_at_most_once() -> None:
    spec = make_spec()
    status = submitting(spec)
    correlation_id = status["correlationId"]

    decision = plan(Observation(spec, status, 1, at(60), SETTINGS))

    message = (
        f"this operator (operator) claimed this run at {iso(NOW)} and stopped before recording "
        f"ARM's answer to its POST (correlation id {correlation_id}). ARM may or may not have "
        "accepted the command, so it was not submitted again (submitPolicy is AtMostOnce). "
        "Check the cluster, then change spec.runToken to run it again."
    )
    assert decision.action is Action.IDLE
    assert decision.correlation_id is None
    assert decision.events == (Event("Warning", "SubmissionOutcomeUnknown", message),)
    after = merge(status, decision.patch)
    assert after["state"] == "Unknown"
    assert after["reason"] == "SubmissionOutcomeUnknown"
    assert after["message"] == message
    assert after["finishedAt"] == iso(at(60))
    assert after["attempts"] == 1
    assert types(after) == {"Ready": "False", "Stalled": "True"}
    assert after["history"] == [
        {
            "generation": 1,
            "state": "Unknown",
            "reason": "SubmissionOutcomeUnknown",
            "finishedAt": iso(at(60)),
        }
    ]


def test_crash_between_post_and_record_resubmits_under_at_least_once() -> None:
    spec = make_spec(submitPolicy="AtLeastOnce")
    status = submitting(spec)

    decision = plan(Observation(spec, status, 1, at(60), SETTINGS))

    assert decision.action is Action.RETRY
    assert decision.delay == 5.0
    assert decision.events == (
        Event(
            "Warning",
            "SubmissionOutcomeUnknown",
            f"this operator (operator) claimed this run at {iso(NOW)} and stopped before "
            "recording ARM's answer to its POST; submitting again in 5s because submitPolicy is "
            "AtLeastOnce",
        ),
    )
    resubmit = plan(Observation(spec, merge(status, decision.patch), 1, at(65), SETTINGS))
    assert resubmit.action is Action.SUBMIT
    assert resubmit.correlation_id not in (None, status["correlationId"])
    assert resubmit.patch["correlationId"] == resubmit.correlation_id
    assert resubmit.patch["attempts"] == 2
    assert resubmit.patch["submittedAt"] == iso(NOW)  # the run's deadline counts from the first
    assert resubmit.patch["state"] == "Submitting"


def test_at_least_once_gives_up_as_unknown_once_retries_are_spent() -> None:
    spec = make_spec(submitPolicy="AtLeastOnce", retries=2)
    last = plan(Observation(spec, {**submitting(spec), "attempts": 2}, 1, at(60), SETTINGS))
    status = {**submitting(spec), "attempts": 3}

    decision = plan(Observation(spec, status, 1, at(60), SETTINGS))

    assert last.action is Action.RETRY  # attempt 3 is still allowed (retries=2)

    assert decision.action is Action.IDLE
    assert decision.patch["state"] == "Unknown"
    assert decision.patch["message"].endswith(
        "so it was not submitted again (3 attempts made). Check the cluster, then change "
        "spec.runToken to run it again."
    )


def test_a_planned_retry_waits_for_the_remaining_delay() -> None:
    spec = make_spec()
    status = {**submitting(spec), "nextAttemptAt": iso(at(40))}

    decision = plan(Observation(spec, status, 1, at(15), SETTINGS))

    assert decision.action is Action.RETRY
    assert decision.delay == 25.0
    assert decision.patch == {"observedGeneration": 1}


def test_a_retry_that_is_due_submits_the_next_attempt() -> None:
    spec = make_spec()
    status = {**submitting(spec), "nextAttemptAt": iso(at(40))}

    decision = plan(Observation(spec, status, 1, at(40), SETTINGS))

    assert decision.action is Action.SUBMIT
    assert decision.patch["attempts"] == 2
    assert decision.patch["submittedAt"] == iso(NOW)
    assert decision.patch["nextAttemptAt"] is None
    assert "nextAttemptAt" not in merge(status, decision.patch)


def test_suspending_while_a_retry_is_planned_stops_submitting() -> None:
    status = {**submitting(make_spec()), "nextAttemptAt": iso(at(40))}

    decision = plan(Observation(make_spec(suspend=True), status, 2, at(50), SETTINGS))

    assert decision.action is Action.IDLE
    assert (decision.patch["state"], decision.patch["reason"]) == ("Pending", "Suspended")
    assert types(decision.patch) == {"Ready": "False"}


def test_finished_object_with_ttl_partly_elapsed_is_deleted_after_the_rest() -> None:
    spec = make_spec(ttlSecondsAfterFinished=600)
    status = finished(spec)  # finishedAt 12:01:35, i.e. at(95)

    decision = plan(Observation(spec, status, 1, at(95 + 200), SETTINGS))

    assert decision.action is Action.DELETE
    assert decision.delay == 400.0
    assert decision.patch == {}


def test_finished_object_past_its_ttl_is_deleted_now() -> None:
    spec = make_spec(ttlSecondsAfterFinished=60)
    decision = plan(Observation(spec, finished(spec), 1, at(7200), SETTINGS))
    assert (decision.action, decision.delay) == (Action.DELETE, 0.0)
