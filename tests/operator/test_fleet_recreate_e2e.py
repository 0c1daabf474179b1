"""Issue 24 for RunCommandSets. A set recreated while its predecessor's children still exist
(defect 1): slow garbage collection, `--cascade=orphan`, Argo CD replacing the set. A finalizer
on the children holds them in the window that looped on ARM (being collected, still naming the
dead set as controller): the set must wait with backoff and say why, then run its own children
once they are gone. Orphans of its own template (`--cascade=orphan`) it adopts, running nothing
again. A selector matching nothing ends the round (defect 6); sets post events."""

from __future__ import annotations

import json
import time

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import kubectl, kubectl_json
from tests.operator.test_fleet_e2e import Sets, runs_of, selector_spec, sets  # noqa: F401
from tests.stack import Emulator

pytestmark = pytest.mark.usefixtures("operator")
WINDOW_SECONDS = 40


@pytest.mark.timeout(600)
def test_a_set_recreated_over_its_old_children_waits_without_hammering_arm_then_adopts_them(
    sets: Sets,  # noqa: F811
    emulator: Emulator,
    namespace: str,
    management_cluster: ControlPlane,
    kubectl_path: str,
) -> None:
    command = f"echo {namespace}"
    spec = selector_spec(command)
    sets.apply(namespace, "again", spec)
    sets.wait_for(namespace, "again", lambda s: s.get("state") == "Succeeded")
    ran = len(runs_of(emulator, command))
    assert ran == 4

    def kube(*args: str) -> None:
        kubectl(kubectl_path, management_cluster.kubeconfig, "-n", namespace, *args)

    # Slow garbage collection: the children stay, being deleted, naming the deleted set.
    hold = json.dumps({"metadata": {"finalizers": ["e2e.aks.gitops.dev/hold"]}})
    for child in sets.children(namespace, "again"):
        kube("patch", "runcommand", child["metadata"]["name"], "--type=merge", "-p", hold)
    kube("delete", "runcommandset", "again", "--wait=true")
    lists_before = emulator.cluster_lists()
    sets.apply(namespace, "again", spec)  # the same set, a new uid
    status = sets.wait_for(
        namespace, "again", lambda s: s.get("reason") == "ChildOwnedElsewhere", timeout=60
    )
    assert "RunCommandSet/again" in status["message"] and "garbage collection" in status["message"]
    assert {c["state"] for c in status["clusters"]} == {"Blocked"}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Reconciling"] == "True"
    time.sleep(WINDOW_SECONDS)
    lists = emulator.cluster_lists() - lists_before
    # A list per look, and looks back off (5 s doubling): a handful, not one per second.
    assert lists <= 8, f"{lists} managedClusters LISTs in {WINDOW_SECONDS}s"
    about = "involvedObject.kind=RunCommandSet,involvedObject.name=again"
    events = kubectl_json(kubectl_path, management_cluster.kubeconfig, "-n", namespace, "get",
                          "events", "--field-selector", about)  # fmt: skip
    reasons = [e["reason"] for e in events["items"]]
    assert "ChildOwnedElsewhere" in reasons, reasons
    assert reasons.count("ChildOwnedElsewhere") == 1  # once per change, not once per look

    # The collection ends: the set runs its own children (the old ones, and their record, are gone).
    release = json.dumps([{"op": "remove", "path": "/metadata/finalizers"}])
    for child in sets.children(namespace, "again"):
        kube("patch", "runcommand", child["metadata"]["name"], "--type=json", "-p", release)
    status = sets.wait_for(namespace, "again", lambda s: s.get("state") == "Succeeded", timeout=180)
    assert status["succeeded"] == 4
    assert len(runs_of(emulator, command)) == 2 * ran

    # `--cascade=orphan`: the collector strips the dead owner; orphans of the same template are
    # adopted, and they ran this round's token already, so nothing runs again.
    kube("delete", "runcommandset", "again", "--cascade=orphan", "--wait=true")
    sets.apply(namespace, "again", spec)
    uid = sets.get(namespace, "again")["metadata"]["uid"]
    status = sets.wait_for(
        namespace, "again",
        lambda s: s.get("state") == "Succeeded" and s.get("succeeded") == 4, timeout=120,
    )  # fmt: skip
    for child in sets.children(namespace, "again"):
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    assert len(runs_of(emulator, command)) == 2 * ran  # adopted, not run again


def test_a_selector_matching_nothing_ends_the_round_and_stops_listing(
    sets: Sets,  # noqa: F811
    emulator: Emulator,
    namespace: str,
    management_cluster: ControlPlane,
    kubectl_path: str,
) -> None:
    """Issue 24, defect 6: no more Reconciling for good; the set says to bump runToken."""
    spec = selector_spec(f"echo {namespace}")
    spec["clusterSelector"]["matchTags"] = {"fleet": f"nothing-{namespace}"}
    sets.apply(namespace, "empty", spec)
    status = sets.wait_for(namespace, "empty", lambda s: s.get("state") == "Failed")
    assert status["reason"] == "NoTargets" and "runToken" in status["message"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Stalled"] == "True" and "Reconciling" not in conditions
    lists = emulator.cluster_lists()
    time.sleep(5)
    assert emulator.cluster_lists() == lists  # the round is over: nothing listed again
    described = kubectl(kubectl_path, management_cluster.kubeconfig, "-n", namespace,
                        "describe", "runcommandset", "empty").stdout  # fmt: skip
    assert "NoTargets" in described and "Events:  <none>" not in described


def test_a_set_past_max_failures_posts_the_event_describe_shows(
    sets: Sets,  # noqa: F811
    namespace: str,
    management_cluster: ControlPlane,
    kubectl_path: str,
) -> None:
    """Issue 24: `describe` showed `Events: <none>` after MaxFailuresExceeded."""
    spec = selector_spec(f"echo {namespace}; exit 3", maxConcurrency=1, maxFailures=0)
    sets.apply(namespace, "failing", spec)
    sets.wait_for(namespace, "failing", lambda s: s.get("state") == "Failed")
    described = poll_until(
        lambda: kubectl(kubectl_path, management_cluster.kubeconfig, "-n", namespace,
                        "describe", "runcommandset", "failing").stdout,
        lambda text: "MaxFailuresExceeded" in events_of(text),
        what="describe shows the MaxFailuresExceeded event",
        timeout=30,
        interval=0.5,
    )  # fmt: skip
    events = events_of(described)
    assert "Warning" in events and "MaxFailuresExceeded" in events, described
    assert "RoundStarted" in events


def events_of(described: str) -> str:
    return described.split("Events:")[-1] if "Events:" in described else ""
