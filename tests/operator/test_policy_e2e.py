"""Who may target what, tried on the real API server (the chart's ValidatingAdmissionPolicy, the
RunCommandPolicy CRD) and the real operator with the emulator behind it.

Each case runs twice: once with the admission policy bound (`kubectl apply` refuses or admits),
once with the binding removed (the operator alone decides; a refused run ends Failed with reason
PolicyDenied and the emulator records no POST for it). The table the README shows is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.controlplane.launcher import REPO_ROOT
from tests.operator.rc import RunCommands, manifest
from tests.stack import NO_OPERATOR_IDENTITY_LABEL, RESOURCE_GROUP, SUBSCRIPTION_ID, Emulator

pytestmark = pytest.mark.usefixtures("operator")
CHART = REPO_ROOT / "charts" / "aks-runcommand-operator"
POLICY_CRD = REPO_ROOT / "crds" / "aks.gitops.dev_runcommandpolicies.yaml"
OTHER_SUBSCRIPTION = "99999999-0000-0000-0000-000000000009"
TEAM_LABEL = "e2e.aks.gitops.dev/team"


@dataclass(frozen=True)
class Case:
    """One row of the table: who (namespace), what (target, identity, files), and the outcome
    expected at admission and from the operator."""

    name: str
    team: str | None  # the namespace's team label: "a", "b" or none
    operator_identity_allowed: bool  # the operator's --operator-identity-* flag
    secret: bool  # a ClientSecret credentials Secret in the namespace
    subscription: str
    cluster: str
    secret_files: bool
    admitted: bool
    runs: bool
    rule: str  # in the refusal's message
    by_resource_id: bool = False  # spec.cluster.resourceId instead of its three parts

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.secret_files:
            spec["filesFrom"] = [{"secretRef": {"name": "script"}}]
        return spec


U = uuid.uuid4().hex[:6]
CASES = [
    Case("a-own-secret-allowed-cluster", "a", True, True, SUBSCRIPTION_ID, "aks-target",
         False, True, True, ""),
    Case("a-other-subscription", "a", True, True, OTHER_SUBSCRIPTION, f"aks-x{U}",
         False, False, False, "RunCommandPolicy team-a-" + U + " rule spec.clusters"),
    Case("a-other-subscription-by-id", "a", True, True, OTHER_SUBSCRIPTION, f"aks-u{U}",
         False, False, False, "RunCommandPolicy team-a-" + U + " rule spec.clusters", True),
    Case("a-secret-files", "a", True, True, SUBSCRIPTION_ID, f"aks-y{U}",
         True, False, False, "rule spec.allowSecretFiles is false"),
    Case("a-operator-identity", "a", True, False, SUBSCRIPTION_ID, f"aks-z{U}",
         False, True, False, "rule spec.identities does not allow OperatorIdentity"),
    Case("b-nothing-allowed", "b", True, True, SUBSCRIPTION_ID, f"aks-v{U}",
         False, False, False, "RunCommandPolicy team-b-" + U + " rule spec.clusters"),
    Case("none-operator-identity-not-allowed", None, False, False, SUBSCRIPTION_ID, f"aks-w{U}",
         False, True, False, "may not use the operator's own identity"),
    Case("none-operator-identity-allowed", None, True, False, SUBSCRIPTION_ID, "aks-target",
         False, True, True, ""),
]  # fmt: skip


def policies() -> str:
    """team a: its own Secret only, the test subscription's resource group, no Secret files;
    team b: no cluster at all."""
    team_a = {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandPolicy",
        "metadata": {"name": f"team-a-{U}"},
        "spec": {
            "namespaceSelector": {"matchLabels": {TEAM_LABEL: f"a-{U}"}},
            "clusters": [
                # A prefix, in another case than the target's: patterns are case-insensitive.
                {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": "RG-PLAT*", "name": "*"}
            ],
            "allowSecretFiles": False,
            "identities": ["ClientSecret"],
        },
    }
    team_b = {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandPolicy",
        "metadata": {"name": f"team-b-{U}"},
        "spec": {"namespaceSelector": {"matchLabels": {TEAM_LABEL: f"b-{U}"}}, "clusters": []},
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [team_a, team_b]})


def admission_policy() -> str:
    helm = Path(os.environ.get("BIN_DIR", REPO_ROOT / ".cache" / "bin")) / "helm"
    return subprocess.run(
        [str(helm), "template", "policy-e2e", str(CHART),
         "--show-only", "templates/admissionpolicy.yaml"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def rc(management_cluster: ControlPlane, kubectl_path: str) -> Iterator[RunCommands]:
    """The policy CRD, two policies and the chart's admission policy, removed afterwards so
    that no other test meets them."""
    rc = RunCommands(kubectl_path, management_cluster.kubeconfig)
    rc.kubectl("apply", "--server-side", "-f", str(POLICY_CRD))
    rc.kubectl("wait", "--for=condition=Established", "crd/runcommandpolicies.aks.gitops.dev")
    vap = admission_policy()
    rc.apply(policies())
    rc.apply(vap)
    yield rc
    rc.kubectl("delete", "--ignore-not-found", "-f", "-", stdin=vap)
    rc.kubectl("delete", "--ignore-not-found", "-f", "-", stdin=policies())


def prepare_namespace(rc: RunCommands, case: Case, phase: str) -> str:
    namespace = f"pol-{phase}-{case.name}"[:55] + f"-{U}"
    labels = []
    if case.team:
        labels.append(f"{TEAM_LABEL}={case.team}-{U}")
    if not case.operator_identity_allowed:
        labels.append(f"{NO_OPERATOR_IDENTITY_LABEL}=true")
    rc.kubectl("create", "namespace", namespace)
    if labels:
        rc.kubectl("label", "namespace", namespace, *labels)
    if case.secret:
        rc.kubectl(
            "-n", namespace, "create", "secret", "generic", "aks-runcommand-credentials",
            "--from-literal=tenantId=72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--from-literal=clientId=11111111-0000-0000-0000-00000000eeee",
            "--from-literal=clientSecret=team-secret",
        )  # fmt: skip
    rc.kubectl("-n", namespace, "create", "secret", "generic", "script", "--from-literal=a=b")
    return namespace


def run_manifest(case: Case, namespace: str) -> str:
    body = json.loads(manifest("run", namespace, "echo policy", case.cluster, **case.spec))
    body["spec"]["cluster"]["subscriptionId"] = case.subscription
    if case.by_resource_id:
        body["spec"]["cluster"] = {
            "resourceId": f"/subscriptions/{case.subscription}/resourceGroups/{RESOURCE_GROUP}"
            f"/providers/Microsoft.ContainerService/managedClusters/{case.cluster}"
        }
    return json.dumps(body)


def posts_to(emulator: Emulator, cluster: str) -> list[dict[str, Any]]:
    return [p for p in emulator.posts() if p["cluster"].lower().endswith(f"/{cluster.lower()}")]


def outcome(rc: RunCommands, namespace: str) -> dict[str, Any]:
    status: dict[str, Any] = rc.wait(namespace, "run")["status"]
    return status


def test_who_may_target_what(rc: RunCommands, emulator: Emulator) -> None:
    table = []
    # Phase 1: the admission policy bound. Refusals come from `kubectl apply`.
    for case in CASES:
        namespace = prepare_namespace(rc, case, "vap")
        applied = rc.kubectl("apply", "-f", "-", stdin=run_manifest(case, namespace), check=False)
        if not case.admitted:
            assert applied.returncode != 0, f"{case.name}: admitted"
            assert case.rule in applied.stderr, applied.stderr
            assert "ValidatingAdmissionPolicy" in applied.stderr
            table.append((case.name, "refused by kubectl apply", applied.stderr.strip()[-160:]))
            continue
        assert applied.returncode == 0, applied.stderr
        status = outcome(rc, namespace)
        table.append((case.name, f"admitted; {status['state']} {status.get('reason')}", ""))
        _check_operator_outcome(case, status, emulator)

    # Phase 2: the binding removed. Every case reaches the operator, which refuses the same ones.
    binding = "validatingadmissionpolicybinding/policy-e2e-aks-runcommand-operator"
    rc.kubectl("delete", binding)
    for case in CASES:
        namespace = prepare_namespace(rc, case, "op")
        rc.kubectl("apply", "-f", "-", stdin=run_manifest(case, namespace))
        status = outcome(rc, namespace)
        table.append((case.name, f"no admission policy; {status['state']} {status.get('reason')}",
                      status.get("message", "")[:160]))  # fmt: skip
        _check_operator_outcome(case, status, emulator)
    print("\n" + "\n".join(" | ".join(row) for row in table))


def _check_operator_outcome(case: Case, status: dict[str, Any], emulator: Emulator) -> None:
    if case.runs:
        assert status["state"] == "Succeeded", (case.name, status)
        return
    assert (status["state"], status["reason"]) == ("Failed", "PolicyDenied"), (case.name, status)
    assert case.rule in status["message"], status["message"]
    assert posts_to(emulator, case.cluster) == [], f"{case.name}: a POST was sent"
