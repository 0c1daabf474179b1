"""The real az CLI, unchanged, against the emulator (`make test-az`; opt-in, as az is large):
`az cloud register`, `az login --service-principal` and `az aks command invoke` run the seed's
example, `kubectl apply -f ns.yaml` with the file attached, on a real target API server. The
commands are the ones emulator/README.md gives.

az reports the command's exit code (`exitcode=N`) and its logs, and exits 0 itself when the
command ran, whatever the command's code: as against the service."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane
from tests.kube import kubectl_json
from tests.stack import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESOURCE_GROUP,
    SUBSCRIPTION_ID,
    TENANT_ID,
    Emulator,
    cluster_entry,
    emulator_config,
    running_emulator,
)

pytestmark = pytest.mark.e2e
CLOUD = "AksArmEmulator"


@dataclass
class Az:
    binary: str
    env: dict[str, str]
    workdir: Path
    login_output: str = ""

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def emulator(
    target_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    clusters = [
        cluster_entry("aks-demo", target_cluster.kubeconfig),
        cluster_entry("aks-aad", target_cluster.kubeconfig, aadManaged=True),
    ]
    with running_emulator(
        emulator_config(clusters), tmp_path_factory.mktemp("emulator")
    ) as running:
        yield running


@pytest.fixture(scope="module")
def az(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Az:
    """A signed-in az, in a configuration directory of its own, pointed at the emulator by the
    README's commands. Telemetry off: nothing leaves this machine."""
    binary = os.environ["AZ_CLI"]
    home = tmp_path_factory.mktemp("az-home")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "AZURE_CONFIG_DIR": str(home / ".azure"),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        # az reaches the emulator over TLS: its CA, through requests' own variable.
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file),
    }
    cli = Az(binary, env, home)
    steps = [
        ("config", "set", "core.instance_discovery=false"),
        ("cloud", "register", "-n", CLOUD, "--endpoint-resource-manager", emulator.base_url),
        ("cloud", "set", "-n", CLOUD),
        (
            "login", "--service-principal", "-u", CLIENT_ID, "-p", CLIENT_SECRET,
            "--tenant", TENANT_ID,
        ),
    ]  # fmt: skip
    for step in steps:
        done = cli(*step)
        assert done.returncode == 0, f"az {' '.join(step[:2])}: {done.stderr}"
    cli.login_output = done.stdout
    return cli


def test_az_login_finds_the_emulators_subscription(az: Az) -> None:
    (account,) = json.loads(az.login_output)
    assert account["id"] == SUBSCRIPTION_ID
    assert account["tenantId"] == TENANT_ID
    assert account["cloudName"] == CLOUD
    assert account["user"] == {"name": CLIENT_ID, "type": "servicePrincipal"}
    shown = az("account", "show", "-o", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["isDefault"] is True


@pytest.mark.parametrize("cluster", ["aks-demo", "aks-aad"])
def test_the_seeds_example_runs_through_az_aks_command_invoke(
    az: Az, cluster: str, target_cluster: ControlPlane, kubectl_path: str
) -> None:
    """The seed's request: `kubectl apply -f ns.yaml` with ns.yaml attached. On the AAD cluster
    az adds a clusterToken it gets from the emulator's sign-in for the AKS server app."""
    namespace = f"from-az-{cluster}"
    (az.workdir / "ns.yaml").write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
    )
    done = az(
        "aks", "command", "invoke", "-g", RESOURCE_GROUP, "-n", cluster,
        "--command", "kubectl apply -f ns.yaml", "--file", "ns.yaml",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "with exitcode=0" in done.stdout, done.stdout
    assert f"namespace/{namespace} created" in done.stdout
    created = kubectl_json(kubectl_path, target_cluster.kubeconfig, "get", "namespace", namespace)
    assert created["metadata"]["name"] == namespace


def test_az_reports_the_commands_exit_code_and_logs(az: Az) -> None:
    command = "echo about to fail; echo on stderr >&2; exit 3"
    done = az(
        "aks", "command", "invoke", "-g", RESOURCE_GROUP, "-n", "aks-demo", "--command", command
    )
    assert done.returncode == 0, done.stderr  # the command ran: az itself succeeded
    assert "with exitcode=3" in done.stdout, done.stdout
    assert "about to fail" in done.stdout
    as_json = az(
        "aks", "command", "invoke", "-g", RESOURCE_GROUP, "-n", "aks-demo",
        "--command", command, "-o", "json",
    )  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["exitCode"] == 3
    assert result["provisioningState"] == "Succeeded"
    assert "about to fail" in result["logs"]


def test_az_surfaces_an_arm_refusal_and_exits_non_zero(az: Az) -> None:
    done = az(
        "aks", "command", "invoke", "-g", RESOURCE_GROUP, "-n", "no-such-cluster",
        "--command", "true",
    )  # fmt: skip
    assert done.returncode != 0
    assert "ResourceNotFound" in done.stderr
