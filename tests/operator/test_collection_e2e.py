"""Collection, as in a cluster: the test control planes run kube-controller-manager's garbage
collector and namespace controller, so what a RunCommand owns goes with it, `--cascade=orphan`
keeps it, and a namespace holding RunCommands finishes terminating (issue 24, the test stack)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.kube import absent, eventually, kubectl, kubectl_json
from tests.operator.rc import RunCommands, manifest

pytestmark = pytest.mark.usefixtures("operator")
# The garbage collector finds a newly installed CRD's objects at its next discovery (every 30 s).
COLLECTED_WITHIN = 120.0


def owners(rc: RunCommands, namespace: str, configmap: str) -> list[Any]:
    got = kubectl_json(rc.kubectl_path, rc.kubeconfig, "-n", namespace, "get", "cm", configmap)
    return list(got["metadata"].get("ownerReferences") or [])


@pytest.fixture
def rc(management_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    return RunCommands(kubectl_path, management_cluster.kubeconfig)


def output_configmap(rc: RunCommands, namespace: str, name: str) -> str:
    status = rc.wait(namespace, name)["status"]
    assert status["state"] == "Succeeded", status
    ref: str = status["logsRef"]["name"]
    rc.kubectl("-n", namespace, "get", "configmap", ref)  # it exists
    return ref


def test_deleting_a_runcommand_collects_its_output_configmap(
    rc: RunCommands, namespace: str
) -> None:
    rc.apply(manifest("collected", namespace, "echo collected"))
    output = output_configmap(rc, namespace, "collected")
    rc.kubectl("-n", namespace, "delete", "runcommand", "collected")
    eventually(
        "the output ConfigMap collected",
        absent(rc.kubectl_path, rc.kubeconfig, "-n", namespace, "configmap", output),
        COLLECTED_WITHIN,
    )


def test_an_orphaning_delete_keeps_the_output(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("orphaning", namespace, "echo kept"))
    output = output_configmap(rc, namespace, "orphaning")
    rc.kubectl("-n", namespace, "delete", "runcommand", "orphaning", "--cascade=orphan")
    # The garbage collector orphans it: removes the owner reference, keeps the object.
    orphaned = lambda: not owners(rc, namespace, output)  # noqa: E731
    eventually("the output orphaned", orphaned, COLLECTED_WITHIN)
    kept = kubectl_json(rc.kubectl_path, rc.kubeconfig, "-n", namespace, "get", "configmap", output)
    assert kept["data"]["output"] == "kept\n"


def test_a_namespace_holding_runcommands_finishes_terminating(
    rc: RunCommands, management_cluster: ControlPlane, kubectl_path: str
) -> None:
    kubectl(kubectl_path, management_cluster.kubeconfig, "create", "namespace", "doomed")
    rc.apply(manifest("finished", "doomed", "echo done"))
    output_configmap(rc, "doomed", "finished")
    rc.apply(manifest("pending", "doomed", "sleep 600", suspend=True))
    kubectl(kubectl_path, management_cluster.kubeconfig, "delete", "namespace", "doomed",
            "--wait=false")  # fmt: skip
    eventually(
        "namespace doomed deleted",
        absent(kubectl_path, management_cluster.kubeconfig, "namespace", "doomed"),
        COLLECTED_WITHIN,
    )
