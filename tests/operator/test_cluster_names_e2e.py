"""Cluster names on the real API server, as ARM allows them (issue 24): Unicode resource group
names are accepted in both cluster forms of RunCommands and RunCommandSets, and a name ARM refuses
is refused with a sentence, not a raw regular expression. Server-side dry runs: nothing is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.kube import kubectl
from tests.stack import SUBSCRIPTION_ID

pytestmark = pytest.mark.usefixtures("crd")
GOOD = ["rg-café", "グループ(1)", "Ünïcødé_группа.v2", "a" * 90]
BAD = ["rg.", "a b", "rg✓"]


def cluster_id(group: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}"
        "/providers/Microsoft.ContainerService/managedClusters/aks"
    )


def forms(group: str) -> list[dict[str, Any]]:
    return [
        {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": group, "name": "aks"},
        {"resourceId": cluster_id(group)},
    ]


def bodies(group: str) -> list[dict[str, Any]]:
    made = []
    for cluster in forms(group):
        made.append({"kind": "RunCommand", "spec": {"cluster": cluster, "command": "true"}})
        fleet = {"template": {"command": "true"}, "clusters": [cluster]}
        made.append({"kind": "RunCommandSet", "spec": fleet})
    return [
        {"apiVersion": "aks.gitops.dev/v1alpha1", "metadata": {"name": "names",
         "namespace": "default"}, **body}
        for body in made
    ]  # fmt: skip


def dry_run(kubectl_path: str, kubeconfig: Path, body: dict[str, Any]) -> tuple[int, str]:
    done = kubectl(kubectl_path, kubeconfig, "create", "--dry-run=server", "-f", "-",
                   stdin=json.dumps(body), check=False)  # fmt: skip
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("group", "allowed"), [*((g, True) for g in GOOD), *((g, False) for g in BAD)]
)
def test_resource_group_names_are_checked_as_arm_checks_them(
    management_cluster: ControlPlane, kubectl_path: str, group: str, allowed: bool
) -> None:
    for body in bodies(group):
        code, stderr = dry_run(kubectl_path, management_cluster.kubeconfig, body)
        assert (code == 0) == allowed, (body["kind"], body["spec"], stderr)
        if not allowed:
            assert "as ARM allows" in stderr, stderr
            assert "\\w" not in stderr and "[-" not in stderr, stderr  # no regular expression
