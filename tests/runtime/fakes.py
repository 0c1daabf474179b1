"""The runtime's seams, faked: a Kubernetes API in memory with the API server's optimistic
concurrency (resourceVersion preconditions, 409 on a lost race), and an ARM behind an httpx
transport whose runCommand POSTs a test can hold. Everything between them is the real thing:
the runtime, its scheduler, the inputs, the identities and the ARM client."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from controller import config as configuration
from controller.arm import ArmThrottle, new_http_client
from controller.identities import ArmClients
from controller.inputs import InputReader
from controller.kube import Conflict, Found, KubeApi, ObjectRef
from controller.runtime import Runtime
from tests.arm.arm_doubles import ARM_ENDPOINT, SUBSCRIPTION, FakeCredential
from tests.core.core_helpers import merge

NAMESPACE = "team"
CLUSTER = {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg-demo", "name": "aks-demo"}


@dataclass
class Patch:
    name: str
    status: dict[str, Any]
    resource_version: str
    outcome: str  # "written", "conflict" or the error raised


@dataclass
class FakeKube(KubeApi):
    """RunCommands in memory. `before_patch` holds one step per status patch, in order: a step
    may play a peer writing between our read and our write (`touch`), or raise (the API server
    answering 503)."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    patches: list[Patch] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    outputs: dict[str, str | None] = field(default_factory=dict)
    before_patch: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    # Awaited by namespace_labels (read by every submission's authorization, before its claim).
    labels_gate: asyncio.Event | None = None
    labels_asked: int = 0
    _version: int = 100

    def __post_init__(self) -> None:
        super().__init__(configuration=None)

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": str(uuid.uuid4()),
                         "generation": 1, "resourceVersion": self._next_version()},
            "spec": {"cluster": dict(CLUSTER), "command": f"echo {name}",
                     "clusterToken": "Never", **spec},
        }  # fmt: skip
        self.objects[name] = body
        return copy.deepcopy(body)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.objects[name].get("status") or {})

    def touch(self, name: str, status: Mapping[str, Any] | None = None) -> None:
        """Another writer: a new resourceVersion, and optionally a status change."""
        body = self.objects[name]
        if status is not None:
            body["status"] = merge(body.get("status") or {}, status)
        body["metadata"]["resourceVersion"] = self._next_version()

    def claims(self) -> list[Patch]:
        return [p for p in self.patches if p.status.get("reason") == "Submitting"]

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    # KubeApi -------------------------------------------------------------------------------

    async def close(self) -> None:
        pass

    async def read_runcommand(self, ref: ObjectRef, plural: str = "") -> dict[str, Any] | None:
        body = self.objects.get(ref.name)
        if body is None or body["metadata"]["uid"] != ref.uid:
            return None
        return copy.deepcopy(body)

    async def patch_status(
        self, ref: ObjectRef, status: dict[str, Any], resource_version: str, plural: str = ""
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)  # a real call yields to the loop
        body = self.objects.get(ref.name)
        if self.before_patch and body is not None:
            try:
                self.before_patch.pop(0)(body)
            except Exception as error:
                self.patches.append(Patch(ref.name, status, resource_version, repr(error)))
                raise
        if body is None or body["metadata"]["uid"] != ref.uid:
            return None
        if body["metadata"]["resourceVersion"] != resource_version:
            self.patches.append(Patch(ref.name, status, resource_version, "conflict"))
            raise Conflict(f"{ref.namespace}/{ref.name} changed since it was read")
        self.patches.append(Patch(ref.name, status, resource_version, "written"))
        body["status"] = merge(body.get("status") or {}, status)
        body["metadata"]["resourceVersion"] = self._next_version()
        return copy.deepcopy(body)

    async def read_secret(self, namespace: str, name: str) -> Found | None:
        return None

    async def read_configmap(self, namespace: str, name: str) -> Found | None:
        return None

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        self.labels_asked += 1
        if self.labels_gate is not None:
            await self.labels_gate.wait()
        return {}

    async def list_policies(self) -> list[dict[str, Any]]:
        return []

    async def post_event(
        self, ref: ObjectRef, type_: str, reason: str, message: str, kind: str = "RunCommand"
    ) -> None:
        self.events.append((ref.name, reason, message))

    async def write_output(
        self, ref: ObjectRef, kind: str, name: str, text: str | None, raw: bytes | None
    ) -> None:
        self.outputs[name] = text

    async def delete_output(self, namespace: str, kind: str, name: str) -> None:
        self.outputs.pop(name, None)

    async def delete_runcommand(self, ref: ObjectRef) -> None:
        self.objects.pop(ref.name, None)


class HeldArm:
    """ARM for runCommand: POSTs are answered 202 once `release` is set (set by default), with
    `retry_after` as their Retry-After when a test sets it, and each command's result is
    Running until the test says it `finishes`."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.posts: list[httpx.Request] = []
        self.polls: list[httpx.Request] = []
        self.posted = asyncio.Event()  # set at every POST's arrival; a test clears it
        self.commands: list[str] = []  # the command id each POST started
        self.finished: set[str] = set()
        self.retry_after: str | None = None
        self.transport = httpx.MockTransport(self._handle)

    def correlation_ids(self) -> list[str]:
        return [p.headers["x-ms-correlation-request-id"] for p in self.posts]

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/runCommand"):
            self.posts.append(request)
            self.posted.set()
            await self.release.wait()
            command_id = uuid.uuid4().hex
            self.commands.append(command_id)
            location = (f"{ARM_ENDPOINT}{path.removesuffix('/runCommand')}/commandResults/"
                        f"{command_id}?api-version=2024-09-01")  # fmt: skip
            headers = {"Location": location}
            if self.retry_after is not None:
                headers["Retry-After"] = self.retry_after
            return httpx.Response(202, headers=headers)
        if request.method == "GET" and "/commandResults/" in path:
            self.polls.append(request)
            command_id = path.rsplit("/", 1)[1]
            properties: dict[str, Any] = {"provisioningState": "Running",
                                          "startedAt": "2026-12-01T10:00:00Z"}  # fmt: skip
            if command_id in self.finished:
                properties.update(provisioningState="Succeeded", exitCode=0, logs="done\n",
                                  finishedAt="2026-12-01T10:00:03Z")  # fmt: skip
            return httpx.Response(
                200, content=json.dumps({"id": command_id, "properties": properties})
            )
        raise AssertionError(f"unexpected request {request.method} {request.url}")


@dataclass
class Stack:
    kube: FakeKube
    arm: HeldArm
    http: httpx.AsyncClient
    clients: ArmClients
    runtime: Runtime

    def ref(self, name: str) -> ObjectRef:
        metadata = self.kube.objects[name]["metadata"]
        return ObjectRef(metadata["namespace"], metadata["name"], metadata["uid"])

    async def close(self) -> None:
        await self.runtime.close()
        await self.clients.aclose()
        await self.http.aclose()


def operator_config(holder: str = "op-1") -> configuration.OperatorConfig:
    env = {"AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
           "AZURE_CLIENT_ID": "app", "AZURE_CLIENT_SECRET": "secret"}  # fmt: skip
    return configuration.load(
        ["--namespace", NAMESPACE, "--arm-endpoint", ARM_ENDPOINT, "--credentials",
         "client-secret", "--operator-identity-namespaces", NAMESPACE,
         "--instance-name", holder],
        env,
    )  # fmt: skip


async def start_stack(
    kube: FakeKube,
    arm: HeldArm,
    holder: str = "op-1",
    *,
    record_backoff: tuple[float, ...] | None = None,
) -> Stack:
    """The parts wiring.build makes, on the fakes: ARM behind `arm`'s transport, the
    operator's credential a fake one. `record_backoff`: the seconds between tries to record
    ARM's answer, when a test would rather not wait the operator's."""
    config = operator_config(holder)
    if record_backoff is not None:
        runtime = dataclasses.replace(config.runtime, record_backoff=record_backoff)
        config = dataclasses.replace(config, runtime=runtime)
    http = new_http_client(transport=arm.transport)
    clients = ArmClients(config.arm.cloud, http, ArmThrottle(),
                         build=lambda *_, **__: FakeCredential())  # fmt: skip
    runtime = Runtime(config, kube, InputReader(config, kube, clients))
    await runtime.start()
    return Stack(kube, arm, http, clients, runtime)


async def eventually(check: Callable[[], bool | Awaitable[bool]]) -> None:
    """Wait (10 s at most) until `check` holds: the runtime works in its own tasks."""
    async with asyncio.timeout(10):
        while True:
            held = check()
            if not isinstance(held, bool):
                held = await held
            if held:
                return
            await asyncio.sleep(0.01)
