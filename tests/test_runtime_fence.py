"""The runtime's submit path with submitPolicy ExactlyOnce, through stand-ins for the Kubernetes
and ARM seams: what reaches ARM is the wrapper and a context holding it, the claim records the
run's fence, and a resubmission ships the same fence; AtMostOnce sends the command as written.

The Runtime takes its collaborators: a KubeApi stand-in, and an InputReader whose ARM side is
a stand-in. Nothing here talks to a server."""

from __future__ import annotations

import base64
import copy
import io
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from controller import config as operator_config
from controller.arm import CommandHandle, PreparedSubmission, SubmissionOutcomeUnknown
from controller.core import RunSpec
from controller.core.fence import WRAPPER_COMMAND, WRAPPER_DIR
from controller.inputs import InputReader
from controller.kube import KubeApi, ObjectRef
from controller.runtime import Runtime
from tests.core.core_helpers import merge

UID = "5d0c1c8e-2b9f-4d6e-8a51-3f7a9e0b1c2d"
CLUSTER = {"subscriptionId": "0b1f6471-1bf0-4dda-aec3-cb9272f09590", "resourceGroup": "rg",
           "name": "aks-blue"}  # fmt: skip


class Cluster:
    """The KubeApi seam: one RunCommand, status patches applied as merge patches, events kept."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.body: dict[str, Any] = {
            "metadata": {"namespace": "team", "name": "deploy", "uid": UID, "generation": 1,
                         "resourceVersion": "1"},
            "spec": spec,
        }  # fmt: skip
        self.events: list[tuple[str, str]] = []

    async def read_runcommand(self, ref: ObjectRef) -> dict[str, Any] | None:
        return copy.deepcopy(self.body)

    async def patch_status(
        self, ref: ObjectRef, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any] | None:
        assert resource_version == self.body["metadata"]["resourceVersion"]
        self.body["status"] = merge(self.body.get("status") or {}, status)
        self.body["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
        return copy.deepcopy(self.body)

    async def post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


class Arm:
    """The ARM seam: records what would be sent; the first POSTs' outcomes are in doubt."""

    def __init__(self, in_doubt: int = 0) -> None:
        self.sent: list[PreparedSubmission] = []
        self.in_doubt = in_doubt

    async def prepare_submission(
        self, cluster: Any, command: str, context: str | None, **fields: Any
    ) -> PreparedSubmission:
        return PreparedSubmission(cluster=cluster, command=command, context=context,
                                  cluster_token_mode=fields["cluster_token"],
                                  correlation_id=fields["correlation_id"])  # fmt: skip

    async def send_submission(self, prepared: PreparedSubmission) -> CommandHandle:
        self.sent.append(prepared)
        if len(self.sent) <= self.in_doubt:
            raise SubmissionOutcomeUnknown(
                "runCommand POST to aks-blue may have been accepted (connection dropped)",
                correlation_id=prepared.correlation_id,
            )
        command_id = f"{len(self.sent):032x}"
        return CommandHandle(command_id, f"https://arm/commandResults/{command_id}",
                             prepared.correlation_id)  # fmt: skip


class Inputs(InputReader):
    """The run's inputs as InputReader reads them, with ARM's client replaced."""

    def __init__(self, config: operator_config.OperatorConfig, kube: KubeApi, arm: Arm) -> None:
        super().__init__(config, kube, cast(Any, None))  # no ARM clients: arm_client is ours
        self.arm = arm

    async def arm_client(self, namespace: str, spec: RunSpec, *, authorize: bool) -> Any:
        return self.arm


Wire = Callable[[Cluster, Arm], Runtime]


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    """Builds a Runtime on the stand-ins, as controller.wiring builds it on the real parts."""
    config = operator_config.load(["--max-context-bytes", "65536"], env={})
    built: list[Runtime] = []

    def build(cluster: Cluster, arm: Arm) -> Runtime:
        kube = cast(KubeApi, cluster)
        built.append(Runtime(config, kube, Inputs(config, kube, arm)))
        return built[-1]

    try:
        yield build
    finally:
        for runtime in built:
            await runtime.close()


def files(context: str | None) -> dict[str, bytes]:
    assert context is not None
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(context))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_exactly_once_sends_the_wrapper_and_records_the_fence(wire: Wire) -> None:
    cluster, arm = Cluster({"cluster": CLUSTER, "command": "kubectl apply -f ns.yaml",
                            "files": {"ns.yaml": "kind: Namespace\n"},
                            "submitPolicy": "ExactlyOnce"}), Arm()  # fmt: skip
    runtime = wire(cluster, arm)

    await runtime.reconcile(cluster.body)

    (sent,) = arm.sent
    assert sent.command == WRAPPER_COMMAND
    shipped = files(sent.context)
    assert shipped["ns.yaml"] == b"kind: Namespace\n"
    assert shipped[f"{WRAPPER_DIR}/command.sh"] == b"kubectl apply -f ns.yaml\n"
    status = cluster.body["status"]
    assert status["fence"].startswith(f"rc-{UID}-{status['specHash']}-")
    assert f"name={status['fence']}\n".encode() in shipped[f"{WRAPPER_DIR}/fence.conf"]
    assert (status["state"], status["commandId"]) == ("Running", f"{1:032x}")


async def test_a_resubmission_after_a_dropped_post_ships_the_same_fence(wire: Wire) -> None:
    cluster, arm = Cluster({"cluster": CLUSTER, "command": "echo once",
                            "submitPolicy": "ExactlyOnce"}), Arm(in_doubt=1)  # fmt: skip
    runtime = wire(cluster, arm)
    await runtime.reconcile(cluster.body)
    in_doubt = cluster.body["status"]
    assert (in_doubt["state"], in_doubt["reason"]) == ("Submitting", "SubmissionOutcomeUnknown")
    assert "submitting the same run again in 5s" in in_doubt["message"]

    cluster.body["status"]["nextAttemptAt"] = "2000-01-01T00:00:00Z"  # the backoff has passed
    await runtime.reconcile(cluster.body)

    first, second = arm.sent
    assert first.correlation_id != second.correlation_id
    assert files(first.context) == files(second.context)  # same fence, same deadlines
    assert cluster.body["status"]["attempts"] == 2
    assert cluster.body["status"]["state"] == "Running"


async def test_at_most_once_sends_the_command_as_written(wire: Wire) -> None:
    cluster, arm = Cluster({"cluster": CLUSTER, "command": "echo as written"}), Arm()
    runtime = wire(cluster, arm)

    await runtime.reconcile(cluster.body)

    (sent,) = arm.sent
    assert (sent.command, sent.context) == ("echo as written", None)
    assert "fence" not in cluster.body["status"]
