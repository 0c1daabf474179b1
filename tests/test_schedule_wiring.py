"""The schedule controller (controller/schedules.py) against a real API server, on a
hand-turned clock and without kopf: two replicas deciding one tick at once make one child; a
look that follows a lost status write creates nothing; a child is owned, labelled and
annotated; history limits delete through the API server with the child's uid."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import kubernetes
import pytest

from controller.kube import KubeApi, ObjectRef
from controller.schedules import Schedules
from tests.controlplane import ControlPlane
from tests.controlplane.launcher import REPO_ROOT
from tests.helpers import SUBSCRIPTION, poll_until
from tests.kube import kubectl, kubectl_json

CLUSTER = {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg", "name": "aks"}
_names = count()


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(scope="module")
def crds(management_cluster: ControlPlane, kubectl_path: str) -> ControlPlane:
    for name in ("runcommands", "runcommandsets", "runcommandschedules"):
        path = REPO_ROOT / "crds" / f"aks.gitops.dev_{name}.yaml"
        kubectl(kubectl_path, management_cluster.kubeconfig, "apply", "--server-side",
                "-f", str(path))  # fmt: skip
        kubectl(kubectl_path, management_cluster.kubeconfig, "wait",
                "--for=condition=Established", f"crd/{name}.aks.gitops.dev")  # fmt: skip

        # Established comes a moment before the resource's storage serves (429 meanwhile).
        def listed(plural: str = name) -> int:
            config = management_cluster.kubeconfig
            return kubectl(kubectl_path, config, "get", plural, "-A", check=False).returncode

        poll_until(
            listed,
            lambda returncode: returncode == 0,
            what=f"{name} served",
            timeout=30,
            interval=0.2,
        )
    return management_cluster


@pytest.fixture
async def kube(crds: ControlPlane) -> AsyncIterator[KubeApi]:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(crds.kubeconfig), client_configuration=configuration)
    api = KubeApi(configuration)
    yield api
    await api.close()


class World:
    def __init__(self, cluster: ControlPlane, kubectl_path: str, spec: dict[str, Any]) -> None:
        self.cluster, self.kubectl_path = cluster, kubectl_path
        self.namespace = f"wiring-{next(_names)}"
        self.kubectl("create", "namespace", self.namespace)
        metadata = {"name": "tick", "namespace": self.namespace}
        body = {"apiVersion": "aks.gitops.dev/v1alpha1", "kind": "RunCommandSchedule",
                "metadata": metadata, "spec": spec}  # fmt: skip
        self.kubectl("create", "-f", "-", stdin=json.dumps(body))
        created = self.get("runcommandschedule", "tick")
        self.ref = ObjectRef(self.namespace, "tick", created["metadata"]["uid"])
        stamp = created["metadata"]["creationTimestamp"]
        self.created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    def kubectl(self, *args: str, stdin: str | None = None) -> Any:
        return kubectl(self.kubectl_path, self.cluster.kubeconfig, *args, stdin=stdin)

    def get(self, *args: str) -> dict[str, Any]:
        found: dict[str, Any] = kubectl_json(
            self.kubectl_path, self.cluster.kubeconfig, "-n", self.namespace, "get", *args
        )
        return found

    def children(self) -> list[dict[str, Any]]:
        return list(self.get("runcommands")["items"])

    def events(self, reason: str) -> list[str]:
        return [e["message"] for e in self.get("events")["items"] if e["reason"] == reason]

    def next_tick(self) -> datetime:
        """The first whole minute after the schedule's creation, a second past it."""
        start = self.created.replace(second=0, microsecond=0) + timedelta(minutes=1)
        return start + timedelta(seconds=1)


@pytest.fixture
def world(crds: ControlPlane, kubectl_path: str) -> Iterator[Any]:
    def make(**extra: Any) -> World:
        spec = {"schedule": "* * * * *",
                "runCommandTemplate": {"cluster": CLUSTER, "command": "date"}, **extra}  # fmt: skip
        return World(crds, kubectl_path, spec)

    yield make


async def test_two_replicas_deciding_one_tick_at_once_make_one_child(
    kube: KubeApi, world: Any
) -> None:
    # Suspended: when the e2e tiers' operator runs in the same session, it watches every
    # namespace and would otherwise run the child (and finish it) while this test looks.
    template = {"cluster": CLUSTER, "command": "date", "suspend": True}
    w = world(runCommandTemplate=template)
    clock = Clock(w.next_tick())
    first, second = Schedules(kube, now=clock), Schedules(kube, now=clock)
    await asyncio.gather(first._look(w.ref), second._look(w.ref))
    # The replica whose status write lost the race (409) looks again at once, as its scheduler
    # would (not started here): the status then counts the child, whichever replica listed first.
    for _ in range(3):
        await first._look(w.ref)
        if w.get("runcommandschedule", "tick")["status"].get("active") == 1:
            break
    (child,) = w.children()
    minutes = int((clock.moment - timedelta(seconds=1)).timestamp()) // 60
    assert child["metadata"]["name"] == f"tick-{minutes}"
    assert child["metadata"]["labels"] == {
        "aks.gitops.dev/runcommandschedule": "tick",
        "aks.gitops.dev/scheduled-minute": str(minutes),
    }
    assert child["metadata"]["annotations"]["aks.gitops.dev/scheduled-time"] == (
        clock.moment - timedelta(seconds=1)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    (owner,) = child["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RunCommandSchedule",
                                                                  w.ref.uid, True)  # fmt: skip
    assert child["spec"]["command"] == "date"
    assert len(w.events("RunCreated")) == 1  # the replica whose create lost made nothing
    status = w.get("runcommandschedule", "tick")["status"]
    assert status["active"] == 1 and status["activeRuns"] == [child["metadata"]["name"]]
    for replica in (first, second):
        await replica.close()


async def test_a_look_after_a_lost_status_write_records_the_child_and_creates_nothing(
    kube: KubeApi, world: Any
) -> None:
    w = world()
    clock = Clock(w.next_tick())
    replica = Schedules(kube, now=clock)
    await replica._look(w.ref)
    # The status as if the write after the create had never happened.
    w.kubectl("-n", w.namespace, "patch", "runcommandschedule", "tick", "--subresource=status",
              "--type=merge", "-p", json.dumps({"status": {"lastScheduleTime": None,
                                                          "lastTickTime": None}}))  # fmt: skip
    restarted = Schedules(kube, now=clock)
    await restarted._look(w.ref)
    assert len(w.children()) == 1
    status = w.get("runcommandschedule", "tick")["status"]
    assert status["lastTickTime"] == status["lastScheduleTime"]
    assert len(w.events("RunCreated")) == 1
    await replica.close()
    await restarted.close()


async def test_history_limits_delete_the_finished_child_through_the_api_server(
    kube: KubeApi, world: Any
) -> None:
    w = world(successfulRunsHistoryLimit=0)
    clock = Clock(w.next_tick())
    replica = Schedules(kube, now=clock)
    await replica._look(w.ref)
    (child,) = w.children()
    generation = child["metadata"]["generation"]
    finished = {"observedGeneration": generation, "state": "Succeeded", "exitCode": 0,
                "conditions": [{"type": "Finished", "status": "True", "reason": "Succeeded",
                                "observedGeneration": generation,
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}  # fmt: skip
    patch = json.dumps({"status": finished})
    w.kubectl("-n", w.namespace, "patch", "runcommand", child["metadata"]["name"],
              "--subresource=status", "--type=merge", "-p", patch)  # fmt: skip
    clock.moment += timedelta(seconds=5)
    await replica._look(w.ref)
    assert w.children() == []
    assert len(w.events("RunDeleted")) == 1
    last = w.get("runcommandschedule", "tick")["status"]["lastRun"]
    assert (last["name"], last["state"], last["exitCode"]) == (
        child["metadata"]["name"], "Succeeded", 0,
    )  # fmt: skip
    await replica.close()


async def test_an_invalid_spec_from_an_older_crd_is_stalled(kube: KubeApi, world: Any) -> None:
    w = world()
    # The CRD checks a schedule's shape; a day that never comes (Feb 31) has the shape, and is
    # the operator's to refuse.
    w.kubectl("-n", w.namespace, "patch", "runcommandschedule", "tick", "--type=merge",
              "-p", json.dumps({"spec": {"schedule": "0 3 31 2 *"}}))  # fmt: skip
    replica = Schedules(kube, now=Clock(datetime.now(UTC)))
    await replica._look(w.ref)
    status = w.get("runcommandschedule", "tick")["status"]
    assert (status["state"], status["reason"]) == ("Failed", "InvalidSpec")
    assert "0 3 31 2 *" in status["message"]
    assert w.children() == []
    await replica.close()
