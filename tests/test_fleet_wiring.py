"""The RunCommandSet wiring (controller/fleet.py) against in-memory Kubernetes and ARM doubles:
what it reads, when it discovers, how it creates children, and how child changes reach it."""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from controller.arm import ArmError, ClusterRef, DiscoveredCluster
from controller.fleet import Fleet
from controller.inputs import InputReader
from controller.kube import Conflict, KubeApi, ObjectRef
from controller.scheduler import Job
from controller.settings import FleetSettings
from tests.helpers import SUBSCRIPTION as SUB

SET = ObjectRef("ns", "fleet", "set-uid")


class FakeKube:
    """Sets and RunCommands in memory, with resourceVersions and AlreadyExists."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.versions = itertools.count(1)
        self.set: dict[str, Any] = {
            "metadata": {"name": SET.name, "namespace": SET.namespace, "uid": SET.uid,
                         "generation": 1, "resourceVersion": "0"},
            "spec": spec,
        }  # fmt: skip
        self.children: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.events: list[tuple[str, str, str]] = []  # (kind, type, reason)
        self.posted = asyncio.Event()  # set at every event posted

    async def read_runcommand(self, ref: ObjectRef, plural: str = "") -> dict[str, Any] | None:
        return copy.deepcopy(self.set)

    async def list_runcommands(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        key, _, value = selector.partition("=")
        return [
            copy.deepcopy(c)
            for c in self.children.values()
            if c["metadata"]["labels"][key] == value
        ]

    async def create_runcommand(
        self, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.creates += 1
        name = body["metadata"]["name"]
        if name in self.children:
            return None
        body["metadata"]["resourceVersion"] = str(next(self.versions))
        self.children[name] = body
        return copy.deepcopy(body)

    async def patch_runcommand(
        self, namespace: str, name: str, patch: dict[str, Any], version: str
    ) -> None:
        child = self.children[name]
        if child["metadata"]["resourceVersion"] != version:
            raise Conflict(name)
        child["metadata"]["labels"].update(patch["metadata"].get("labels") or {})
        if "ownerReferences" in patch["metadata"]:
            child["metadata"]["ownerReferences"] = patch["metadata"]["ownerReferences"]
        for key, value in patch.get("spec", {}).items():
            if value is None:
                child["spec"].pop(key, None)
            else:
                child["spec"][key] = value
        child["metadata"]["resourceVersion"] = str(next(self.versions))

    async def patch_status(
        self, ref: ObjectRef, status: dict[str, Any], version: str, plural: str = ""
    ) -> dict[str, Any] | None:
        if self.set["metadata"]["resourceVersion"] != version:
            raise Conflict(ref.name)
        self.set["status"] = {**self.set.get("status", {}), **status}
        self.set["metadata"]["resourceVersion"] = str(next(self.versions))
        return copy.deepcopy(self.set)

    async def post_event(
        self, ref: ObjectRef, type_: str, reason: str, message: str, kind: str = "RunCommand"
    ) -> None:
        self.events.append((kind, type_, reason))
        self.posted.set()


class FakeArm:
    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.lists = 0
        self.error: ArmError | None = None

    async def list_clusters(
        self, subscription: str, group: str | None = None
    ) -> list[DiscoveredCluster]:
        self.lists += 1
        if self.error is not None:
            raise self.error
        return [
            DiscoveredCluster(ClusterRef(subscription, "rg", n), {"fleet": "yes"})
            for n in self.names
        ]


class FakeInputs:
    def __init__(self, arm: FakeArm) -> None:
        self.arm = arm

    async def discovery_client(self, namespace: str, spec: object) -> FakeArm:
        return self.arm


def selector_spec(**extra: Any) -> dict[str, Any]:
    return {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]}, **extra}


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeKube, FakeArm, Fleet]]:
    kube, arm = FakeKube(selector_spec(maxConcurrency=1)), FakeArm("a", "b")
    fleet = Fleet(
        cast(KubeApi, kube),
        cast(InputReader, FakeInputs(arm)),
        settings=FleetSettings(follow_seconds=3600, blocked_first_seconds=60),
    )
    await fleet.start()
    yield kube, arm, fleet
    await fleet.close()


async def plan(fleet: Fleet) -> None:
    await fleet._run(Job(SET.uid, "plan", SET))  # one look, without timers


async def test_a_round_discovers_once_and_creates_owned_children(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    kube, arm, fleet = world
    await plan(fleet)
    assert arm.lists == 1 and len(kube.children) == 2
    child = next(iter(kube.children.values()))
    (owner,) = child["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "aks.gitops.dev/v1alpha1", "kind": "RunCommandSet",
                     "name": "fleet", "uid": "set-uid", "controller": True,
                     "blockOwnerDeletion": True}  # fmt: skip
    assert [c["spec"]["suspend"] for c in kube.children.values()].count(False) == 1
    assert kube.set["status"]["round"] == 1 and kube.set["status"]["total"] == 2

    await plan(fleet)
    assert arm.lists == 1  # the round's targets are its children now: no second listing


async def test_a_restarted_operator_finds_the_children_and_creates_no_twin(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    kube, arm, fleet = world
    await plan(fleet)
    restarted = Fleet(cast(KubeApi, kube), cast(InputReader, FakeInputs(arm)))
    await restarted._run(Job(SET.uid, "plan", SET))
    assert kube.creates == 2 and len(kube.children) == 2
    assert arm.lists == 1  # the round had started: its children say who its targets are


async def test_discovery_failure_is_said_in_status_and_starts_nothing(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    kube, arm, fleet = world
    arm.error = ArmError("throttled", code="TooManyRequests")
    await plan(fleet)
    assert not kube.children
    status = kube.set["status"]
    assert status["reason"] == "DiscoveryFailed" and "TooManyRequests" in status["message"]


async def test_an_invalid_set_is_stalled_with_its_reason(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    kube, _, fleet = world
    kube.set["spec"] = {"template": {"command": "true"}}
    await plan(fleet)
    assert kube.set["status"]["reason"] == "InvalidSpec" and kube.set["status"]["state"] == "Failed"


async def test_a_child_change_plans_its_owner_soon_even_behind_a_far_timer(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    kube, _, fleet = world
    fleet._plan(SET, 3600)  # a follow timer, far off
    owner = {"kind": "RunCommandSet", "name": "fleet", "uid": SET.uid, "controller": True}
    child = {"metadata": {"namespace": "ns", "ownerReferences": [owner]}}
    fleet.child_changed(child)
    for _ in range(100):
        if kube.set.get("status"):
            break
        await asyncio.sleep(0.02)
    assert kube.set["status"]["total"] == 2


async def recreated_over_its_children(world: tuple[FakeKube, FakeArm, Fleet]) -> None:
    """The set ran its round, and is now a new set of that name over its children, which
    name the old one (another uid); its ARM lists are counted from now."""
    kube, arm, fleet = world
    await plan(fleet)
    for child in kube.children.values():
        child["metadata"]["ownerReferences"][0]["uid"] = "old-uid"
    kube.set["status"] = {}
    arm.lists = 0


async def test_children_held_by_a_dead_predecessor_are_waited_for_with_backoff_not_relisted(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    """Issue 24, defect 1: the set recreated while its predecessor's children remain. Creating
    them answers AlreadyExists; the set must not plan (and list ARM) again at once."""
    kube, arm, fleet = world
    await recreated_over_its_children(world)
    kube.posted = asyncio.Event()  # the events of the first round are behind us
    before = time.monotonic()
    fleet.reconcile(kube.set)
    await asyncio.wait_for(kube.posted.wait(), 10)  # the look that found the names held ends
    assert arm.lists == 1
    # Its next look is the back-off's first delay away (60 s here), not at once.
    assert fleet._scheduler.is_pending(SET.uid)
    assert before + 60 <= fleet._due[SET.uid] <= time.monotonic() + 60
    status = kube.set["status"]
    assert status["reason"] == "ChildOwnedElsewhere" and "RunCommandSet/fleet" in status["message"]
    assert ("RunCommandSet", "Warning", "ChildOwnedElsewhere") in kube.events
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == "old-uid"
               for c in kube.children.values())  # fmt: skip


async def test_a_blocked_set_lists_at_each_look_and_runs_each_target_as_its_name_frees(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    """Found by the recreate e2e: a look that did not list took the round's targets from the
    set's own children alone, so a blocked set turned Failed NoTargets at its next look, and a
    name freed after the others ran was never run."""
    kube, arm, fleet = world
    await recreated_over_its_children(world)
    await plan(fleet)  # the round starts: both names held
    await plan(fleet)  # a backed-off look: still held
    assert kube.set["status"]["reason"] == "ChildOwnedElsewhere", kube.set["status"]
    assert arm.lists == 2  # a list per look: no child of its own says who its targets are
    first, second = sorted(kube.children)
    del kube.children[first]  # the collector takes one, then the other
    await plan(fleet)
    del kube.children[second]
    await plan(fleet)  # nothing holds a name now; at the last look one was held
    owners = [c["metadata"]["ownerReferences"][0]["uid"] for c in kube.children.values()]
    assert owners == [SET.uid, SET.uid] and kube.set["status"]["total"] == 2, kube.set["status"]


async def test_orphans_of_the_same_template_are_adopted_and_not_run_again(
    world: tuple[FakeKube, FakeArm, Fleet],
) -> None:
    kube, _, fleet = world
    await plan(fleet)
    for child in kube.children.values():  # what `kubectl delete --cascade=orphan` leaves
        del child["metadata"]["ownerReferences"]
    kube.set["status"] = {}
    creates = kube.creates
    await plan(fleet)  # adopts
    await plan(fleet)  # plans them as its own
    for child in kube.children.values():
        assert child["metadata"]["ownerReferences"][0]["uid"] == SET.uid
    assert kube.creates == creates
    assert kube.set["status"]["total"] == 2 and "reason" in kube.set["status"]
    assert kube.set["status"]["reason"] == "Progressing"
