"""A RunCommandSet across three real target API servers: the emulator (execute mode) runs each
child's command with real kubectl against the kubeconfig of its own cluster, so what the
selector chose is visible on the targets themselves, not only in the operator's status."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane, running
from tests.helpers import poll_until
from tests.kube import kubectl, kubectl_json
from tests.operator.conftest import CRD, SET_CRD
from tests.stack import (
    SUBSCRIPTION_ID,
    Emulator,
    cluster_entry,
    emulator_config,
    running_emulator,
    running_operator,
)

OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000003"
GROUP = "rg-targets"
NAMESPACE = "fleet-targets"
CREATED = "made-by-the-fleet"
# name: (subscription, ring tag). The selector asks for ring=early: alpha and gamma, which sit
# in different subscriptions; beta is in the first subscription with ring=late.
TARGETS = {
    "alpha": (SUBSCRIPTION_ID, "early"),
    "beta": (SUBSCRIPTION_ID, "late"),
    "gamma": (OTHER_SUBSCRIPTION, "early"),
}


@pytest.fixture
def planes(target_cluster: ControlPlane, tmp_path: Path) -> Iterator[dict[str, ControlPlane]]:
    """The session's target plus two more target API servers: one per cluster."""
    with (
        running("target-beta", tmp_path / "beta") as beta,
        running("target-gamma", tmp_path / "gamma") as gamma,
    ):
        yield {"alpha": target_cluster, "beta": beta, "gamma": gamma}


def test_a_tag_selector_runs_on_exactly_the_matching_targets(
    planes: dict[str, ControlPlane], kubectl_path: str, tmp_path: Path
) -> None:
    config = emulator_config(
        [
            cluster_entry(
                name,
                planes[name].kubeconfig,
                subscriptionId=subscription,
                resourceGroup=GROUP,
                tags={"ring": ring},
            )
            for name, (subscription, ring) in TARGETS.items()
        ]
    )
    with ExitStack() as stack:
        # Its own management plane and operator, so the session operator (all namespaces,
        # the session emulator) never sees this set.
        management = stack.enter_context(running("fleet-targets-mgmt", tmp_path / "mgmt"))
        for path in (CRD, SET_CRD):
            kubectl(kubectl_path, management.kubeconfig, "apply", "--server-side", "-f", str(path))
        kubectl(kubectl_path, management.kubeconfig, "wait", "--for=condition=Established",
                "crd/runcommands.aks.gitops.dev", "crd/runcommandsets.aks.gitops.dev")  # fmt: skip
        kubectl(kubectl_path, management.kubeconfig, "create", "namespace", NAMESPACE)
        emulator = stack.enter_context(running_emulator(config, tmp_path / "emulator"))
        stack.enter_context(
            running_operator(
                management.kubeconfig, emulator, tmp_path / "operator", "--namespace", NAMESPACE
            )
        )
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommandSet",
            "metadata": {"name": "make-namespace", "namespace": NAMESPACE},
            "spec": {
                "template": {"command": f"kubectl create namespace {CREATED}"},
                "clusterSelector": {
                    "subscriptions": [SUBSCRIPTION_ID, OTHER_SUBSCRIPTION],
                    "matchTags": {"ring": "early"},
                },
            },
        }
        kubectl(kubectl_path, management.kubeconfig, "apply", "-f", "-", stdin=json.dumps(body))
        status = wait_final(kubectl_path, management.kubeconfig)

        assert status["state"] == "Succeeded", status
        assert status["total"] == 2
        assert {e["clusterId"].rsplit("/", 1)[-1] for e in status["clusters"]} == {
            "alpha",
            "gamma",
        }
        for name, plane in planes.items():
            present = has_namespace(kubectl_path, plane.kubeconfig)
            assert present == (name != "beta"), f"{CREATED} on {name}: {present}"
        assert started_per_cluster(emulator) == {"alpha": 1, "gamma": 1}
        # The session's target is shared: leave it as it was.
        kubectl(kubectl_path, planes["alpha"].kubeconfig, "delete", "namespace", CREATED,
                "--wait=false")  # fmt: skip


def wait_final(kubectl_path: str, kubeconfig: Path, timeout: float = 120) -> dict[str, Any]:
    def status() -> dict[str, Any]:
        got = kubectl_json(kubectl_path, kubeconfig, "-n", NAMESPACE, "get", "runcommandset",
                           "make-namespace")  # fmt: skip
        return dict(got.get("status") or {})

    return poll_until(
        status,
        lambda seen: seen.get("state") in ("Succeeded", "Failed"),
        what="the set finishes",
        timeout=timeout,
        interval=0.5,
        describe=json.dumps,
    )


def has_namespace(kubectl_path: str, kubeconfig: Path) -> bool:
    listed = kubectl_json(kubectl_path, kubeconfig, "get", "namespaces")
    return CREATED in {item["metadata"]["name"] for item in listed["items"]}


def started_per_cluster(emulator: Emulator) -> Counter[str]:
    return Counter(str(post["cluster"]).rsplit("/", 1)[-1] for post in emulator.started_posts())
