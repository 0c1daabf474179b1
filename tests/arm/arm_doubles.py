"""Test doubles for the ARM client: a scripted ARM behind httpx.MockTransport and a credential."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from controller.arm import (
    AKS_AAD_SCOPE,
    ArmClient,
    ArmThrottle,
    Cloud,
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    RetryPolicy,
)
from tests.helpers import SUBSCRIPTION, FakeClock

ARM_ENDPOINT = "https://arm.test"
CLOUD = Cloud.custom(ARM_ENDPOINT)
ARM_TOKEN = "arm-bearer-7f3a9c-SECRET"
AKS_TOKEN = "aks-cluster-token-51d0e2-SECRET"
CLUSTER = ClusterRef(SUBSCRIPTION, "rg-demo", "aks-demo")
COMMAND_ID = "0123456789abcdef0123456789abcdef"
# As the live service writes it: lower-case "resourcegroups", differing from the request.
LOCATION = (
    f"{ARM_ENDPOINT}/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-demo/providers/"
    f"Microsoft.ContainerService/managedClusters/aks-demo/commandResults/{COMMAND_ID}"
    "?api-version=2024-09-01"
)

Step = httpx.Response | type[httpx.HTTPError] | Callable[[httpx.Request], httpx.Response]


class FakeCredential:
    """Implements azure-core's AsyncTokenCredential protocol with fixed tokens."""

    def __init__(self, error: Exception | None = None, *, arm_token: str = ARM_TOKEN) -> None:
        self.error = error
        self.arm_token = arm_token
        self.scopes: list[str] = []
        self.closed = False

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.scopes.extend(scopes)
        if self.error is not None:
            raise self.error
        token = AKS_TOKEN if scopes == (AKS_AAD_SCOPE,) else self.arm_token
        return AccessToken(token, 4_102_444_800)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


class _EntraAnswer:
    """The parts of an azure-core HttpResponse that ClientAuthenticationError reads."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.reason = "Entra says no"
        self.headers: dict[str, str] = {}

    def text(self, encoding: str | None = None) -> str:
        return '{"error": "invalid_client"}'


def entra_error(status_code: int, message: str) -> ClientAuthenticationError:
    """What azure-identity raises when Microsoft Entra ID answers ``status_code``."""
    return ClientAuthenticationError(message=message, response=_EntraAnswer(status_code))


class ScriptedArm:
    """Answers requests with ``steps`` in order and records every request it saw.

    A step is a response, an httpx exception class to raise, or a function of the request.
    """

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.steps:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        step = self.steps.pop(0)
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, type):
            raise step("simulated failure", request=request)
        return step(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests if request.content]


def accepted(location: str | None = LOCATION, **headers: str) -> httpx.Response:
    all_headers = {"Location": location} if location is not None else {}
    all_headers.update(headers)
    return httpx.Response(202, headers=all_headers)


def arm_error(
    status: int, code: str, message: str = "something went wrong", **headers: str
) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message}}, headers=headers
    )


def command_state(
    status: int, state: str, headers: dict[str, str] | None = None, **properties: object
) -> httpx.Response:
    body = {
        "id": COMMAND_ID,
        "properties": {
            "provisioningState": state,
            "startedAt": "2024-09-01T10:00:00Z",
            **properties,
        },
    }
    return httpx.Response(status, json=body, headers=headers)


def cluster_body(*, aad_managed: bool) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": CLUSTER.resource_id,
            "properties": {
                "aadProfile": {"managed": aad_managed},
                "powerState": {"code": "Running"},
                "apiServerAccessProfile": {"enablePrivateCluster": True},
            },
        },
    )


def make_client(
    arm: ScriptedArm,
    *,
    clock: FakeClock | None = None,
    credential: FakeCredential | None = None,
    credentials: FakeCredentials | None = None,
    retry: RetryPolicy | None = None,
    throttle: ArmThrottle | None = None,
) -> ArmClient:
    """An ArmClient on ``arm`` with a borrowed ``credential``, or owning what ``credentials``
    builds; it sleeps on ``clock`` (retry delays are its ``sleeps``)."""
    if throttle is None:
        # A 429 blocks the bucket for Retry-After: let that pass in fake time.
        budget_clock = FakeClock()
        throttle = ArmThrottle(clock=budget_clock, sleep=budget_clock.sleep)
    return ArmClient(
        None if credentials is not None else credential or FakeCredential(),
        credential_factory=credentials,
        cloud=CLOUD,
        transport=arm.transport,
        sleep=(clock or FakeClock()).sleep,
        rand=lambda: 0.5,
        retry=retry,
        throttle=throttle,
    )


class FakeCredentials:
    """A credential factory: each credential it builds has its own ARM token (``<ARM_TOKEN>-1``,
    ``-2``...), as a new azure-identity credential asks Entra for a new token."""

    def __init__(self) -> None:
        self.built: list[FakeCredential] = []

    def __call__(self) -> FakeCredential:
        credential = FakeCredential(arm_token=f"{ARM_TOKEN}-{len(self.built) + 1}")
        self.built.append(credential)
        return credential


async def submit(
    client: ArmClient,
    cluster: ClusterRef,
    command: str,
    context: str | None = None,
    *,
    cluster_token: ClusterTokenMode = "auto",
    correlation_id: str | None = None,
) -> CommandHandle:
    """The client's two submission steps back to back, as the runtime takes them with its
    record of the correlation id in between."""
    prepared = await client.prepare_submission(
        cluster,
        command,
        context,
        cluster_token=cluster_token,
        correlation_id=correlation_id or str(uuid.uuid4()),
    )
    return await client.send_submission(prepared)
