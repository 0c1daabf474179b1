"""The chart's least-privilege RBAC is enough: the real operator, authenticated as the chart's
ServiceAccount (a real token), runs a RunCommand end to end in a watched namespace.

A control plane of its own keeps the session's cluster-wide operator out of the way."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, running
from tests.controlplane.launcher import REPO_ROOT, bin_dir
from tests.kube import kubectl
from tests.operator.rc import RunCommands, manifest
from tests.stack import CLIENT_SECRET, TENANT_ID, Emulator, Operator, running_operator

CHART = REPO_ROOT / "charts" / "aks-runcommand-operator"
OPERATOR_NS, WATCHED, RELEASE = "platform-ops", "team-a", "rc"
ACCOUNT = f"{RELEASE}-aks-runcommand-operator"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running("chart-rbac", tmp_path_factory.mktemp("chart-rbac")) as plane:
        yield plane


@pytest.fixture(scope="module")
def service_account_kubeconfig(
    cluster: ControlPlane, kubectl_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Install the chart (namespaced mode), then log in with its ServiceAccount's token."""
    kube = cluster.kubeconfig
    kubectl(kubectl_path, kube, "apply", "--server-side", "-f", str(CHART / "crds"))
    kubectl(kubectl_path, kube, "wait", "--for=condition=Established", "--all", "crd")
    for namespace in (OPERATOR_NS, WATCHED):
        kubectl(kubectl_path, kube, "create", "namespace", namespace)
    home = tmp_path_factory.mktemp("helm-home")
    helm_env = {
        **os.environ,
        **{f"HELM_{kind}_HOME": str(home / kind) for kind in ("CACHE", "CONFIG", "DATA")},
    }
    subprocess.run(
        [str(bin_dir() / "helm"), "install", RELEASE, str(CHART), "-n", OPERATOR_NS,
         "--kubeconfig", str(kube), "--set", f"watchNamespaces={{{WATCHED}}}"],
        env=helm_env, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    token = kubectl(kubectl_path, kube, "create", "token", ACCOUNT, "-n", OPERATOR_NS).stdout
    config = json.loads(kube.read_text())
    config["users"] = [{"name": ACCOUNT, "user": {"token": token.strip()}}]
    config["contexts"][0]["context"]["user"] = ACCOUNT
    path = kube.with_name("kubeconfig-operator-sa")
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def sa_operator(
    service_account_kubeconfig: Path, emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    with running_operator(
        service_account_kubeconfig, emulator, tmp_path_factory.mktemp("sa-operator"),
        "--namespace", WATCHED, "--log-format", "json",  # as the chart runs it
    ) as operator:  # fmt: skip
        yield operator


def test_operator_runs_with_only_the_charts_permissions(
    sa_operator: Operator, cluster: ControlPlane, kubectl_path: str
) -> None:
    rc = RunCommands(kubectl_path, cluster.kubeconfig)  # the admin writes, the operator acts
    ns_yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-chart-rbac\n"
    rc.kubectl("-n", WATCHED, "create", "configmap", "files", f"--from-literal=ns.yaml={ns_yaml}")
    rc.kubectl(
        "-n", WATCHED, "create", "secret", "generic", "aks-runcommand-credentials",
        f"--from-literal=tenantId={TENANT_ID}",
        "--from-literal=clientId=11111111-0000-0000-0000-00000000eeee",
        f"--from-literal=clientSecret={CLIENT_SECRET}",
    )  # fmt: skip
    rc.apply(
        manifest(
            "seed", WATCHED, "kubectl apply -f ns.yaml",
            filesFrom=[{"configMapRef": {"name": "files"}}],
        )
    )  # fmt: skip

    body = rc.wait(WATCHED, "seed")
    status = body["status"]
    # Needs: watch/patch runcommands, patch status, get configmaps and secrets, create events.
    assert status["state"] == "Succeeded", status
    assert "namespace/from-chart-rbac created" in status["logs"]
    reasons = {event["reason"] for event in rc.events(WATCHED, "seed")}
    assert {"Submitted", "Succeeded"} <= reasons
    log = sa_operator.log.read_text()
    assert "Forbidden" not in log and " 403" not in log
    # JSON logs a user can filter: the object, the cluster, the command and correlation ids.
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    about_seed = [line for line in lines if (line.get("object") or {}).get("name") == "seed"]
    ours = [line for line in about_seed if "commandId" in line]
    assert {line["message"].split(": ")[1].split(" ")[0] for line in ours} >= {"submitted", "run"}
    for line in ours:
        assert line["object"]["namespace"] == WATCHED
        assert line["cluster"] == status["clusterId"]
        assert (line["commandId"], line["correlationId"]) == (
            status["commandId"], status["correlationId"],
        )  # fmt: skip
