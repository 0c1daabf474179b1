"""The Helm chart, with the real helm (built from its Go module) and the real kube-apiserver.

Rendered manifests are validated by the API server (`kubectl apply --dry-run=server`), installs
go into the session's management control plane, and the operator's RBAC is checked with
`kubectl auth can-i --as=system:serviceaccount:...`. There is no kubelet, so pods never run: the
`helm test` pod's script is run here, as the operator's ServiceAccount, against the same API.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from controller.arm import DEFAULT_TIMEOUT
from controller.core import Settings
from tests.controlplane import ControlPlane
from tests.kube import kubectl, kubectl_json

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "aks-runcommand-operator"
CRD_FILE = "aks.gitops.dev_runcommands.yaml"
POLICY_CRD_FILE = "aks.gitops.dev_runcommandpolicies.yaml"
SET_CRD_FILE = "aks.gitops.dev_runcommandsets.yaml"
SCHEDULE_CRD_FILE = "aks.gitops.dev_runcommandschedules.yaml"
KUBE_VERSION = "1.35.4"  # the management control plane's version, for offline `helm template`
SERVICE_MONITOR_CRD = textwrap.dedent(
    """
    # A minimal stand-in for prometheus-operator's ServiceMonitor CRD: enough for the API server to
    # accept (and dry-run) the chart's ServiceMonitor; the real CRD's schema is not checked here.
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: servicemonitors.monitoring.coreos.com}
    spec:
      group: monitoring.coreos.com
      scope: Namespaced
      names:
        {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor,
         listKind: ServiceMonitorList}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    """
)

Helm = Callable[..., subprocess.CompletedProcess[str]]


def unique(prefix: str) -> str:
    """Namespaces are never deleted here (no namespace controller): every test uses fresh ones."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    bin_dir = Path(os.environ.get("BIN_DIR", REPO_ROOT / ".cache" / "bin"))
    binary = bin_dir / "helm"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(
            f"helm not found at {binary}: build it with `make binaries` "
            "(bash tests/controlplane/build-binaries.sh)"
        )
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_NO_PLUGINS": "1",
    }
    env.pop("KUBECONFIG", None)  # every cluster call passes --kubeconfig explicitly

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture(scope="module")
def cluster(management_cluster: ControlPlane, kubectl_path: str) -> Iterator[ControlPlane]:
    """The management cluster with the chart's CRDs (and a stand-in ServiceMonitor CRD) served."""
    kube = management_cluster.kubeconfig
    kubectl(
        kubectl_path,
        kube,
        "apply",
        "--server-side",
        "--field-manager=test-helm-chart",
        "-f",
        str(CHART / "crds"),
    )
    kubectl(
        kubectl_path,
        kube,
        "apply",
        "--server-side",
        "--field-manager=test-helm-chart",
        "-f",
        "-",
        stdin=SERVICE_MONITOR_CRD,
    )
    kubectl(
        kubectl_path,
        kube,
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/runcommands.aks.gitops.dev",
        "crd/runcommandpolicies.aks.gitops.dev",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
        "crd/servicemonitors.monitoring.coreos.com",
    )
    yield management_cluster


def create_namespaces(kubectl_path: str, kubeconfig: Path, *names: str) -> None:
    for name in names:
        kubectl(kubectl_path, kubeconfig, "create", "namespace", name)


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / f"values-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def render(
    helm: Helm, tmp_path: Path, release: str, namespace: str, values: dict[str, Any], *extra: str
) -> str:
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        "-f",
        values_file(tmp_path, values),
        *extra,
    ).stdout


def objects(manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def find(
    docs: list[dict[str, Any]], kind: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d["kind"] == kind and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = find(docs, "Deployment")
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return operator


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    return {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


# --- lint and schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_helm_lint_passes(helm: Helm, strict: bool) -> None:
    result = helm("lint", str(CHART), *(["--strict"] if strict else []))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[ERROR]" not in result.stdout and "[WARNING]" not in result.stdout


def test_helm_lint_strict_passes_with_every_option_on(helm: Helm, tmp_path: Path) -> None:
    values = {
        "replicaCount": 2,
        "watchNamespaces": ["team-a"],
        "metrics": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "workloadIdentity": {"enabled": True, "clientId": "00000000-0000-0000-0000-000000000001"},
        "grafanaDashboard": {"enabled": True},
    }
    result = helm("lint", "--strict", str(CHART), "-f", values_file(tmp_path, values))
    assert "0 chart(s) failed" in result.stdout


def test_the_default_grace_outlasts_the_longest_post_and_ends_inside_the_claim_lease() -> None:
    """A SIGTERM waits for the runCommand POSTs in flight: the grace must outlast the longest
    one (the ARM client's own timeouts) with time to record ARM's answer, and end before another
    operator gives the claim up."""
    grace = yaml.safe_load((CHART / "values.yaml").read_text())["terminationGracePeriodSeconds"]
    phases = (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.pool, DEFAULT_TIMEOUT.write,
              DEFAULT_TIMEOUT.read)  # fmt: skip
    longest_post = sum(seconds or 0.0 for seconds in phases)
    assert None not in phases
    assert longest_post + 10 <= grace < Settings.claim_lease_seconds


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        ({"replicaCountt": 1}, "additional properties 'replicaCountt' not allowed"),
        ({"cloud": "AzureMoonCloud"}, "at '/cloud'"),
        ({"credentials": {"mode": "password"}}, "at '/credentials/mode'"),
        ({"watchNamespaces": ["Team_A"]}, "at '/watchNamespaces/0'"),
        ({"peering": {"enabled": "yes"}}, "at '/peering/enabled'"),
        ({"image": {"repository": "x", "tagg": "1"}}, "additional properties 'tagg' not allowed"),
        ({"terminationGracePeriodSeconds": 0}, "at '/terminationGracePeriodSeconds'"),
        ({"prometheusRule": {"window": "15 minutes"}}, "at '/prometheusRule/window'"),
        ({"grafanaDashboard": {"labels": {"a": 1}}}, "at '/grafanaDashboard/labels"),
        ({"pollIntervalSeconds": 31}, "at '/pollIntervalSeconds'"),
        ({"pollIntervalSeconds": 0}, "at '/pollIntervalSeconds'"),
    ],
    ids=[
        "replicaCount-type",
        "unknown-top-level",
        "cloud",
        "credentials-mode",
        "namespace",
        "peering-enabled",
        "unknown-nested",
        "grace-zero",
        "alert-window",
        "dashboard-label",
        "poll-interval-above-the-longest-stretch",
        "poll-interval-zero",
    ],
)
def test_values_schema_refuses_bad_values(
    helm: Helm, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    result = helm(
        "template",
        "t",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "-f",
        values_file(tmp_path, values),
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2, "peering": {"enabled": False}}, "replicaCount > 1 needs kopf peering"),
        ({"replicaCount": 2, "peering": {"priority": 10}}, "kopf pauses all same-priority peers"),
        (
            {"workloadIdentity": {"enabled": True}},
            "workloadIdentity.enabled needs workloadIdentity.clientId",
        ),
        ({"serviceMonitor": {"enabled": True}}, "serviceMonitor.enabled needs metrics.enabled"),
        (
            {"serviceMonitor": {"enabled": True}, "metrics": {"enabled": True}},
            "does not serve monitoring.coreos.com/v1 ServiceMonitor",
        ),
        ({"prometheusRule": {"enabled": True}}, "prometheusRule.enabled and grafanaDashboard"),
        (
            {"prometheusRule": {"enabled": True}, "metrics": {"enabled": True}},
            "does not serve monitoring.coreos.com/v1 PrometheusRule",
        ),
    ],
    ids=[
        "replicas-without-peering",
        "replicas-same-priority",
        "wi-without-client-id",
        "servicemonitor-without-metrics",
        "servicemonitor-without-api",
        "prometheusrule-without-metrics",
        "prometheusrule-without-api",
    ],
)
def test_chart_refuses_unsafe_combinations(
    helm: Helm, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    result = helm(
        "template",
        "t",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "-f",
        values_file(tmp_path, values),
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert message in result.stderr


# --- rendered manifests, validated by the real API server ----------------------------------------


def check_defaults(docs: list[dict[str, Any]], release_ns: str, watched: list[str]) -> None:
    env = env_of(docs)
    assert env["WATCH_NAMESPACES"] == ""
    assert "WATCH_LABEL_SELECTOR" not in env  # all objects
    assert "PEERING_NAME" not in env and "PEERING_PRIORITY" not in env  # standalone
    assert "POLL_INTERVAL_SECONDS" not in env  # the operator's default
    assert env["LIVENESS_ENDPOINT"] == "http://0.0.0.0:8080/healthz"
    assert env["LOG_FORMAT"] == "json"
    (deployment,) = find(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 170
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(docs)
    assert "command" not in operator  # the image's ENTRYPOINT
    assert operator["securityContext"]["allowPrivilegeEscalation"] is False
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True
    assert operator["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {"name": "tmp", "mountPath": "/tmp"} in operator["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]
    (cluster_role,) = find(docs, "ClusterRole")
    rules = rules_of(cluster_role)
    # The documented cluster-wide trade-off: get by name, and the output objects (spec.output).
    assert rules[("", "secrets")] == {"get", "create", "update", "delete"}
    assert rules[("", "configmaps")] == {"get", "create", "update", "delete"}
    assert rules[("aks.gitops.dev", "runcommands/status")] == {"get", "patch"}
    assert "create" in rules[("aks.gitops.dev", "runcommands")]  # a set's children
    assert rules[("aks.gitops.dev", "runcommandsets/status")] == {"get", "patch"}
    # A schedule's children: RunCommands or sets, created per tick, deleted past the limits.
    assert {"create", "delete"} <= rules[("aks.gitops.dev", "runcommandsets")]
    assert rules[("aks.gitops.dev", "runcommandschedules")] == {"get", "list", "watch", "patch"}
    assert rules[("aks.gitops.dev", "runcommandschedules/status")] == {"get", "patch"}
    assert ("kopf.dev", "clusterkopfpeerings") not in rules
    assert not find(docs, "Role") and not find(docs, "Service") and not find(docs, "NetworkPolicy")
    assert not find(docs, "ServiceMonitor") and not find(docs, "ClusterKopfPeering")


def check_namespaced(docs: list[dict[str, Any]], release_ns: str, watched: list[str]) -> None:
    assert env_of(docs)["WATCH_NAMESPACES"] == ",".join(watched)
    (cluster_role,) = find(docs, "ClusterRole")
    assert rules_of(cluster_role) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        # names (kopf lists them even for exact names), and one namespace's labels for policy
        ("", "namespaces"): {"get", "list", "watch"},
        ("aks.gitops.dev", "runcommandpolicies"): {"list"},
    }
    assert sorted(r["metadata"]["namespace"] for r in find(docs, "Role")) == sorted(watched)
    assert sorted(b["metadata"]["namespace"] for b in find(docs, "RoleBinding")) == sorted(watched)
    for role in find(docs, "Role"):
        rules = rules_of(role)
        # get by name; create/update/delete for the output objects (spec.output)
        assert rules[("", "secrets")] == {"get", "create", "update", "delete"}
        assert rules[("", "configmaps")] == {"get", "create", "update", "delete"}
        assert ("kopf.dev", "kopfpeerings") not in rules
    (test_pod,) = find(docs, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def check_peering(docs: list[dict[str, Any]], release_ns: str, watched: list[str]) -> None:
    (deployment,) = find(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    env = env_of(docs)
    assert env["PEERING_NAME"] == deployment["metadata"]["name"]
    assert "PEERING_PRIORITY" not in env  # derived per pod by the wrapper
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert container(docs)["command"][:2] == ["python", "-c"]  # the priority wrapper
    peerings = find(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(watched)
    assert {p["metadata"]["name"] for p in peerings} == {env["PEERING_NAME"]}
    for role in find(docs, "Role"):
        assert rules_of(role)[("kopf.dev", "kopfpeerings")] == {"get", "list", "watch", "patch"}


def check_cluster_peering(docs: list[dict[str, Any]], release_ns: str, watched: list[str]) -> None:
    (peering,) = find(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == env_of(docs)["PEERING_NAME"]
    (cluster_role,) = find(docs, "ClusterRole")
    assert rules_of(cluster_role)[("kopf.dev", "clusterkopfpeerings")] == {
        "get",
        "list",
        "watch",
        "patch",
    }


def check_workload_identity(
    docs: list[dict[str, Any]], release_ns: str, watched: list[str]
) -> None:
    (account,) = find(docs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "11111111-2222-3333-4444-555555555555",
        "azure.workload.identity/tenant-id": "66666666-7777-8888-9999-000000000000",
    }
    (deployment,) = find(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )
    assert env_of(docs)["AZURE_CREDENTIAL_MODE"] == "workload-identity"


def check_metrics_and_network_policy(
    docs: list[dict[str, Any]], release_ns: str, watched: list[str]
) -> None:
    (service,) = find(docs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9191, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert env_of(docs)["METRICS_CLUSTER_LABELS"] == "false"
    assert {"name": "metrics", "containerPort": 9191, "protocol": "TCP"} in container(docs)["ports"]
    (policy,) = find(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["metrics"]
    egress_ports = {
        (p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]
    }
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")}
    (monitor,) = find(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def check_everything(docs: list[dict[str, Any]], release_ns: str, watched: list[str]) -> None:
    env = env_of(docs)
    assert env["MAX_LOG_BYTES"] == "65536" and env["HISTORY_LIMIT"] == "0"
    assert env["POLL_INTERVAL_SECONDS"] == "2.5"
    assert (
        env["ARM_ENDPOINT"] == "https://arm.example.test"
        and env["AZURE_CLOUD"] == "AzureChinaCloud"
    )
    assert env["EXTRA"] == "1" and env["LOG_FORMAT"] == "text"
    assert env["WATCH_LABEL_SELECTOR"] == "sharding.aks.gitops.dev/key=blue"
    assert "MAX_CONTEXT_BYTES" not in env
    assert "livenessProbe" not in container(docs)
    assert container(docs)["envFrom"] == [{"secretRef": {"name": "azure-sp"}}]
    assert container(docs)["image"] == "example.test/op@sha256:" + "a" * 64
    (deployment,) = find(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 120


def check_shards(docs: list[dict[str, Any]], release_ns: str, watched: list[str]) -> None:
    """`shards: [a, b]`: one Deployment and one peering object per key, plus one for unlabelled
    objects, with disjoint pod selectors (Deployments must not adopt each other's pods)."""
    deployments = {
        d["metadata"]["name"].rsplit("-shard-", 1)[1]: d for d in find(docs, "Deployment")
    }
    assert set(deployments) == {"a", "b", "unlabelled"}
    selectors, peerings = {}, set()
    for shard, deployment in deployments.items():
        (operator,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in operator["env"]}
        selectors[shard] = env["WATCH_LABEL_SELECTOR"]
        peerings.add(env["PEERING_NAME"])
        match = deployment["spec"]["selector"]["matchLabels"]
        assert match["aks.gitops.dev/shard"] == shard
        assert deployment["spec"]["template"]["metadata"]["labels"].items() >= match.items()
        assert deployment["spec"]["replicas"] == 2
    assert selectors == {
        "a": "sharding.aks.gitops.dev/key=a",
        "b": "sharding.aks.gitops.dev/key=b",
        "unlabelled": "!sharding.aks.gitops.dev/key",
    }
    assert {p["metadata"]["name"] for p in find(docs, "ClusterKopfPeering")} == peerings
    assert len(peerings) == 3


CASES: dict[str, tuple[Callable[[list[str]], dict[str, Any]], Callable[..., None], int]] = {
    # name: (values from the watched namespaces, checks, how many watched namespaces)
    "defaults": (lambda ns: {}, check_defaults, 0),
    "namespaced": (lambda ns: {"watchNamespaces": ns}, check_namespaced, 2),
    "peering-namespaced": (lambda ns: {"watchNamespaces": ns, "replicaCount": 2}, check_peering, 2),
    "peering-cluster-wide": (lambda ns: {"replicaCount": 3}, check_cluster_peering, 0),
    "shards": (lambda ns: {"shards": ["a", "b"], "replicaCount": 2}, check_shards, 0),
    "workload-identity": (
        lambda ns: {
            "credentials": {"mode": "workload-identity"},
            "workloadIdentity": {
                "enabled": True,
                "clientId": "11111111-2222-3333-4444-555555555555",
                "tenantId": "66666666-7777-8888-9999-000000000000",
            },
        },
        check_workload_identity,
        0,
    ),
    "metrics-networkpolicy-servicemonitor": (
        lambda ns: {
            "metrics": {"enabled": True, "port": 9191, "clusterLabels": False},
            "networkPolicy": {"enabled": True},
            "serviceMonitor": {"enabled": True},
        },
        check_metrics_and_network_policy,
        0,
    ),
    "everything-else": (
        lambda ns: {
            "watchNamespaces": ns,
            "cloud": "AzureChinaCloud",
            "armEndpoint": "https://arm.example.test",
            "armCaFile": "/etc/arm-ca/ca.crt",
            "maxLogBytes": 65536,
            "historyLimit": 0,
            "pollIntervalSeconds": 2.5,
            "logFormat": "text",
            "liveness": {"enabled": False},
            "credentials": {"mode": "client-secret", "envFromSecret": "azure-sp"},
            "image": {"repository": "example.test/op", "digest": "sha256:" + "a" * 64},
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
            "shardKey": "blue",
            "extraVolumes": [{"name": "arm-ca", "configMap": {"name": "arm-ca"}}],
            "extraVolumeMounts": [{"name": "arm-ca", "mountPath": "/etc/arm-ca", "readOnly": True}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/arch",
                                        "operator": "In",
                                        "values": ["amd64"],
                                    }
                                ]
                            }
                        ]
                    }
                }
            },
            "podAnnotations": {"example.test/a": "b"},
            "priorityClassName": "system-cluster-critical",
            "serviceAccount": {"annotations": {"example.test/c": "d"}},
            "terminationGracePeriodSeconds": 120,
        },
        check_everything,
        1,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_manifests_are_accepted_by_the_api_server(
    case: str, helm: Helm, cluster: ControlPlane, kubectl_path: str, tmp_path: Path
) -> None:
    make_values, check, watched_count = CASES[case]
    release_ns = unique("helm-tpl")
    watched = [unique(f"w{i}") for i in range(watched_count)]
    create_namespaces(kubectl_path, cluster.kubeconfig, release_ns, *watched)
    extra = (
        ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]
        if "servicemonitor" in case
        else []
    )
    manifest = render(helm, tmp_path, unique("rel"), release_ns, make_values(watched), *extra)
    docs = objects(manifest)
    check(docs, release_ns, watched)
    result = kubectl(
        kubectl_path,
        cluster.kubeconfig,
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        stdin=manifest,
        check=False,
    )
    assert result.returncode == 0, f"the API server refused the {case} manifests:\n{result.stderr}"
    # Every rendered object was validated (and reported) by the server.
    assert result.stdout.count("(server dry run)") == len(docs), result.stdout


def test_peering_wrapper_gives_each_pod_its_own_priority(helm: Helm, tmp_path: Path) -> None:
    """Run the Deployment's wrapper with a stand-in operator on PATH that reports what it got."""
    docs = objects(render(helm, tmp_path, "rel", "ops", {"replicaCount": 2}))
    operator = container(docs)
    fake = tmp_path / "bin" / "aks-runcommand-operator"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "$PEERING_PRIORITY $*"\n')
    fake.chmod(0o755)
    priorities = {}
    for pod in (
        "rel-aks-runcommand-operator-7d9f8c-abcde",
        "rel-aks-runcommand-operator-7d9f8c-fghij",
    ):
        env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "POD_NAME": pod}
        first = subprocess.run(
            [sys.executable, *operator["command"][1:], "--extra"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        again = subprocess.run(
            [sys.executable, *operator["command"][1:], "--extra"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert first == again  # stable for the pod's life (container restarts keep the name)
        priority, args = first.split(" ", 1)
        assert args.strip() == "--extra"  # arguments pass through to the operator
        priorities[pod] = int(priority)
    assert len(set(priorities.values())) == 2, priorities
    assert all(1 <= p < 1_000_000 for p in priorities.values()), priorities


# --- helm install, then the ServiceAccount's real permissions ------------------------------------


def can_i(kubectl_path: str, kubeconfig: Path, account: str, *args: str) -> str:
    result = kubectl(
        kubectl_path, kubeconfig, "auth", "can-i", f"--as={account}", *args, check=False
    )
    answer = result.stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl auth can-i {args}: {result.stdout}{result.stderr}"
    return answer


def run_helm_test_script(
    helm: Helm,
    cluster: ControlPlane,
    kubectl_path: str,
    tmp_path: Path,
    release: str,
    namespace: str,
    account_name: str,
    check_namespace: str,
) -> subprocess.CompletedProcess[str]:
    """Run the chart's `helm test` pod script here, with a real token of the operator's account."""
    hooks = objects(
        helm(
            "get", "hooks", release, "-n", namespace, "--kubeconfig", str(cluster.kubeconfig)
        ).stdout
    )
    (pod,) = [h for h in hooks if h["kind"] == "Pod"]
    (check,) = pod["spec"]["containers"]
    assert check["command"][:2] == ["python", "-c"]
    token = kubectl(
        kubectl_path, cluster.kubeconfig, "create", "token", account_name, "-n", namespace
    ).stdout
    config = kubectl_json(kubectl_path, cluster.kubeconfig, "config", "view", "--raw")
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir(exist_ok=True)
    (sa_dir / "token").write_text(token)
    (sa_dir / "ca.crt").write_bytes(
        base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    )
    server = urlsplit(cluster.server)
    env = {
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
        "SERVICEACCOUNT_DIR": str(sa_dir),
        "CHECK_NAMESPACE": check_namespace,
    }
    return subprocess.run(
        [sys.executable, "-c", check["command"][2]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_policy_reads_only(ask: Callable[..., str]) -> None:
    """The operator reads namespace labels and every RunCommandPolicy before a submission, and
    may change neither: a team that could relabel its namespace could choose its policy."""
    assert ask("get", "namespaces") == "yes"
    assert ask("list", "runcommandpolicies.aks.gitops.dev") == "yes"
    for verb in ("create", "update", "patch", "delete"):
        assert ask(verb, "runcommandpolicies.aks.gitops.dev") == "no", verb
        assert ask(verb, "namespaces") == "no", verb
    assert ask("create", "validatingadmissionpolicies.admissionregistration.k8s.io") == "no"
    assert ask("delete", "validatingadmissionpolicybindings.admissionregistration.k8s.io") == "no"


def test_admission_policy_is_a_chart_value(helm: Helm, tmp_path: Path) -> None:
    kinds = {d["kind"] for d in objects(render(helm, tmp_path, "rel", "ns", {}))}
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds
    off = render(helm, tmp_path, "rel", "ns", {"admissionPolicy": {"enabled": False}})
    assert "ValidatingAdmissionPolicy" not in {d["kind"] for d in objects(off)}


def test_operator_identity_values_become_the_operator_environment(
    helm: Helm, tmp_path: Path
) -> None:
    values = {"operatorIdentity": {"namespaces": ["platform", "ops"], "namespaceSelector": "a=b"}}
    (deployment,) = [
        d for d in objects(render(helm, tmp_path, "rel", "ns", values)) if d["kind"] == "Deployment"
    ]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["OPERATOR_IDENTITY_NAMESPACES"] == "platform,ops"
    assert env["OPERATOR_IDENTITY_NAMESPACE_SELECTOR"] == "a=b"


def test_install_namespaced_mode_grants_least_privilege(
    helm: Helm, cluster: ControlPlane, kubectl_path: str, tmp_path: Path
) -> None:
    kube = cluster.kubeconfig
    operator_ns, watched, unwatched = unique("op"), unique("watched"), unique("unwatched")
    create_namespaces(kubectl_path, kube, operator_ns, watched, unwatched)
    release = unique("ns-mode")
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        operator_ns,
        "--kubeconfig",
        str(kube),
        "-f",
        values_file(tmp_path, {"watchNamespaces": [watched]}),
    )
    account_name = f"{release}-aks-runcommand-operator"
    account = f"system:serviceaccount:{operator_ns}:{account_name}"
    deployment = kubectl_json(
        kubectl_path, kube, "get", "deployment", account_name, "-n", operator_ns
    )
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account_name
    kubectl(kubectl_path, kube, "get", "serviceaccount", account_name, "-n", operator_ns)

    def ask(*args: str) -> str:
        return can_i(kubectl_path, kube, account, *args)

    assert (
        ask("patch", "runcommands.aks.gitops.dev", "--subresource=status", "-n", watched) == "yes"
    )
    assert ask("watch", "runcommands.aks.gitops.dev", "-n", watched) == "yes"
    assert ask("delete", "runcommands.aks.gitops.dev", "-n", watched) == "yes"
    assert ask("create", "events", "-n", watched) == "yes"
    assert ask("create", "events.events.k8s.io", "-n", watched) == "yes"
    assert ask("get", "secrets", "-n", watched) == "yes"
    assert ask("get", "configmaps", "-n", watched) == "yes"
    for verb in ("create", "update", "delete"):  # each run's output object (spec.output)
        assert ask(verb, "configmaps", "-n", watched) == "yes"
        assert ask(verb, "secrets", "-n", watched) == "yes"
        assert ask(verb, "configmaps", "-n", unwatched) == "no"
    assert ask("patch", "configmaps", "-n", watched) == "no"
    assert ask("list", "secrets", "-n", watched) == "no"
    assert ask("watch", "configmaps", "-n", watched) == "no"
    assert ask("list", "secrets", "-A") == "no"
    assert ask("get", "secrets", "-n", unwatched) == "no"
    assert ask("get", "secrets", "-n", operator_ns) == "no"
    assert ask("list", "runcommands.aks.gitops.dev", "-n", unwatched) == "no"
    assert (
        ask("patch", "runcommands.aks.gitops.dev", "--subresource=status", "-n", unwatched) == "no"
    )
    assert ask("create", "pods", "-n", watched) == "no"
    assert (
        ask("update", "runcommands.aks.gitops.dev", "-n", watched) == "no"
    )  # spec is never written
    assert ask("list", "namespaces") == "yes"  # names only: kopf lists them even for exact names
    assert ask("watch", "customresourcedefinitions.apiextensions.k8s.io") == "yes"
    assert ask("patch", "kopfpeerings.kopf.dev", "-n", watched) == "no"  # one replica: no peering
    assert_policy_reads_only(ask)

    # The `helm test` script passes as the operator's account where it serves RunCommands ...
    ok = run_helm_test_script(
        helm, cluster, kubectl_path, tmp_path, release, operator_ns, account_name, watched
    )
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout.strip()
        == f"ok: runcommands.aks.gitops.dev/v1alpha1 is served and listable in {watched}"
    )
    # ... and fails (403) where it does not.
    refused = run_helm_test_script(
        helm, cluster, kubectl_path, tmp_path, release, operator_ns, account_name, unwatched
    )
    assert refused.returncode != 0 and "HTTP Error 403" in refused.stderr


def test_install_cluster_wide_with_peering(
    helm: Helm, cluster: ControlPlane, kubectl_path: str, tmp_path: Path
) -> None:
    kube = cluster.kubeconfig
    operator_ns, other = unique("op-cw"), unique("other")
    create_namespaces(kubectl_path, kube, operator_ns, other)
    release = unique("cw")
    result = helm(
        "install",
        release,
        str(CHART),
        "-n",
        operator_ns,
        "--kubeconfig",
        str(kube),
        "--set",
        "replicaCount=2",
    )
    assert "in ALL namespaces" in result.stdout  # NOTES.txt states the trade-off
    name = f"{release}-aks-runcommand-operator"
    account = f"system:serviceaccount:{operator_ns}:{name}"
    peering = kubectl_json(kubectl_path, kube, "get", "clusterkopfpeerings.kopf.dev", name)
    assert peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release

    def ask(*args: str) -> str:
        return can_i(kubectl_path, kube, account, *args)

    assert ask("patch", "runcommands.aks.gitops.dev", "--subresource=status", "-n", other) == "yes"
    assert ask("list", "runcommands.aks.gitops.dev", "-A") == "yes"
    assert ask("get", "secrets", "-n", other) == "yes"  # the documented cluster-wide trade-off
    assert ask("list", "secrets", "-A") == "no"
    assert ask("watch", "secrets", "-A") == "no"
    assert ask("list", "configmaps", "-A") == "no"
    assert ask("create", "pods", "-n", other) == "no"
    assert ask("create", "secrets", "-n", other) == "yes"  # output objects (spec.output)
    assert ask("create", "secrets", "-n", operator_ns) == "yes"
    assert ask("patch", "clusterkopfpeerings.kopf.dev") == "yes"
    assert ask("list", "namespaces") == "yes"
    assert_policy_reads_only(ask)

    ok = run_helm_test_script(helm, cluster, kubectl_path, tmp_path, release, operator_ns, name, "")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("listable cluster-wide")


# --- CRDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("crd_file", [CRD_FILE, POLICY_CRD_FILE, SET_CRD_FILE, SCHEDULE_CRD_FILE])
def test_chart_crd_is_identical_to_the_source_of_truth(crd_file: str) -> None:
    source = REPO_ROOT / "crds" / crd_file
    copy = CHART / "crds" / crd_file
    assert source.is_file(), f"{source} is missing"
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy} differs from {source}: run `bash charts/sync-crds.sh`"
    )
    # Only the RunCommand, RunCommandPolicy, RunCommandSet and RunCommandSchedule CRDs and
    # kopf's peering CRDs ship in the chart.
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [
        POLICY_CRD_FILE,
        CRD_FILE,
        SCHEDULE_CRD_FILE,
        SET_CRD_FILE,
        "kopf.dev_peerings.yaml",
    ]


def test_chart_crds_are_served_by_the_api_server(cluster: ControlPlane, kubectl_path: str) -> None:
    crds = {
        name: kubectl_json(kubectl_path, cluster.kubeconfig, "get", "crd", name)
        for name in (
            "runcommands.aks.gitops.dev",
            "runcommandpolicies.aks.gitops.dev",
            "runcommandsets.aks.gitops.dev",
            "runcommandschedules.aks.gitops.dev",
            "kopfpeerings.kopf.dev",
            "clusterkopfpeerings.kopf.dev",
        )
    }
    for name, crd in crds.items():
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established.get("Established") == "True", name
    assert crds["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    resources = json.loads(
        kubectl(
            kubectl_path, cluster.kubeconfig, "get", "--raw", "/apis/aks.gitops.dev/v1alpha1"
        ).stdout
    )["resources"]
    assert {
        "runcommands",
        "runcommands/status",
        "runcommandsets",
        "runcommandsets/status",
        "runcommandschedules",
        "runcommandschedules/status",
    } <= {r["name"] for r in resources}
