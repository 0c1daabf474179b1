"""End to end on real parts: kopf operator -> real management API server; emulator -> real
kubectl against a real target API server."""

from __future__ import annotations

import json
import time

import pytest

from tests.controlplane import ControlPlane
from tests.kube import kubectl
from tests.operator.rc import RunCommands, condition, manifest
from tests.stack import Emulator, Operator

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def rc(management_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    return RunCommands(kubectl_path, management_cluster.kubeconfig)


def submissions_for(emulator: Emulator, correlation_ids: set[str]) -> list[dict[str, object]]:
    return [s for s in emulator.submissions() if s["correlationId"] in correlation_ids]


def test_seed_example_creates_a_namespace_in_the_target_cluster(
    rc: RunCommands, namespace: str, target_cluster: ControlPlane, kubectl_path: str
) -> None:
    ns_yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: dummy-from-runcommand\n"
    rc.kubectl("-n", namespace, "create", "configmap", "manifests", "--from-literal", f"ns.yaml={ns_yaml}")
    rc.apply(manifest("seed", namespace, "kubectl apply -f ns.yaml",
                      filesFrom=[{"configMapRef": {"name": "manifests"}}]))

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
