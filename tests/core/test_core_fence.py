"""submitPolicy ExactlyOnce, decided: every submission of a run ships the same fence, an
in-doubt submission is submitted again within spec.retries and the deadline, and the wrapper's
own answers (fence unavailable, no result, too late) become reasons a person can act on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.arm import MalformedLocationError, SubmissionOutcomeUnknown
from controller.core import Action, Observation, after_poll, after_submit_error, plan
from controller.core.fence import WRAPPER_DIR, Fence, fence_name, verdict
from controller.core.set_children import Child, SetObservation
from controller.core.set_round import plan_set
from controller.core.set_spec import SetSpec
from controller.core.spec import RunSpec
from controller.vocabulary import EXPIRES_LABEL

from .core_helpers import (
    NOW,
    SETTINGS,
    at,
    iso,
    make_spec,
    merge,
    result,
    running,
    spec_dict,
)

UID = "0f8e6c52-3c1d-4d0e-9d55-1b2f3a4c5d6e"


def seen(spec: Any, status: dict[str, Any], seconds: float = 0) -> Observation:
    return Observation(spec, status, 1, at(seconds), SETTINGS, "deploy", UID)


def claimed(spec: Any, status: dict[str, Any] | None = None, seconds: float = 0) -> Any:
    """The SUBMIT decision for the run, and the status once its claim was written."""
    decision = plan(seen(spec, status or {}, seconds))
    assert decision.action is Action.SUBMIT
    return decision, merge(status or {}, decision.patch)


def in_doubt(spec: Any, status: dict[str, Any], seconds: float) -> dict[str, Any]:
    """This operator restarted and found its own claim: the POST's fate is unknown."""
    decision = plan(seen(spec, status, seconds))
    assert decision.action is Action.RETRY, decision.patch.get("message")
    return merge(status, decision.patch)


def test_an_exactly_once_submission_ships_a_fence_named_from_uid_run_hash_and_first_attempt() -> (
    None
):
    spec = make_spec(submitPolicy="ExactlyOnce", timeoutSeconds=600)

    decision, status = claimed(spec)

    fence = decision.fence
    assert fence is not None
    assert fence.name == fence_name(UID, spec.run_hash, str(decision.correlation_id))
    assert fence.name.startswith(f"rc-{UID}-{spec.run_hash}-")
    assert status["fence"] == fence.name
    assert fence.kind == "ConfigMap"
    deadline = NOW + timedelta(seconds=600)
    assert fence.run_until == deadline - timedelta(seconds=60)  # a tenth of the timeout
    assert fence.wait_until == deadline - timedelta(seconds=30)
    assert fence.expires == deadline + timedelta(days=1)


def test_output_kind_secret_keeps_the_fence_in_a_secret() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce", output={"kind": "Secret"})
    decision, _ = claimed(spec)
    assert decision.fence is not None and decision.fence.kind == "Secret"


@pytest.mark.parametrize("policy", ["AtMostOnce", "AtLeastOnce"])
def test_other_policies_ship_no_fence(policy: str) -> None:
    decision, status = claimed(make_spec(submitPolicy=policy))
    assert decision.fence is None
    assert "fence" not in status


def test_the_users_command_is_shipped_verbatim_as_a_file_with_the_fence_config() -> None:
    command = "echo \"$HOME\" 'it''s' $(date) `id`; exit 3 # ; rm -rf /"
    fence = Fence.for_run("rc-x-y-z", "ConfigMap", NOW, 3600)

    files = dict(fence.files(command))

    assert files[f"{WRAPPER_DIR}/command.sh"] == (command + "\n").encode()
    assert files[f"{WRAPPER_DIR}/fence.sh"].startswith(b"# submitPolicy ExactlyOnce")
    conf = files[f"{WRAPPER_DIR}/fence.conf"].decode()
    assert conf == (
        "kind=ConfigMap\nname=rc-x-y-z\n"
        f"runUntil={int(NOW.timestamp()) - 60}\nwaitUntil={int(NOW.timestamp()) - 30}\n"
        f"expires={int(NOW.timestamp()) + 86400}\n"
    )
    assert EXPIRES_LABEL in files[f"{WRAPPER_DIR}/fence.sh"].decode()


@pytest.mark.parametrize(("timeout", "margin"), [(10, 5), (300, 30), (6 * 3600, 60)])
def test_the_command_stops_a_margin_before_the_deadline(timeout: int, margin: int) -> None:
    fence = Fence.for_run("f", "ConfigMap", NOW, timeout)
    assert fence.run_until == NOW - timedelta(seconds=margin)
    assert fence.run_until < fence.wait_until < NOW


def test_an_in_doubt_submission_is_submitted_again_with_the_same_fence_and_deadlines() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce", timeoutSeconds=600)
    first, status = claimed(spec)

    status = in_doubt(spec, status, 60)  # this operator died between claim and answer

    assert (status["state"], status["reason"]) == ("Submitting", "SubmissionOutcomeUnknown")
    assert status["nextAttemptAt"] == iso(at(65))
    assert status["message"] == (
        f"this operator (operator) claimed this run at {iso(NOW)} and stopped before recording "
        "ARM's answer to its POST; submitting the same run again in 5s (attempt 2 of at most "
        f"4): submitPolicy is ExactlyOnce, and its fence {first.fence.name} in the cluster "
        "lets the command run only once"
    )
    second, status = claimed(spec, status, 65)
    assert second.correlation_id != first.correlation_id
    assert second.fence == first.fence  # same name, same deadlines: it finds the first
    assert status["attempts"] == 2 and status["submittedAt"] == iso(NOW)


@pytest.mark.parametrize(
    "error",
    [
        SubmissionOutcomeUnknown(
            "runCommand POST to aks-blue may have been accepted (connection dropped)",
            correlation_id="c",
        ),
        MalformedLocationError("202 without a usable Location", correlation_id="c", location=None),
    ],
    ids=["dropped", "accepted-without-location"],
)
def test_a_post_in_doubt_or_accepted_without_a_handle_is_submitted_again(error: Any) -> None:
    spec = make_spec(submitPolicy="ExactlyOnce")
    _, status = claimed(spec)

    decision = after_submit_error(seen(spec, status, 2), error)

    assert decision.action is Action.RETRY
    assert merge(status, decision.patch)["state"] == "Submitting"
    assert "submitting the same run again in 5s" in decision.patch["message"]


def test_resubmissions_stop_at_spec_retries_and_the_message_names_the_fence() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce", retries=1)
    _, status = claimed(spec)
    status = in_doubt(spec, status, 10)
    _, status = claimed(spec, status, 20)

    decision = plan(seen(spec, status, 30))

    assert decision.action is Action.IDLE
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"]) == ("Unknown", "SubmissionOutcomeUnknown")
    assert "not submitted again: 2 attempts made (spec.retries is 1)" in after["message"]
    assert f"fence {status['fence']} in namespace aks-command" in after["message"]
    assert "(correlation id" in after["message"]


def test_no_resubmission_after_the_runs_deadline() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce", timeoutSeconds=120)
    _, status = claimed(spec)

    decision = plan(seen(spec, status, 121))

    assert merge(status, decision.patch)["state"] == "Unknown"
    assert "the run's deadline (120s) has passed" in decision.patch["message"]


def test_switching_to_exactly_once_never_resubmits_an_unfenced_submission_in_doubt() -> None:
    _, status = claimed(make_spec())  # AtMostOnce: no fence shipped

    decision = plan(seen(make_spec(submitPolicy="ExactlyOnce"), status, 60))

    assert merge(status, decision.patch)["state"] == "Unknown"
    assert "was not submitted again (it was sent without a fence" in decision.patch["message"]


def test_a_replayed_result_is_recorded_once_as_the_runs_outcome() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce")
    _, status = claimed(spec)
    status = in_doubt(spec, status, 10)
    status = running(spec, now=at(20), before=status)

    decision = after_poll(seen(spec, status, 30), result(0, logs="namespace/demo created\n"), 1)

    after = merge(status, decision.patch)
    assert (after["state"], after["exitCode"]) == ("Succeeded", 0)
    assert after["attempts"] == 2
    assert [entry["state"] for entry in after["history"]] == ["Succeeded"]


def fenced_running(**fields: Any) -> dict[str, Any]:
    spec = make_spec(submitPolicy="ExactlyOnce", **fields)
    _, status = claimed(spec)
    return running(spec, before=status)


FORBIDDEN = (
    'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group '
    '"" in the namespace "aks-command"'
)


def test_an_unclaimable_fence_fails_with_the_rbac_the_identity_needs() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce")
    status = fenced_running()
    logs = f"aks-runcommand-fence: FenceUnavailable: Error from server (Forbidden): {FORBIDDEN}\n"

    decision = after_poll(seen(spec, status, 30), result(211, logs=logs), 1)

    after = merge(status, decision.patch)
    assert (after["state"], after["reason"]) == ("Failed", "FenceUnavailable")
    message = after["message"]
    assert FORBIDDEN in message
    assert "so the command did not run" in message
    assert "create, get and update on configmaps in namespace aks-command" in message
    assert f"ConfigMap aks-command/{status['fence']}" in message
    assert decision.events[0].reason == "Failed"


def test_with_output_kind_secret_the_rbac_named_is_on_secrets() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce", output={"kind": "Secret"})
    status = fenced_running(output={"kind": "Secret"})
    logs = "aks-runcommand-fence: FenceUnavailable: secrets is forbidden\n"
    decision = after_poll(seen(spec, status, 30), result(211, logs=logs), 1)
    assert "create, get and update on secrets" in decision.patch["message"]


def test_no_result_from_an_earlier_submission_has_its_own_reason_not_unknown() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce")
    status = fenced_running()
    logs = (
        "aks-runcommand-fence: FenceResultMissing: ConfigMap aks-command/x was claimed by an "
        "earlier submission of this run, which recorded no result before the run's deadline\n"
    )

    decision = after_poll(seen(spec, status, 30), result(212, logs=logs), 1)

    after = merge(status, decision.patch)
    assert (after["state"], after["reason"]) == ("Failed", "FenceResultMissing")
    assert "recorded no result before the run's deadline" in after["message"]
    assert "change spec.runToken" in after["message"]


def test_a_submission_that_arrived_after_the_deadline_ran_nothing() -> None:
    spec = make_spec(submitPolicy="ExactlyOnce")
    status = fenced_running()
    logs = "aks-runcommand-fence: DeadlinePassed: this submission started after its deadline\n"
    decision = after_poll(seen(spec, status, 30), result(213, logs=logs), 1)
    assert merge(status, decision.patch)["reason"] == "DeadlineExceeded"


@pytest.mark.parametrize(
    ("exit_code", "logs"),
    [
        (211, "the user's own exit 211\n"),  # no marker
        (0, "aks-runcommand-fence: FenceUnavailable: printed by the user, exit 0\n"),
        (212, "aks-runcommand-fence: FenceUnavailable: marker and code disagree\n"),
    ],
)
def test_only_a_matching_code_and_last_line_are_the_wrappers_answer(
    exit_code: int, logs: str
) -> None:
    assert verdict(result(exit_code, logs=logs)) is None


def test_without_a_fence_the_markers_mean_nothing() -> None:
    spec = make_spec()
    status = running(spec)
    logs = "aks-runcommand-fence: FenceUnavailable: x\n"
    decision = after_poll(seen(spec, status, 30), result(211, logs=logs), 1)
    assert decision.patch["reason"] == "CommandFailed"


def test_a_later_run_of_the_same_spec_gets_a_new_fence() -> None:
    spec_a, spec_b = (
        make_spec(submitPolicy="ExactlyOnce"),
        make_spec(submitPolicy="ExactlyOnce", command="echo b"),
    )
    first, status = claimed(spec_a)
    status = running(spec_a, before=status)
    status = merge(status, after_poll(seen(spec_a, status, 5), result(0), 1).patch)
    _, status = claimed(spec_b, status, 10)
    status = running(spec_b, now=at(10), before=status)
    status = merge(status, after_poll(seen(spec_b, status, 15), result(0), 1).patch)

    again, _ = claimed(spec_a, status, 20)

    assert again.fence is not None and first.fence is not None
    assert spec_a.run_hash == make_spec(submitPolicy="ExactlyOnce").run_hash
    assert again.fence.name != first.fence.name


def test_a_set_child_inherits_exactly_once_and_in_doubt_it_is_resubmitted_not_failed() -> None:
    cluster = spec_dict()["cluster"]
    resource_id = (
        f"/subscriptions/{cluster['subscriptionId']}/resourceGroups/{cluster['resourceGroup']}"
        f"/providers/Microsoft.ContainerService/managedClusters/{cluster['name']}"
    )
    set_spec = SetSpec.parse(
        {
            "template": {"command": "echo hi", "submitPolicy": "ExactlyOnce"},
            "clusters": [{"resourceId": resource_id}],
        }
    )
    (write,) = plan_set(SetObservation("fleet", set_spec, {}, 1, [], None, iso(NOW))).writes
    assert write.spec["submitPolicy"] == "ExactlyOnce"
    child = RunSpec.parse(write.spec)
    assert child.exactly_once
    _, status = claimed(child)

    status = in_doubt(child, status, 60)

    children = [Child(write.name, dict(write.labels), dict(write.spec), status)]
    assert children[0].state == "Submitting"
    seen = SetObservation("fleet", set_spec, {}, 1, children, None, iso(at(60)))
    counts = plan_set(seen).status
    assert (counts["running"], counts["failed"], counts["unknown"]) == (1, 0, 0)


def resubmitted_running(**fields: Any) -> tuple[Any, dict[str, Any]]:
    spec = make_spec(submitPolicy="ExactlyOnce", **fields)
    _, status = claimed(spec)
    status = in_doubt(spec, status, 10)
    return spec, running(spec, now=at(20), before=status)


def test_a_resubmission_whose_pod_failed_to_run_is_submitted_again() -> None:
    spec, status = resubmitted_running()
    failed = result(None, state="Failed", reason="KubernetesOperationError", logs="")

    decision = after_poll(seen(spec, status, 60), failed, 1)

    after = merge(status, decision.patch)
    assert decision.action is Action.RETRY
    assert (after["state"], after["reason"]) == ("Submitting", "SubmissionOutcomeUnknown")
    assert after["message"].startswith(
        "command 4b9a2c7e1f0d4e5a on aks-blue: ARM reports provisioningState Failed "
        "(KubernetesOperationError) for resubmission 2 of the run; submitting the same run again "
        "in 10s (attempt 3 of at most 4)"
    )
    again, _ = claimed(spec, after, 71)
    assert again.fence is not None and again.fence.name == status["fence"]


@pytest.mark.parametrize(
    ("first_attempt", "retries"), [(True, 3), (False, 1)], ids=["first-attempt", "retries-spent"]
)
def test_otherwise_a_platform_failure_fails_the_run_as_under_other_policies(
    first_attempt: bool, retries: int
) -> None:
    if first_attempt:
        spec = make_spec(submitPolicy="ExactlyOnce", retries=retries)
        status = fenced_running(retries=retries)
    else:
        spec, status = resubmitted_running(retries=retries)
    failed = result(None, state="Failed", reason="KubernetesOperationError", logs="")

    decision = after_poll(seen(spec, status, 60), failed, 1)

    assert merge(status, decision.patch)["reason"] == "KubernetesOperationError"


@pytest.mark.parametrize("policy", ["ExactlyOnce", "AtLeastOnce"])
def test_a_spec_change_while_a_resubmission_waits_ends_the_run_unknown_in_history(
    policy: str,
) -> None:
    spec = make_spec(submitPolicy=policy)
    _, status = claimed(spec)
    status = in_doubt(spec, status, 10)
    edited = make_spec(submitPolicy=policy, command="echo other")

    decision = plan(seen(edited, status, 12))

    after = merge(status, decision.patch)
    assert decision.action is Action.RETRY and decision.delay == 0.0
    assert (after["state"], after["reason"]) == ("Pending", "NextRunPending")
    assert [(e["state"], e["reason"]) for e in after["history"]] == [
        ("Unknown", "SubmissionOutcomeUnknown")
    ]
    assert decision.events[0].message.startswith(
        "the spec changed while this run waited to be submitted again after an unknown outcome"
    )
    following, _ = claimed(edited, after, 12)
    assert following.patch["attempts"] == 1
