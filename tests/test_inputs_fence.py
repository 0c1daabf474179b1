"""The fence path of a submission's inputs (controller/inputs.py): with submitPolicy ExactlyOnce
the command sent is the wrapper's, and the context holds the run's own files, from every source,
next to the wrapper's. The Kubernetes reads go through a stand-in for the KubeApi seam."""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from controller import config as operator_config
from controller.arm import InvalidContextPathError
from controller.core.fence import WRAPPER_COMMAND, WRAPPER_DIR, Fence
from controller.core.spec import RunSpec
from controller.identities import ArmClients
from controller.inputs import InputReader
from controller.kube import Found, KubeApi

CLUSTER = {"subscriptionId": "0b1f6471-1bf0-4dda-aec3-cb9272f09590", "resourceGroup": "rg",
           "name": "aks"}  # fmt: skip
FENCE = Fence.for_run("rc-uid-hash-nonce", "ConfigMap", datetime(2026, 1, 1, tzinfo=UTC), 600)


class ConfigMaps:
    """What InputReader.context reads of Kubernetes: ConfigMaps by name."""

    def __init__(self, **configmaps: dict[str, bytes]) -> None:
        self.configmaps = configmaps

    async def read_configmap(self, namespace: str, name: str) -> Found | None:
        data = self.configmaps.get(name)
        return None if data is None else Found(data, "1")


def reader(kube: ConfigMaps, max_context_bytes: int = 64 * 1024) -> InputReader:
    config = operator_config.load(["--max-context-bytes", str(max_context_bytes)], env={})
    return InputReader(config, cast(KubeApi, kube), cast(ArmClients, None))


def spec(**fields: Any) -> RunSpec:
    return RunSpec.parse({"cluster": CLUSTER, "submitPolicy": "ExactlyOnce", **fields})


def entries(context: str) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(context))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_the_wrapper_is_sent_with_the_runs_own_files_from_every_source() -> None:
    inputs = reader(ConfigMaps(manifests={"ns.yaml": b"kind: Namespace\n"}))
    run = spec(command="kubectl apply -f ns.yaml -f extra/x.yaml", files={"extra/x.yaml": "x: 1\n"},
               filesFrom=[{"configMapRef": {"name": "manifests"}}])  # fmt: skip

    command, context = inputs.fenced(FENCE, run.command, await inputs.context("team", run))

    assert command == WRAPPER_COMMAND
    files = entries(context)
    assert files["ns.yaml"] == b"kind: Namespace\n" and files["extra/x.yaml"] == b"x: 1\n"
    assert files[f"{WRAPPER_DIR}/command.sh"] == b"kubectl apply -f ns.yaml -f extra/x.yaml\n"
    assert b"name=rc-uid-hash-nonce\n" in files[f"{WRAPPER_DIR}/fence.conf"]


async def test_a_run_without_files_still_ships_the_wrapper() -> None:
    inputs = reader(ConfigMaps())
    command, context = inputs.fenced(FENCE, "echo hi", await inputs.context("team", spec(
        command="echo hi")))  # fmt: skip
    assert command == WRAPPER_COMMAND
    assert sorted(entries(context)) == [f"{WRAPPER_DIR}/{n}" for n in
                                        ("command.sh", "fence.conf", "fence.sh")]  # fmt: skip


async def test_a_file_of_the_run_in_the_wrappers_directory_is_refused_before_anything_is_sent() -> (
    None
):
    inputs = reader(ConfigMaps())
    run = spec(command="true", files={f"{WRAPPER_DIR}/fence.sh": "mine"})

    with pytest.raises(InvalidContextPathError, match="the ExactlyOnce fence's wrapper"):
        inputs.fenced(FENCE, run.command, await inputs.context("team", run))
