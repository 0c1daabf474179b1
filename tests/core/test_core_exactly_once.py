"""Exactly once, decided: watch fields never re-run, runs never overlap, claims are respected,
and nothing that failed before the POST is ever Unknown."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.arm import CommandRunning
from controller.core import (
    Action,
    Observation,
    after_poll,
    after_prepare_error,
    plan,
)
from controller.core.spec import run_hash

from .core_helpers import (
    COMMAND_ID,
    NOW,
    SETTINGS,
    FakeFailure,
    at,
    finished,
    iso,
    make_spec,
    merge,
    result,
    running,
    spec_dict,
    submitting,
    types,
)


def sign_in_refused(code: str = "AuthenticationFailed", *, retryable: bool = False) -> FakeFailure:
    message = "ClientSecretCredential could not get a token: AADSTS7000215"
    return FakeFailure(code, message, retryable=retryable)


@pytest.mark.parametrize(
    "change",
    [{"timeoutSeconds": 900}, {"retries": 7}, {"submitPolicy": "AtLeastOnce"}],
    ids=["timeoutSeconds", "retries", "submitPolicy"],
)
def test_watch_fields_change_the_current_run_and_never_submit(change: dict[str, object]) -> None:
    status = running(make_spec())
    edited = make_spec(**change)

    decision = plan(Observation(edited, status, 2, at(5), SETTINGS))

    assert edited.run_hash == make_spec().run_hash
    assert decision.action is Action.POLL
    assert merge(status, decision.patch)["commandId"] == COMMAND_ID


def test_a_status_hashed_before_watch_fields_were_excluded_is_the_same_run() -> None:
    raw = spec_dict(timeoutSeconds=600, retries=5)
    spec = make_spec(timeoutSeconds=600, retries=5)
    legacy = run_hash(raw, {**dict.fromkeys(("cluster", "command")), "timeoutSeconds": None,
                            "retries": 3, "files": None, "filesFrom": None, "context": None,
                            "credentials": None, "clusterToken": "Auto", "runToken": None,
                            "submitPolicy": "AtMostOnce"})  # fmt: skip
    status = {**finished(spec), "specHash": legacy}

    decision = plan(Observation(spec, status, 1, at(7200), SETTINGS))

    assert legacy != spec.run_hash
    assert decision.action is Action.IDLE
    assert decision.patch == {"specHash": spec.run_hash}


def test_raising_the_timeout_after_deadline_exceeded_resumes_the_same_command() -> None:
    spec = make_spec(timeoutSeconds=60)
    status = running(spec)

    expired = after_poll(
        Observation(spec, status, 1, at(60), SETTINGS), CommandRunning(None, None, "Running"), 1.0
    )
    status = merge(status, expired.patch)
    assert status["reason"] == "DeadlineExceeded"
    assert [entry["commandId"] for entry in status["history"]] == [COMMAND_ID]

    decision = plan(Observation(make_spec(timeoutSeconds=3600), status, 2, at(90), SETTINGS))

    assert decision.action is Action.POLL
    resumed = merge(status, decision.patch)
    assert (resumed["state"], resumed["commandId"]) == ("Running", COMMAND_ID)
    assert resumed["history"] == []
    assert types(resumed) == {"Ready": "False", "Reconciling": "True"}
    done = after_poll(
        Observation(make_spec(timeoutSeconds=3600), resumed, 2, at(120), SETTINGS), result(0), 1.0
    )
    assert [entry["commandId"] for entry in merge(resumed, done.patch)["history"]] == [COMMAND_ID]


def test_a_run_superseded_while_running_lands_in_history_then_the_new_run_starts() -> None:
    old = make_spec(command="sleep 40")
    status = running(old)
    new = make_spec(command="sleep 1")

    waiting = plan(Observation(new, status, 2, at(5), SETTINGS))
    status = merge(status, waiting.patch)
    assert waiting.action is Action.POLL and status["reason"] == "WaitingForRunningCommand"

    ended = after_poll(Observation(new, status, 2, at(40), SETTINGS), result(0), 1.0)
    status = merge(status, ended.patch)
    assert ended.action is Action.RETRY and ended.delay == 0.0
    assert status["state"] == "Pending" and "commandId" not in status
    assert types(status) == {"Ready": "False", "Reconciling": "True"}
    assert status["history"][-1]["commandId"] == COMMAND_ID
    assert status["history"][-1]["generation"] == 1  # the run's generation, not the spec's

    nxt = plan(Observation(new, status, 2, at(41), SETTINGS))
    assert nxt.action is Action.SUBMIT
    assert nxt.patch["specHash"] == new.run_hash and nxt.patch["attempts"] == 1


def test_a_live_claim_of_another_operator_is_waited_for_never_taken_over() -> None:
    spec = make_spec()
    status = submitting(spec)  # claimed by SETTINGS.holder
    other = replace(SETTINGS, holder="operator-b")

    waiting = plan(Observation(spec, status, 1, at(10), other))

    assert waiting.action is Action.RETRY
    assert waiting.delay == SETTINGS.claim_lease_seconds - 10
    assert waiting.patch["reason"] == "WaitingForClaim"
    assert waiting.patch["state"] == "Submitting"

    expired = plan(Observation(spec, status, 1, at(SETTINGS.claim_lease_seconds), other))
    after = merge(status, expired.patch)
    assert after["state"] == "Unknown"
    assert "operator operator claimed this run" in after["message"]


def test_a_spec_change_never_abandons_a_claim_in_flight() -> None:
    status = submitting(make_spec(command="sleep 40"))
    other = replace(SETTINGS, holder="operator-b")

    decision = plan(Observation(make_spec(command="true"), status, 2, at(1), other))

    assert decision.action is Action.RETRY  # wait for the claim, then start the new run


def test_sign_in_failures_before_the_claim_fail_without_unknown() -> None:
    spec = make_spec()

    decision = after_prepare_error(Observation(spec, {}, 1, NOW, SETTINGS), sign_in_refused())

    after = merge({}, decision.patch)
    assert (after["state"], after["reason"]) == ("Failed", "AuthenticationFailed")
    assert after["specHash"] == spec.run_hash
    assert "correlationId" not in after
    assert plan(Observation(spec, after, 1, at(5), SETTINGS)).action is Action.IDLE


def test_a_retryable_input_error_is_pending_and_a_crash_then_is_never_unknown() -> None:
    spec = make_spec()
    refused = sign_in_refused("TokenEndpointUnreachable", retryable=True)

    decision = after_prepare_error(Observation(spec, {}, 1, NOW, SETTINGS), refused)
    status = merge({}, decision.patch)

    assert decision.action is Action.RETRY
    assert (status["state"], status["attempts"]) == ("Pending", 1)
    assert status["nextAttemptAt"] == iso(at(5))
    assert "nothing was sent" in status["message"]
    # The operator restarts long after: it tries again, it never reports Unknown.
    again = plan(Observation(spec, status, 1, at(60), replace(SETTINGS, holder="restarted")))
    assert again.action is Action.SUBMIT
    assert again.patch["attempts"] == 2


def test_huge_durations_accepted_by_an_older_crd_do_not_overflow() -> None:
    spec = make_spec(timeoutSeconds=10**15, ttlSecondsAfterFinished=10**15)
    status = running(spec)

    still = after_poll(
        Observation(spec, status, 1, at(5), SETTINGS), result(state="Running", exit_code=None), 1.0
    )
    done = after_poll(Observation(spec, status, 1, at(5), SETTINGS), result(0), 1.0)
    again = plan(Observation(spec, merge(status, done.patch), 2, at(10), SETTINGS))

    assert still.action is not None
    assert done.action is Action.DELETE
    assert again.action is Action.DELETE
    assert again.patch["observedGeneration"] == 2


def test_output_cut_by_arm_is_explained_in_the_message_and_an_event() -> None:
    spec = make_spec()
    logs = "x" * (512 * 1024)

    decision = after_poll(
        Observation(spec, running(spec), 1, at(9), SETTINGS), result(0, logs=logs), 1
    )

    assert "ARM cut the output" in decision.patch["message"]
    assert [event.reason for event in decision.events] == ["Succeeded", "LogsTruncated"]
    # The product speaks of ARM, never of the emulator that stands in for it in tests.
    assert "emulator" not in decision.patch["message"]
    assert all("emulator" not in event.message for event in decision.events)
