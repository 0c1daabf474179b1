"""RunCommandSets end to end on real parts: the operator creates one child RunCommand per
cluster the selector finds through the emulator's ARM lists, each runs exactly once through
real kubectl against the target API server, and the rollout honours its bounds."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import eventually, kubectl, kubectl_json
from tests.operator.conftest import FLEET_GROUP, FLEET_SUBSCRIPTION
from tests.stack import SUBSCRIPTION_ID, Emulator, Operator, cluster_entry

pytestmark = pytest.mark.usefixtures("operator")
SELECTED = {"fleet-a", "fleet-b", "fleet-c", "fleet-d"}  # fleet-skip has env=test


class Sets:
    def __init__(self, kubectl_path: str, cluster: ControlPlane) -> None:
        self.kubectl_path, self.kubeconfig = kubectl_path, cluster.kubeconfig

    def apply(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommandSet",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        kubectl(self.kubectl_path, self.kubeconfig, "apply", "-f", "-", stdin=json.dumps(body))

    def delete(self, namespace: str, name: str) -> None:
        kubectl(self.kubectl_path, self.kubeconfig, "-n", namespace, "delete", "runcommandset",
                name, "--wait=true")  # fmt: skip

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(
            kubectl_json(
                self.kubectl_path, self.kubeconfig, "-n", namespace, "get", "runcommandset", name
            )
        )

    def children(self, namespace: str, name: str) -> list[dict[str, Any]]:
        listed = kubectl_json(
            self.kubectl_path, self.kubeconfig, "-n", namespace, "get", "runcommands",
            "-l", f"aks.gitops.dev/runcommandset={name}",
        )  # fmt: skip
        return list(listed["items"])

    def wait_for(
        self, namespace: str, name: str, done: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        return poll_until(
            lambda: self.get(namespace, name).get("status") or {},
            done,
            what=f"{namespace}/{name} gets there",
            timeout=timeout,
            interval=0.3,
            describe=json.dumps,
        )


@pytest.fixture
def sets(management_cluster: ControlPlane, kubectl_path: str) -> Sets:
    return Sets(kubectl_path, management_cluster)


def runs_of(emulator: Emulator, command: str) -> list[dict[str, Any]]:
    return [s for s in emulator.submissions() if s["command"] == command]


def cluster_name(cluster_id: str) -> str:
    return cluster_id.rsplit("/", 1)[-1]


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The most commands that were running at one moment, from the emulator's timeline."""
    moments = []
    for run in runs:
        moments.append((datetime.fromisoformat(run["startedAt"]), 1))
        moments.append((datetime.fromisoformat(run["finishedAt"]), -1))
    running = peak = 0
    for _, step in sorted(moments, key=lambda m: (m[0], m[1])):  # ends before starts
        running += step
        peak = max(peak, running)
    return peak


def selector_spec(command: str, **extra: Any) -> dict[str, Any]:
    return {
        "template": {"command": command},
        "clusterSelector": {
            "subscriptions": [SUBSCRIPTION_ID, FLEET_SUBSCRIPTION],
            "resourceGroups": [FLEET_GROUP],
            "matchTags": {"fleet": "e2e"},
            "matchTagExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}],
        },
        **extra,
    }


def test_a_set_runs_every_selected_cluster_exactly_once_two_at_a_time_and_again_on_a_new_token(
    sets: Sets, emulator: Emulator, namespace: str
) -> None:
    command = f"sleep 1; kubectl get --raw /healthz; echo {namespace}"
    sets.apply(namespace, "rollout", selector_spec(command, maxConcurrency=2))

    status = sets.wait_for(namespace, "rollout", lambda s: s.get("state") == "Succeeded")
    assert (status["total"], status["succeeded"], status["round"]) == (4, 4, 1)
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Finished": "True",
    }
    runs = runs_of(emulator, command)
    assert sorted(cluster_name(r["clusterId"]) for r in runs) == sorted(SELECTED)
    started = [
        p for p in emulator.started_posts() if p["commandId"] in {r["commandId"] for r in runs}
    ]
    assert len(started) == 4  # one POST per cluster, no resubmission
    assert most_at_once(runs) <= 2
    children = sets.children(namespace, "rollout")
    assert len(children) == 4
    owner = children[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "RunCommandSet" and owner["controller"] is True

    spec = selector_spec(command, maxConcurrency=2, runToken="again")
    sets.apply(namespace, "rollout", spec)
    status = sets.wait_for(
        namespace, "rollout", lambda s: s.get("round") == 2 and s.get("state") == "Succeeded"
    )
    assert status["succeeded"] == 4 and status["runToken"] == "again"
    runs = runs_of(emulator, command)
    per_cluster = {
        name: sum(1 for r in runs if cluster_name(r["clusterId"]) == name) for name in SELECTED
    }
    # Two each: nothing ran between the rounds either (an extra run of round 1 would be a third).
    assert per_cluster == dict.fromkeys(SELECTED, 2)
    assert len(sets.children(namespace, "rollout")) == 4  # the same children, no twins

    # Owned for real: the garbage collector takes the children with their set.
    kubectl(sets.kubectl_path, sets.kubeconfig, "-n", namespace, "delete", "runcommandset/rollout")
    collected = lambda: not sets.children(namespace, "rollout")  # noqa: E731
    eventually("the set's children collected with it", collected, timeout=120)


def test_max_failures_stops_new_starts_and_the_round_ends_failed(
    sets: Sets, emulator: Emulator, namespace: str
) -> None:
    command = f"echo {namespace}; exit 3"
    clusters = [
        {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": FLEET_GROUP, "name": name}
        for name in ("fleet-a", "fleet-b", "fleet-skip")
    ]
    spec = {
        "template": {"command": command},
        "clusters": clusters,
        "maxConcurrency": 1,
        "maxFailures": 0,
    }
    sets.apply(namespace, "failing", spec)

    status = sets.wait_for(namespace, "failing", lambda s: s.get("state") == "Failed")
    assert status["reason"] == "MaxFailuresExceeded"
    assert (status["failed"], status["pending"]) == (1, 2)
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False",
        "Stalled": "True",
        "Finished": "True",
    }
    assert status["clusters"][0]["state"] == "Failed" and status["clusters"][0]["exitCode"] == 3
    # No sleep to let a wrong start happen: the operator is made to decide again (room for three
    # at once, in the same round), and its observedGeneration shows it has; still nothing starts.
    generation = sets.get(namespace, "failing")["metadata"]["generation"]
    sets.apply(namespace, "failing", {**spec, "maxConcurrency": 3})
    status = sets.wait_for(
        namespace, "failing", lambda s: s.get("observedGeneration", 0) > generation
    )
    assert (status["state"], status["reason"]) == ("Failed", "MaxFailuresExceeded")
    assert (status["failed"], status["pending"]) == (1, 2)
    # Every target has its child from the round's start, suspended; the two never started.
    waiting = [c for c in sets.children(namespace, "failing") if c["spec"].get("suspend")]
    assert len(waiting) == 2
    runs = runs_of(emulator, command)
    assert [cluster_name(r["clusterId"]) for r in runs] == ["fleet-a"]  # the first by cluster id


def test_sigkill_mid_rollout_makes_no_twin_and_runs_no_cluster_twice(
    sets: Sets, emulator: Emulator, namespace: str, operator: Operator
) -> None:
    command = f"sleep 1; echo {namespace}"
    sets.apply(namespace, "killed", selector_spec(command, maxConcurrency=1))
    sets.wait_for(namespace, "killed", lambda s: s.get("succeeded", 0) >= 1)

    operator.kill()  # mid-rollout: one cluster done, one running or about to start
    operator.start()

    status = sets.wait_for(namespace, "killed", lambda s: s.get("state") in ("Succeeded", "Failed"))
    # A child the kill caught between its claim and ARM's answer ends Unknown (AtMostOnce):
    # that is the truth, not a loss. What must never happen is a twin or a second run.
    assert status["total"] == 4 and status["succeeded"] + status["unknown"] == 4
    for cluster in status["clusters"]:
        assert cluster["state"] == "Succeeded" or cluster["reason"] == "SubmissionOutcomeUnknown"
    runs = runs_of(emulator, command)
    ran = [cluster_name(r["clusterId"]) for r in runs]
    assert len(ran) == len(set(ran)) and set(ran) <= set(SELECTED)  # no cluster twice
    started = [
        p for p in emulator.started_posts() if p["commandId"] in {r["commandId"] for r in runs}
    ]
    assert len(started) == len(runs)
    assert status["succeeded"] <= len(runs)
    assert len(sets.children(namespace, "killed")) == 4  # no twin
    assert most_at_once(runs) <= 1


def test_follow_new_clusters_runs_the_round_on_a_cluster_added_mid_round(
    sets: Sets, emulator: Emulator, namespace: str, target_cluster: ControlPlane
) -> None:
    command = f"echo {namespace}"
    tag = {"fleet": f"follow-{namespace}"}
    first, late = (
        cluster_entry(
            f"{name}-{namespace}", target_cluster.kubeconfig, resourceGroup=FLEET_GROUP, tags=tag
        )
        for name in ("first", "late")
    )
    emulator.add_cluster(first)
    try:
        spec = {
            "template": {"command": command},
            "clusterSelector": {"subscriptions": [SUBSCRIPTION_ID], "matchTags": tag},
            "followNewClusters": True,
        }
        sets.apply(namespace, "follow", spec)
        sets.wait_for(namespace, "follow", lambda s: s.get("state") == "Succeeded")

        emulator.add_cluster(late)  # mid-round: after the round started and even finished
        status = sets.wait_for(
            namespace, "follow", lambda s: s.get("succeeded") == 2 and s.get("state") == "Succeeded"
        )
        assert status["round"] == 1  # the same round, extended
        runs = runs_of(emulator, command)
        assert sorted(cluster_name(r["clusterId"]) for r in runs) == [
            f"first-{namespace}",
            f"late-{namespace}",
        ]
    finally:
        emulator.remove_cluster(first)
        emulator.remove_cluster(late)
        # A following set lists its clusters every second for as long as it lives: gone, it no
        # longer adds to the managedClusters LISTs later tests count.
        sets.delete(namespace, "follow")


def test_retry_failed_token_runs_only_the_failed_cluster_again(
    sets: Sets, emulator: Emulator, namespace: str
) -> None:
    # The first run anywhere leaves a marker in the (shared) target cluster and fails; later
    # runs find it and succeed. With one at a time, fleet-a fails and fleet-b succeeds.
    marker = f"marker-{namespace}"
    command = (
        f"kubectl -n default get configmap {marker} || "
        f"{{ kubectl -n default create configmap {marker}; exit 3; }}"
    )
    clusters = [
        {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": FLEET_GROUP, "name": name}
        for name in ("fleet-a", "fleet-b")
    ]
    spec: dict[str, Any] = {
        "template": {"command": command},
        "clusters": clusters,
        "maxConcurrency": 1,
    }
    sets.apply(namespace, "retry", spec)
    status = sets.wait_for(namespace, "retry", lambda s: s.get("state") == "Failed")
    assert status["reason"] == "ClustersFailed" and (status["failed"], status["succeeded"]) == (
        1,
        1,
    )

    sets.apply(namespace, "retry", {**spec, "retryFailedToken": "1"})
    status = sets.wait_for(namespace, "retry", lambda s: s.get("state") == "Succeeded")
    assert status["succeeded"] == 2 and status["round"] == 1
    runs = [cluster_name(r["clusterId"]) for r in runs_of(emulator, command)]
    assert sorted(runs) == ["fleet-a", "fleet-a", "fleet-b"]  # only the failed one ran again


def test_exactly_once_children_in_doubt_are_resubmitted_and_none_counts_failed(
    sets: Sets, emulator: Emulator, namespace: str, target_cluster: ControlPlane,
    kubectl_path: str,
) -> None:  # fmt: skip
    probes = f"probes-{namespace}"  # in the target: one ConfigMap per execution of a command
    kubectl(kubectl_path, target_cluster.kubeconfig, "create", "namespace", probes)
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "generateName": "ran-", "namespace": probes}})  # fmt: skip
    command = f"kubectl create -f - -o name <<'EOF'\n{manifest}\nEOF\n"
    dropped = sum(1 for p in emulator.posts() if p["outcome"] == "dropped")
    emulator.set_faults(dropConnectionAfterSubmitRate=1.0)  # every child's first POST in doubt
    try:
        sets.apply(namespace, "fenced", {**selector_spec(command), "template": {
            "command": command, "submitPolicy": "ExactlyOnce"}})  # fmt: skip
        poll_until(
            lambda: sum(1 for p in emulator.posts() if p["outcome"] == "dropped"),
            lambda count: count >= dropped + 4,
            what="the children's first POSTs all dropped",
            timeout=60,
            interval=0.2,
        )
    finally:
        emulator.set_faults(dropConnectionAfterSubmitRate=0.0)

    status = sets.wait_for(namespace, "fenced", lambda s: s.get("state") in ("Succeeded", "Failed"))

    assert (status["total"], status["succeeded"], status["failed"], status["unknown"]) == (
        4, 4, 0, 0
    ), status  # fmt: skip
    children = sets.children(namespace, "fenced")
    assert {c["spec"]["submitPolicy"] for c in children} == {"ExactlyOnce"}
    assert all(c["status"]["attempts"] >= 2 for c in children)
    ran = kubectl_json(kubectl_path, target_cluster.kubeconfig, "-n", probes, "get", "configmaps")
    assert len([c for c in ran["items"] if c["metadata"]["name"].startswith("ran-")]) == 4
