"""Issue 24 for RunCommandSets. A set recreated while its predecessor's children still exist
(defect 1): slow garbage collection, `--cascade=orphan`, Argo CD replacing the set. A finalizer
on the children holds them in the window that looped on ARM (being collected, still naming the
dead set as controller): the set must wait with backoff and say why, then run its own children
once they are gone. Orphans of its own template (`--cascade=orphan`) it adopts, running nothing
again. A selector matching nothing ends the round (defect 6); sets post events."""

from __future__ import annotations

import json
import time
from itertools import pairwise
from typing import Any

import pytest

from controller.settings import FleetSettings
from tests.controlplane import ControlPlane
from tests.helpers import SUBSCRIPTION, poll_until
from tests.kube import kubectl, kubectl_json
from tests.operator.conftest import FLEET_GROUP
from tests.operator.test_fleet_e2e import Sets, runs_of, selector_spec, sets  # noqa: F401
from tests.stack import RESOURCE_GROUP, Emulator

pytestmark = pytest.mark.usefixtures("operator")
# The operator under test backs off as the defaults say; --fleet-follow-seconds is 1 (conftest).
FLEET = FleetSettings()
FOLLOW_SECONDS = 1.0


def list_path(resource_group: str) -> str:
    """The LIST a selector over SUBSCRIPTION and `resource_group` sends, once per look."""
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
        "/providers/Microsoft.ContainerService/managedClusters"
    )


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
    # The collector marks them deleted before the set comes back: from then on no child
    # changes, and only the set's own backoff makes it look again.
    poll_until(
        lambda: sets.children(namespace, "again"),
        lambda children: (
            len(children) == ran and all(c["metadata"].get("deletionTimestamp") for c in children)
        ),
        what="the garbage collector marks the old children deleted",
        timeout=90,
        describe=lambda children: json.dumps([c["metadata"] for c in children]),
    )
    fleet_lists = list_path(FLEET_GROUP)
    looked_before = len(emulator.lists_of(fleet_lists))
    sets.apply(namespace, "again", spec)  # the same set, a new uid
    status = sets.wait_for(
        namespace, "again", lambda s: s.get("reason") == "ChildOwnedElsewhere", timeout=60
    )
    assert "RunCommandSet/again" in status["message"] and "garbage collection" in status["message"]
    assert {c["state"] for c in status["clusters"]} == {"Blocked"}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Reconciling"] == "True"
    # Each look lists the selector's clusters (one LIST per scope, however many pages) and
    # finds the names still held; looks back off, the first wait blocked_first_seconds, each
    # next one twice the last. A loaded machine looks late, never early: lower bounds only.
    looks = poll_until(
        lambda: emulator.lists_of(fleet_lists)[looked_before:],
        lambda times: len(times) >= 4,
        what="the blocked set looks four times (its round's start, then three with backoff)",
        timeout=120,
    )
    gaps = [later - earlier for earlier, later in pairwise(looks[:4])]
    waits = [FLEET.blocked_first_seconds * 2**n for n in range(3)]
    assert all(gap >= wait - 0.1 for gap, wait in zip(gaps, waits, strict=True)), (gaps, waits)
    status = sets.get(namespace, "again")["status"]
    assert (status["state"], status["reason"]) == ("Progressing", "ChildOwnedElsewhere"), status
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
    ended = time.time()
    listed = emulator.lists_of(list_path(FLEET_GROUP))
    # A witness the same operator handles: a set following new clusters in another scope (its
    # LISTs are its own in the emulator's log) looks every follow interval, on the same
    # scheduler as any look of "empty". Listing again with backoff (the other way issue 24
    # offered) would look a set's first backoff after the round ended: once the witness has
    # listed a follow interval past that, such a relist would have been answered first.
    witness: dict[str, Any] = {
        "template": {"command": f"echo witness {namespace}"},
        "clusterSelector": {
            "subscriptions": [SUBSCRIPTION],
            "resourceGroups": [RESOURCE_GROUP],
            "matchTags": {"fleet": f"witness-{namespace}"},
        },
        "followNewClusters": True,
    }
    sets.apply(namespace, "witness", witness)
    due = ended + FLEET.blocked_first_seconds + FOLLOW_SECONDS
    try:
        poll_until(
            lambda: emulator.lists_of(list_path(RESOURCE_GROUP)),
            lambda times: bool(times) and times[-1] >= due,
            what="the witness set lists its clusters after a relist would have been due",
            timeout=60,
        )
    finally:
        sets.delete(namespace, "witness")  # it would list every second for the session
    relisted = emulator.lists_of(list_path(FLEET_GROUP))[len(listed) :]
    assert not relisted, f"listed again after its round ended, at {relisted} (ended {ended})"
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
