"""The local control plane is a real Kubernetes API server: CEL, RBAC, isolation, lifecycle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, ControlPlaneError, running
from tests.controlplane.launcher import REPO_ROOT
from tests.helpers import poll_until
from tests.kube import absent, eventually, kubectl, kubectl_json

pytestmark = pytest.mark.e2e  # every test here starts or stops control planes

WIDGET_CRD = textwrap.dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.example.test}
    spec:
      group: example.test
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  x-kubernetes-validations:
                    - rule: "self.replicas <= self.maxReplicas"
                      message: "replicas must not exceed maxReplicas"
                  properties:
                    replicas: {type: integer}
                    maxReplicas: {type: integer}
    """
)


def widget(name: str, replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": "example.test/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "maxReplicas": 3},
        }
    )


def test_version_is_the_real_release(management_cluster: ControlPlane, kubectl_path: str) -> None:
    version = kubectl_json(kubectl_path, management_cluster.kubeconfig, "version")
    assert version["serverVersion"]["gitVersion"] == "v1.35.4"


def test_cel_rule_refuses_bad_object_and_accepts_good_one(
    management_cluster: ControlPlane, kubectl_path: str
) -> None:
    kube = management_cluster.kubeconfig
    kubectl(kubectl_path, kube, "apply", "-f", "-", stdin=WIDGET_CRD)
    kubectl(kubectl_path, kube, "wait", "--for=condition=Established", "crd/widgets.example.test")

    refused = kubectl(
        kubectl_path, kube, "apply", "-f", "-", stdin=widget("too-many", 5), check=False
    )
    assert refused.returncode != 0
    assert "replicas must not exceed maxReplicas" in refused.stderr

    kubectl(kubectl_path, kube, "apply", "-f", "-", stdin=widget("just-right", 2))
    listed = kubectl(kubectl_path, kube, "get", "widgets", "-o", "name").stdout.split()
    assert listed == ["widget.example.test/just-right"]


def test_rbac_is_enforced_for_an_unbound_service_account(
    management_cluster: ControlPlane, kubectl_path: str
) -> None:
    kube = management_cluster.kubeconfig
    kubectl(kubectl_path, kube, "create", "serviceaccount", "nobody")
    token = kubectl(kubectl_path, kube, "create", "token", "nobody").stdout.strip()
    # kubectl prefers the client certificate when both are given, so use a token-only user.
    config = json.loads(kube.read_text())
    config["users"] = [{"name": "nobody", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "nobody"
    token_kubeconfig = kube.with_name("kubeconfig-nobody")
    token_kubeconfig.write_text(json.dumps(config))
    denied = kubectl(kubectl_path, token_kubeconfig, "get", "configmaps", check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert (
        'User "system:serviceaccount:default:nobody" cannot list resource "configmaps"'
        in denied.stderr
    )
    # The same token authenticates: the 403 is an authorization decision, not a bad token.
    whoami = kubectl_json(kubectl_path, token_kubeconfig, "auth", "whoami")
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:default:nobody"


def test_two_clusters_do_not_share_objects(
    management_cluster: ControlPlane, target_cluster: ControlPlane, kubectl_path: str
) -> None:
    assert management_cluster.server != target_cluster.server
    kubectl(
        kubectl_path, management_cluster.kubeconfig, "create", "configmap", "only-in-management"
    )
    kubectl(kubectl_path, target_cluster.kubeconfig, "create", "configmap", "only-in-target")

    def names(plane: ControlPlane) -> set[str]:
        return set(
            kubectl(
                kubectl_path, plane.kubeconfig, "get", "configmaps", "-o", "name"
            ).stdout.split()
        )

    assert "configmap/only-in-management" in names(management_cluster)
    assert "configmap/only-in-management" not in names(target_cluster)
    assert "configmap/only-in-target" in names(target_cluster)
    assert "configmap/only-in-target" not in names(management_cluster)


def _pids_alive(pids: list[int]) -> list[int]:
    return [
        pid
        for pid in pids
        if Path(f"/proc/{pid}").exists()
        and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    ]


def test_owned_objects_are_collected_and_a_deleted_namespace_terminates(
    management_cluster: ControlPlane, kubectl_path: str
) -> None:
    """kube-controller-manager runs beside the API server: the garbage collector and the
    namespace controller do their work, as in a cluster."""
    kube = management_cluster.kubeconfig
    kubectl(kubectl_path, kube, "create", "namespace", "collecting")
    kubectl(kubectl_path, kube, "-n", "collecting", "create", "configmap", "owner")
    owner = kubectl_json(kubectl_path, kube, "-n", "collecting", "get", "configmap", "owner")
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "namespace": "collecting",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                 "uid": owner["metadata"]["uid"]}
            ],
        },
    }  # fmt: skip
    kubectl(kubectl_path, kube, "apply", "-f", "-", stdin=json.dumps(owned))
    kubectl(kubectl_path, kube, "-n", "collecting", "delete", "configmap", "owner")
    eventually(
        "the owned ConfigMap collected",
        absent(kubectl_path, kube, "-n", "collecting", "configmap", "owned"),
    )
    kubectl(kubectl_path, kube, "delete", "namespace", "collecting", "--wait=false")
    eventually("the namespace deleted", absent(kubectl_path, kube, "namespace", "collecting"))


def test_a_control_plane_can_go_without_a_controller_manager(tmp_path: Path) -> None:
    with running("bare", tmp_path, controller_manager=False) as plane:
        assert plane.controller_manager_pid == 0
        assert len(_pids_alive(_state_pids(plane))) == 2


def test_cli_up_and_down_leave_no_processes(tmp_path: Path, kubectl_path: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    up = subprocess.run(
        [sys.executable, "-m", "tests.controlplane", "up", "--name", "cli", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    kubeconfig = Path(up.stdout.strip())
    assert kubeconfig == tmp_path / "kubeconfig"
    pids = json.loads((tmp_path / "controlplane.json").read_text())["pids"]
    try:
        # The cluster outlives the `up` command and serves requests.
        assert kubectl(kubectl_path, kubeconfig, "get", "--raw", "/readyz").stdout == "ok"
        assert len(_pids_alive(pids)) == 3  # etcd, kube-apiserver, kube-controller-manager
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "tests.controlplane", "down", "--dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    assert down.returncode == 0, down.stderr
    assert _pids_alive(pids) == []


def test_processes_die_with_an_interrupted_session(tmp_path: Path) -> None:
    """A killed test session (SIGKILL: no finalizers run) must not leave orphans."""
    script = (
        "import sys; from pathlib import Path; from tests.controlplane import running\n"
        "with running('doomed', Path(sys.argv[1])) as plane:\n"
        "    print(plane.etcd_pid, plane.apiserver_pid, plane.controller_manager_pid, flush=True)\n"
        "    import time; time.sleep(600)\n"
    )
    session = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert session.stdout is not None
    pids = [int(pid) for pid in session.stdout.readline().split()]
    assert len(_pids_alive(pids)) == 3
    session.kill()
    session.wait()
    poll_until(
        lambda: _pids_alive(pids),
        lambda alive: alive == [],
        what="both die",
        timeout=10,
        interval=0.1,
    )


@pytest.mark.parametrize("argv", [["down", "--dir", "/nonexistent-controlplane"]])
def test_cli_down_without_a_cluster_says_so(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.controlplane", *argv],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0
    assert "no control plane recorded" in result.stderr


# --- kube-apiserver restarts -------------------------------------------------------------------


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of its own: restarting the session's clusters would disturb others."""
    with running("restartable", tmp_path_factory.mktemp("restartable")) as plane:
        yield plane


def _state_pids(plane: ControlPlane) -> list[int]:
    return list(json.loads((plane.directory / "controlplane.json").read_text())["pids"])


def test_restart_keeps_port_certificates_and_data(
    restartable: ControlPlane, kubectl_path: str
) -> None:
    kube = restartable.kubeconfig
    kubeconfig_before = kube.read_text()
    server, old_pid = restartable.server, restartable.apiserver_pid
    kubectl(kubectl_path, kube, "create", "configmap", "survivor", "--from-literal=k=v")

    restartable.restart(downtime=1.0)

    assert restartable.server == server
    assert restartable.apiserver_pid not in (0, old_pid)
    assert _pids_alive([old_pid]) == []
    assert _state_pids(restartable) == [
        restartable.controller_manager_pid,
        restartable.apiserver_pid,
        restartable.etcd_pid,
    ]
    # The same kubeconfig (same CA, same client certificate, same port) works unchanged.
    assert kube.read_text() == kubeconfig_before
    data = kubectl_json(kubectl_path, kube, "get", "configmap", "survivor")["data"]
    assert data == {"k": "v"}
    assert kubectl(kubectl_path, kube, "get", "--raw", "/readyz").stdout == "ok"


def test_tests_can_act_during_an_outage(restartable: ControlPlane, kubectl_path: str) -> None:
    kube = restartable.kubeconfig
    old_pid = restartable.apiserver_pid
    restartable.stop_apiserver(grace=0)  # a crash
    try:
        assert restartable.apiserver_pid == 0
        assert _pids_alive([old_pid]) == []
        # The controller manager rides out the outage, as it does in a cluster.
        assert _state_pids(restartable) == [
            restartable.controller_manager_pid,
            restartable.etcd_pid,
        ]
        down = kubectl(kubectl_path, kube, "get", "--raw", "/readyz", check=False)
        assert down.returncode != 0
        assert "was refused" in down.stderr
        bare = ControlPlane("x", restartable.directory, kube, restartable.server, 0, 0)
        with pytest.raises(ControlPlaneError, match="was not started by this launcher"):
            bare.start_apiserver()
    finally:
        restartable.start_apiserver()
    assert kubectl(kubectl_path, kube, "get", "--raw", "/readyz").stdout == "ok"
    with pytest.raises(ControlPlaneError, match="already running"):
        restartable.start_apiserver()
