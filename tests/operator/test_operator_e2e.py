"""End to end on real parts: kopf operator -> real management API server; emulator -> real
kubectl against a real target API server."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.core import Settings
from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import kubectl
from tests.operator.rc import RunCommands, condition, manifest
from tests.stack import CLIENT_SECRET, RESOURCE_GROUP, SUBSCRIPTION_ID, Emulator, Operator

pytestmark = pytest.mark.usefixtures("operator")
CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.ContainerService/managedClusters/a"
)


@pytest.fixture
def rc(management_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    return RunCommands(kubectl_path, management_cluster.kubeconfig)


def submissions_for(emulator: Emulator, correlation_ids: set[str]) -> list[dict[str, object]]:
    return [s for s in emulator.submissions() if s["correlationId"] in correlation_ids]


def test_seed_example_creates_a_namespace_in_the_target_cluster(
    rc: RunCommands, namespace: str, target_cluster: ControlPlane, kubectl_path: str
) -> None:
    ns_yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: dummy-from-runcommand\n"
    rc.kubectl(
        "-n", namespace, "create", "configmap", "manifests", "--from-literal", f"ns.yaml={ns_yaml}"
    )
    rc.apply(
        manifest(
            "seed",
            namespace,
            "kubectl apply -f ns.yaml",
            filesFrom=[{"configMapRef": {"name": "manifests"}}],
        )
    )

    body = rc.wait(namespace, "seed")
    status = body["status"]
    assert status["state"] == "Succeeded", status
    assert status["exitCode"] == 0
    assert status["provisioningState"] == "Succeeded"
    assert "namespace/dummy-from-runcommand created" in status["logs"]
    assert status["startedAt"] and status["finishedAt"]
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert len(status["commandId"]) == 32
    ready = condition(body, "Ready")
    assert ready is not None and ready["status"] == "True"
    assert condition(body, "Stalled") is None and condition(body, "Reconciling") is None
    # The namespace really exists in the target cluster.
    kubectl(kubectl_path, target_cluster.kubeconfig, "get", "namespace", "dummy-from-runcommand")

    table = rc.kubectl("-n", namespace, "get", "runcommands").stdout.splitlines()
    assert table[0].split() == ["NAME", "CLUSTER", "STATE", "EXIT", "DURATION", "AGE"]
    assert table[1].split()[:4] == ["seed", "aks-target", "Succeeded", "0"]

    reasons = {(e["type"], e["reason"]): e["message"] for e in rc.events(namespace, "seed")}
    assert status["commandId"] in reasons[("Normal", "Submitted")]
    assert "aks-target" in reasons[("Normal", "Submitted")]
    assert status["commandId"] in reasons[("Normal", "Succeeded")]


def test_failing_command_is_failed_and_stalled(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("fails", namespace, "echo about to fail && exit 3"))
    body = rc.wait(namespace, "fails")
    status = body["status"]
    assert status["state"] == "Failed"
    assert status["exitCode"] == 3
    assert status["provisioningState"] == "Succeeded"  # ARM ran it; the command failed
    assert "about to fail" in status["logs"]
    stalled, ready = condition(body, "Stalled"), condition(body, "Ready")
    assert stalled is not None and stalled["status"] == "True"
    assert ready is not None and ready["status"] == "False"
    warnings = [e for e in rc.events(namespace, "fails") if e["type"] == "Warning"]
    assert any(e["reason"] == "Failed" and status["commandId"] in e["message"] for e in warnings)


def test_restart_mid_command_resumes_without_resubmitting(
    rc: RunCommands, namespace: str, operator: Operator, emulator: Emulator
) -> None:
    rc.apply(manifest("long", namespace, "sleep 6 && echo finished"))
    running = rc.wait(namespace, "long", states=("Running",))
    command_id = running["status"]["commandId"]
    correlation_id = running["status"]["correlationId"]

    operator.kill()  # a crash: SIGKILL, no clean-up
    operator.start()

    body = rc.wait(namespace, "long")
    assert body["status"]["state"] == "Succeeded"
    assert body["status"]["commandId"] == command_id
    assert "finished" in body["status"]["logs"]
    assert len(submissions_for(emulator, {correlation_id})) == 1


def test_reapplying_submits_nothing_and_run_token_bump_submits_once(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    text = manifest("rerun", namespace, "echo run", runToken="1")
    rc.apply(text)
    first = rc.wait(namespace, "rerun")["status"]
    assert first["state"] == "Succeeded"

    # An Argo CD / Flux re-sync, and a replace that drops kopf's annotations.
    rc.apply(text)
    replaced = json.loads(text)
    rc.kubectl("replace", "-f", "-", stdin=json.dumps(replaced))
    after_resync = rc.get(namespace, "rerun")["status"]
    assert after_resync["commandId"] == first["commandId"]
    assert len(after_resync["history"]) == 1

    # No sleep to give a wrong re-run its chance: the bump below is the barrier. kopf handles an
    # object's events in order, so when the bumped run is recorded the re-syncs were handled
    # too, and the emulator's submissions then show exactly the two runs (checked at the end).
    rc.apply(manifest("rerun", namespace, "echo run", runToken="2"))
    second = rc.wait_for(
        namespace,
        "rerun",
        lambda status: (
            status.get("state") == "Succeeded" and status["commandId"] != first["commandId"]
        ),
    )["status"]
    assert second["commandId"] != first["commandId"]
    assert [entry["runToken"] for entry in second["history"]] == ["1", "2"]
    assert [entry["commandId"] for entry in second["history"]] == [
        first["commandId"],
        second["commandId"],
    ]
    assert len(submissions_for(emulator, {first["correlationId"]})) == 1
    assert len([s for s in emulator.submissions() if s["command"] == "echo run"]) == 2


def test_timeout_marks_deadline_exceeded(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("slow", namespace, "sleep 30", timeoutSeconds=2))
    body = rc.wait(namespace, "slow", timeout=30)
    assert body["status"]["state"] == "Failed"
    assert body["status"]["reason"] == "DeadlineExceeded"
    stalled = condition(body, "Stalled")
    assert stalled is not None and stalled["reason"] == "DeadlineExceeded"


def test_fatal_arm_error_carries_the_arm_code(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("nowhere", namespace, "echo hi", cluster="no-such-cluster"))
    body = rc.wait(namespace, "nowhere")
    assert body["status"]["state"] == "Failed"
    assert body["status"]["reason"] == "ResourceNotFound"
    stalled = condition(body, "Stalled")
    assert stalled is not None and stalled["reason"] == "ResourceNotFound"
    assert "no-such-cluster" in body["status"]["message"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "cluster": {
                    "subscriptionId": "00000000-0000-0000-0000-000000000001",
                    "resourceGroup": "rg",
                    "name": "a",
                }
            },
            "spec.command: Required value",
        ),
        (
            {
                "cluster": {"subscriptionId": "not-a-uuid", "resourceGroup": "rg", "name": "a"},
                "command": "x",
            },
            "spec.cluster.subscriptionId",
        ),
        (
            {
                "cluster": {
                    "subscriptionId": "00000000-0000-0000-0000-000000000001",
                    "resourceGroup": "rg",
                    "name": "a",
                    "resourceId": CLUSTER_ID,
                },
                "command": "x",
            },
            "set either cluster.resourceId or cluster.subscriptionId/resourceGroup/name",
        ),
        (
            {
                "cluster": {"resourceId": CLUSTER_ID},
                "command": "x",
                "timeoutSeconds": "ten",
            },
            "spec.timeoutSeconds in body must be of type integer",
        ),
        (
            {
                "cluster": {"resourceId": CLUSTER_ID},
                "command": "x",
                "files": {"../etc/passwd": "x"},
            },
            "spec.files keys must be relative paths",
        ),
    ],
    ids=[
        "missing-command",
        "bad-subscription",
        "both-cluster-forms",
        "wrong-type",
        "path-traversal",
    ],
)
def test_invalid_manifests_are_refused_by_the_api_server(
    rc: RunCommands, namespace: str, spec: dict[str, object], message: str
) -> None:
    body = {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommand",
        "metadata": {"name": "invalid", "namespace": namespace},
        "spec": spec,
    }
    refused = rc.kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert refused.returncode != 0
    assert message in refused.stderr
    assert rc.kubectl("-n", namespace, "get", "runcommands", "-o", "name").stdout == ""


def _credentials_secret(
    rc: RunCommands, namespace: str, name: str, client_id: str, secret: str
) -> None:
    rc.kubectl(
        "-n",
        namespace,
        "create",
        "secret",
        "generic",
        name,
        "--from-literal=tenantId=72f988bf-86f1-41af-91ab-2d7cd011db47",
        f"--from-literal=clientId={client_id}",
        f"--from-literal=clientSecret={secret}",
    )


PER_RESOURCE_SECRET = "per-resource-secret-value-4711"
NAMESPACE_DEFAULT_SECRET = "namespace-default-secret-value-0815"


def test_credentials_from_the_resource_then_the_namespace_default(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    per_resource_client = "11111111-0000-0000-0000-00000000aaaa"
    default_client = "11111111-0000-0000-0000-00000000bbbb"
    _credentials_secret(rc, namespace, "team-identity", per_resource_client, PER_RESOURCE_SECRET)
    _credentials_secret(
        rc, namespace, "aks-runcommand-credentials", default_client, NAMESPACE_DEFAULT_SECRET
    )

    rc.apply(
        manifest(
            "own-creds", namespace, "echo own", credentials={"secretRef": {"name": "team-identity"}}
        )
    )
    rc.apply(manifest("default-creds", namespace, "echo default"))
    assert rc.wait(namespace, "own-creds")["status"]["state"] == "Succeeded"
    assert rc.wait(namespace, "default-creds")["status"]["state"] == "Succeeded"
    signins = emulator.log.read_text()
    assert f"client={per_resource_client}" in signins
    assert f"client={default_client}" in signins


def test_credentials_from_another_namespace_are_never_used(
    rc: RunCommands, namespace: str, management_cluster: ControlPlane, kubectl_path: str
) -> None:
    other = f"{namespace}-other"
    kubectl(kubectl_path, management_cluster.kubeconfig, "create", "namespace", other)
    _credentials_secret(
        rc, other, "shared-identity", "11111111-0000-0000-0000-00000000cccc", "other-ns-secret"
    )

    # The API has no field to name another namespace: strict validation refuses one.
    body = json.loads(manifest("cross", namespace, "echo x"))
    body["spec"]["credentials"] = {"secretRef": {"name": "shared-identity", "namespace": other}}
    refused = rc.kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.credentials.secretRef.namespace"' in refused.stderr

    # A same-named Secret in another namespace is not found from this one.
    rc.apply(
        manifest(
            "cross",
            namespace,
            "echo x",
            retries=0,
            credentials={"secretRef": {"name": "shared-identity"}},
        )
    )
    status = rc.wait(namespace, "cross")["status"]
    assert status["state"] == "Failed"
    assert status["reason"] == "CredentialsNotFound"
    assert f"{namespace}/shared-identity not found" in status["message"]


def test_cluster_token_is_sent_only_to_aad_clusters(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    rc.apply(manifest("aad", namespace, "echo aad", cluster="aks-aad"))
    rc.apply(manifest("plain", namespace, "echo plain", cluster="aks-target"))
    aad = rc.wait(namespace, "aad")["status"]
    plain = rc.wait(namespace, "plain")["status"]
    assert aad["state"] == plain["state"] == "Succeeded"
    (aad_submission,) = submissions_for(emulator, {aad["correlationId"]})
    (plain_submission,) = submissions_for(emulator, {plain["correlationId"]})
    assert aad_submission["clusterTokenSent"] is True
    assert plain_submission["clusterTokenSent"] is False


def test_ttl_deletes_the_finished_run(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("short-lived", namespace, "echo bye", ttlSecondsAfterFinished=1))
    rc.wait(namespace, "short-lived")
    poll_until(
        lambda: rc.kubectl("-n", namespace, "get", "runcommands", "-o", "name").stdout,
        lambda listed: "short-lived" not in listed,
        what="the RunCommand is deleted after ttlSecondsAfterFinished",
        timeout=30,
    )


def polls_due_by(answered: list[float], after: float, count: int) -> float:
    """By when the operator would have polled a command `count` more times after `after`, had
    it gone on: from the last two polls it answered, each next delay at most doubles (never
    under the first delay) up to the interval a budget with room allows, as core/polls.py backs
    off while ARM sends no Retry-After (the session's operator runs with the defaults)."""
    defaults = Settings()
    interval, due = answered[-1] - answered[-2], answered[-1]
    while count:
        doubled = max(2 * interval, defaults.poll_initial_seconds)
        interval = min(doubled, max(interval, defaults.poll_interval_seconds))
        due += interval
        if due > after:
            count -= 1
    # Latency moves each answer a little; the slack only decides whether the barrier catches a
    # poll that should not happen, never whether one that does not is seen.
    return due + 2.0


def test_deleting_a_running_command_stops_polling(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    """ARM cannot cancel: the run goes on, but the operator stops polling it. The barrier is the
    operator's one scheduler: a witness RunCommand polled after the deleted one's next two polls
    were due shows the scheduler went past them. One poll may race the deletion (sent before the
    operator saw the DELETE); a second can only come from a command still followed."""
    rc.apply(manifest("abandoned", namespace, "sleep 60"))
    command_id = rc.wait(namespace, "abandoned", states=("Running",))["status"]["commandId"]
    # Two polls give the backoff's pace, so when the next ones are due is known.
    poll_until(
        lambda: emulator.polls(command_id),
        lambda answered: len(answered) >= 2,
        what=f"two polls of {command_id}",
        timeout=60,
        interval=0.2,
    )
    rc.kubectl("-n", namespace, "delete", "runcommand", "abandoned")
    deleted_at = time.time()
    due_by = polls_due_by(emulator.polls(command_id), deleted_at, count=2)

    rc.apply(manifest("witness", namespace, "sleep 60"))
    witness_id = rc.wait(namespace, "witness", states=("Running",))["status"]["commandId"]
    poll_until(
        lambda: emulator.polls(witness_id),
        lambda answered: bool(answered) and answered[-1] > due_by,
        what=f"a poll of the witness {witness_id} after {command_id} would have been polled twice",
        timeout=max(0.0, due_by - time.time()) + 60,
        interval=0.2,
    )
    after_deletion = [t for t in emulator.polls(command_id) if t > deleted_at]
    assert len(after_deletion) <= 1, f"{command_id} polled after its deletion at {after_deletion}"
    rc.kubectl("-n", namespace, "delete", "runcommand", "witness")


def test_too_large_context_fails_clearly_and_sends_nothing(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    # Random bytes do not compress: the zip stays above the operator's 64 KiB limit.
    blob = os.urandom(60 * 1024).hex()
    rc.kubectl("-n", namespace, "create", "configmap", "big", f"--from-literal=blob.txt={blob}")
    rc.apply(
        manifest(
            "too-big", namespace, "cat blob.txt", filesFrom=[{"configMapRef": {"name": "big"}}]
        )
    )
    body = rc.wait(namespace, "too-big")
    status = body["status"]
    assert status["state"] == "Failed"
    assert status["reason"] == "ContextTooLarge"
    assert "limit is 65536" in status["message"]
    stalled = condition(body, "Stalled")
    assert stalled is not None and stalled["reason"] == "ContextTooLarge"
    assert "correlationId" not in status  # nothing was claimed, so nothing could be sent
    assert not [s for s in emulator.submissions() if s["command"] == "cat blob.txt"]


def test_workload_identity_from_a_secret_is_refused_by_default(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    rc.kubectl(
        "-n", namespace, "create", "secret", "generic", "borrowed-identity",
        "--from-literal=tenantId=72f988bf-86f1-41af-91ab-2d7cd011db47",
        "--from-literal=clientId=11111111-0000-0000-0000-00000000dddd",
        "--from-literal=workloadIdentity=true",
    )  # fmt: skip
    rc.apply(
        manifest(
            "borrow", namespace, "echo x", credentials={"secretRef": {"name": "borrowed-identity"}}
        )
    )
    status = rc.wait(namespace, "borrow")["status"]
    assert status["state"] == "Failed"
    assert status["reason"] == "InvalidCredentials"
    assert "--allow-workload-identity-from-secrets" in status["message"]
    assert "correlationId" not in status  # nothing was claimed, so nothing could be sent
    assert not [s for s in emulator.submissions() if s["command"] == "echo x"]


def scrape_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_prometheus_metrics_count_submissions_and_outcomes(
    rc: RunCommands, namespace: str, metrics_port: int
) -> None:
    def key(name: str, cluster: str, **labels: str) -> Any:
        """A sample's key; every count carries its target cluster (--metrics-cluster-labels)."""
        target = {"subscription": SUBSCRIPTION_ID, "resource_group": RESOURCE_GROUP}
        return (name, tuple(sorted({**labels, **target, "cluster": cluster}.items())))

    accepted = key("aks_runcommand_submissions_total", "aks-target", outcome="accepted")
    failed = key(
        "aks_runcommand_runs_finished_total", "aks-target", reason="CommandFailed", state="Failed"
    )
    # The cluster lookup happens while preparing, before anything is claimed or sent.
    not_found = key(
        "aks_runcommand_errors_total",
        "missing-cluster",
        code="ResourceNotFound",
        operation="prepare",
    )
    before = scrape_metrics(metrics_port)
    rc.apply(manifest("counted-fail", namespace, "exit 4"))
    rc.apply(manifest("counted-missing", namespace, "true", cluster="missing-cluster"))
    rc.wait(namespace, "counted-fail")
    rc.wait(namespace, "counted-missing")
    after = scrape_metrics(metrics_port)
    assert after[accepted] - before.get(accepted, 0) == 1
    assert after[failed] - before.get(failed, 0) == 1
    assert after[not_found] - before.get(not_found, 0) == 1
    assert ("aks_runcommand_waiting", ()) in after


def test_no_secret_or_token_in_logs_events_or_status(
    rc: RunCommands, operator: Operator, emulator: Emulator
) -> None:
    """Runs last in this module: looks through everything the tests above produced."""
    everything = "\n".join(
        [
            operator.log.read_text(),
            emulator.log.read_text(),
            rc.kubectl("get", "events", "-A", "-o", "json").stdout,
            rc.kubectl("get", "runcommands", "-A", "-o", "json").stdout,
        ]
    )
    assert "echo aad" in everything  # the material is really there to search
    for secret in (CLIENT_SECRET, PER_RESOURCE_SECRET, NAMESPACE_DEFAULT_SECRET, "other-ns-secret"):
        assert secret not in everything
    # Access tokens and clusterTokens are JWTs: a JSON header starts "eyJ" once base64url-encoded.
    assert "eyJ" not in everything
