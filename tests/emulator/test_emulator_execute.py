"""`execute` mode: real `bash -c` commands, like the AKS command pod runs them."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aks_arm_emulator import EmulatorConfig

from controller.core.fence import WRAPPER_COMMAND, Fence
from tests.emulator.emulator_harness import (
    Emulator,
    cluster,
    fetch_token,
    running_emulator,
    zip_context,
)
from tests.helpers import poll_until

API = "api-version=2026-08-01"
MAX_LOG_BYTES = 1000


@pytest.fixture(scope="module")
def kubeconfig_stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    return path


@pytest.fixture(scope="module")
def emulator(kubeconfig_stub: Path) -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=(cluster(kubeconfig=kubeconfig_stub),),
        mode="execute",
        command_timeout_seconds=1.0,
        max_log_bytes=MAX_LOG_BYTES,
    )
    with running_emulator(config) as running:
        yield running


async def run(emulator: Emulator, command: str, files: dict[str, bytes] | None = None) -> Any:
    token = await fetch_token(emulator, emulator.base_url)
    body: dict[str, str] = {"command": command}
    if files:
        body["context"] = zip_context(files)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{emulator.cluster_url()}/runCommand?{API}", json=body, ssl=emulator.ssl_context()
        ) as response:
            assert response.status == 202, await response.text()
            location = response.headers["Location"]
        for _ in range(600):
            async with session.get(location, ssl=emulator.ssl_context()) as response:
                result = await response.json()
                if response.status == 200:
                    return result["properties"]
            await asyncio.sleep(0.05)
    raise AssertionError("command never finished")


async def test_pipes_and_chains_with_merged_output(emulator: Emulator) -> None:
    result = await run(
        emulator, "echo one && echo two | tr a-z A-Z; echo err >&2 && false || echo recovered"
    )
    assert result["provisioningState"] == "Succeeded"
    assert result["exitCode"] == 0
    assert result["logs"] == "one\nTWO\nerr\nrecovered\n"


async def test_exit_code_is_reported_and_state_stays_succeeded(emulator: Emulator) -> None:
    result = await run(emulator, "echo failing; exit 42")
    assert result["provisioningState"] == "Succeeded"
    assert result["exitCode"] == 42
    assert result["logs"] == "failing\n"


async def test_working_dir_holds_the_unzipped_context(
    emulator: Emulator, kubeconfig_stub: Path
) -> None:
    result = await run(
        emulator,
        'cat ns.yaml manifests/app.yaml && [ "$HOME" = "$PWD" ] && echo "home ok" '
        '&& echo "kubeconfig=$KUBECONFIG" && command -v kubectl',
        {"ns.yaml": b"kind: Namespace\n", "manifests/app.yaml": b"kind: Deployment\n"},
    )
    assert result["exitCode"] == 0, result["logs"]
    lines = result["logs"].splitlines()
    assert lines[:3] == ["kind: Namespace", "kind: Deployment", "home ok"]
    assert lines[3] == f"kubeconfig={kubeconfig_stub}"
    assert lines[4].endswith("/kubectl")


async def test_each_command_gets_a_fresh_directory(emulator: Emulator) -> None:
    first = await run(emulator, "touch leftover && pwd")
    second = await run(emulator, "ls -A && pwd")
    assert second["logs"].strip() != first["logs"].strip()
    assert "leftover" not in second["logs"]
    leftover_dir = Path(first["logs"].strip())
    assert not await asyncio.to_thread(leftover_dir.exists)  # cleaned up afterwards


def running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, killed and not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_timeout_kills_the_whole_process_group(emulator: Emulator) -> None:
    # The background child says its pid; it is seen gone, not waited out with a sleep.
    result = await run(emulator, "echo started; (sleep 30; echo survived) & echo $!; sleep 30")
    assert result["provisioningState"] == "Failed"
    assert result["reason"] == "CommandTimeout"
    assert result["exitCode"] == 137
    started, child = result["logs"].splitlines()
    assert started == "started" and child.isdigit(), result["logs"]
    await asyncio.to_thread(
        poll_until,
        lambda: running(int(child)),
        lambda alive: not alive,
        what=f"the background child {child} killed with its group",
        timeout=10,
        interval=0.05,
    )


async def test_logs_are_truncated_to_exactly_max_log_bytes(emulator: Emulator) -> None:
    result = await run(emulator, "head -c 5000 /dev/zero | tr '\\0' a; echo tail-marker")
    assert result["exitCode"] == 0
    assert len(result["logs"].encode()) == MAX_LOG_BYTES
    assert result["logs"] == "a" * MAX_LOG_BYTES  # the head is kept


async def test_kubectl_apply_from_context_creates_a_namespace(
    target_cluster: Any, kubectl_path: str
) -> None:
    name = f"emulated-{uuid.uuid4().hex[:8]}"
    config = EmulatorConfig(
        clusters=(cluster(kubeconfig=Path(target_cluster.kubeconfig)),),
        mode="execute",
        command_timeout_seconds=60,
    )
    manifest = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n".encode()
    with running_emulator(config) as emulator:
        result = await run(emulator, "kubectl apply -f ns.yaml", {"ns.yaml": manifest})
    assert result["exitCode"] == 0, result["logs"]
    assert f"namespace/{name} created" in result["logs"]
    check = await asyncio.to_thread(
        subprocess.run,
        [
            kubectl_path,
            "--kubeconfig",
            str(target_cluster.kubeconfig),
            "get",
            "ns",
            name,
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == f"namespace/{name}"


async def test_like_aks_it_creates_aks_command_on_first_use_and_names_the_pod(
    target_cluster: Any,
) -> None:
    config = EmulatorConfig(
        clusters=(cluster(kubeconfig=Path(target_cluster.kubeconfig)),),
        mode="execute",
        command_timeout_seconds=60,
    )
    with running_emulator(config) as emulator:
        result = await run(emulator, 'kubectl get namespace aks-command -o name; echo "$HOSTNAME"')
    assert result["exitCode"] == 0, result["logs"]
    namespace, hostname = result["logs"].splitlines()
    assert namespace == "namespace/aks-command"
    assert re.fullmatch(r"command-[0-9a-f]{32}", hostname)


async def test_the_exactly_once_wrapper_runs_for_real_against_the_target(
    target_cluster: Any, kubectl_path: str
) -> None:
    fence = Fence.for_run(
        f"rc-emulated-{uuid.uuid4().hex}", "ConfigMap", datetime.now(UTC) + timedelta(hours=1),
        3600,
    )  # fmt: skip
    files = dict(fence.files(f"kubectl create configmap ran-{fence.name[-8:]}; echo ran"))
    config = EmulatorConfig(
        clusters=(cluster(kubeconfig=Path(target_cluster.kubeconfig)),),
        mode="execute",
        command_timeout_seconds=60,
    )
    with running_emulator(config) as emulator:
        first = await run(emulator, WRAPPER_COMMAND, files)
        second = await run(emulator, WRAPPER_COMMAND, files)
    assert (first["exitCode"], first["logs"]) == (
        0,
        "configmap/ran-" + fence.name[-8:] + " created\nran\n",
    )
    assert (second["exitCode"], second["logs"]) == (0, first["logs"])  # replayed, not run again
    check = await asyncio.to_thread(
        subprocess.run,
        [kubectl_path, "--kubeconfig", str(target_cluster.kubeconfig), "-n", "aks-command",
         "get", "configmap", fence.name, "-o", "jsonpath={.data.state}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert check.stdout == "done", check.stderr
