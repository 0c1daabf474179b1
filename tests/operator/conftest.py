"""A running stack for end-to-end tests: CRD on the management cluster, the emulator in front of
the target cluster, and the operator watching all namespaces."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane
from tests.controlplane.launcher import REPO_ROOT, free_port
from tests.kube import kubectl
from tests.stack import (
    Emulator,
    Operator,
    cluster_entry,
    emulator_config,
    running_emulator,
    running_operator,
)

CRD = REPO_ROOT / "crds" / "aks.gitops.dev_runcommands.yaml"
SET_CRD = REPO_ROOT / "crds" / "aks.gitops.dev_runcommandsets.yaml"
SCHEDULE_CRD = REPO_ROOT / "crds" / "aks.gitops.dev_runcommandschedules.yaml"
# A fleet for RunCommandSets: every member points at the one target API server. Two
# subscriptions, tagged; fleet-skip carries a tag value the tests' selector leaves out.
FLEET_SUBSCRIPTION = "00000000-0000-0000-0000-000000000002"
FLEET_GROUP = "rg-fleet"
FLEET = {
    "fleet-a": ("prod", None),
    "fleet-b": ("dev", None),
    "fleet-c": ("prod", FLEET_SUBSCRIPTION),
    "fleet-d": ("dev", FLEET_SUBSCRIPTION),
    "fleet-skip": ("test", None),
}
_namespaces = itertools.count()
MAX_CONTEXT_BYTES = 64 * 1024
METRICS_PORT = free_port()


@pytest.fixture(scope="session")
def crd(management_cluster: ControlPlane, kubectl_path: str) -> Path:
    for path in (CRD, SET_CRD, SCHEDULE_CRD):
        kubectl(
            kubectl_path, management_cluster.kubeconfig, "apply", "--server-side", "-f", str(path)
        )
    kubectl(
        kubectl_path,
        management_cluster.kubeconfig,
        "wait",
        "--for=condition=Established",
        "crd/runcommands.aks.gitops.dev",
        "crd/runcommandsets.aks.gitops.dev",
        "crd/runcommandschedules.aks.gitops.dev",
    )
    return CRD


@pytest.fixture(scope="session")
def emulator(
    target_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    config = emulator_config(
        [
            cluster_entry("aks-target", target_cluster.kubeconfig),
            cluster_entry("aks-aad", target_cluster.kubeconfig, aadManaged=True),
            *(
                cluster_entry(
                    name,
                    target_cluster.kubeconfig,
                    resourceGroup=FLEET_GROUP,
                    tags={"fleet": "e2e", "env": env},
                    **({"subscriptionId": subscription} if subscription else {}),
                )
                for name, (env, subscription) in FLEET.items()
            ),
        ],
        listPageSize=2,  # the selector's lists take several pages
    )
    with running_emulator(config, tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(scope="session")
def operator(
    crd: Path,
    management_cluster: ControlPlane,
    emulator: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    with running_operator(
        management_cluster.kubeconfig,
        emulator,
        tmp_path_factory.mktemp("operator"),
        "--all-namespaces",
        "--max-context-bytes",
        str(MAX_CONTEXT_BYTES),
        "--metrics-port",
        str(METRICS_PORT),
        "--fleet-follow-seconds",
        "1",  # RunCommandSets with followNewClusters notice a new cluster within a second
    ) as running:
        yield running


@pytest.fixture
def namespace(management_cluster: ControlPlane, kubectl_path: str) -> str:
    name = f"e2e-{next(_namespaces)}"
    kubectl(kubectl_path, management_cluster.kubeconfig, "create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def metrics_port(operator: Operator) -> int:
    """Where the session's operator serves Prometheus /metrics."""
    return METRICS_PORT
