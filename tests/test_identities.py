"""ARM clients by identity: one per identity version, shared while a Secret is unchanged, closed
(with the credential it built) after the Secret rotates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from controller.arm import (
    ArmClient,
    ArmThrottle,
    Cloud,
    ClusterRef,
    CredentialConfig,
    CredentialError,
    new_http_client,
)
from controller.identities import ArmClients
from tests.helpers import FakeClock

CLOUD = Cloud.custom("https://arm.example.test", "https://login.example.test")
CONFIG = CredentialConfig(mode="client-secret", tenant_id="t", client_id="c", client_secret="s")
CLUSTER = ClusterRef("00000000-1111-2222-3333-444444444444", "rg", "aks")


class RecordingCredential:
    """The async credential protocol, recording what the cache does with it (and when, on the
    clock the cache sleeps on)."""

    def __init__(self, config: CredentialConfig, now: Callable[[], float]) -> None:
        self.config, self._now = config, now
        self.closed = False
        self.closed_at: float | None = None
        self.closing = asyncio.Event()

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 2**31)

    async def close(self) -> None:
        self.closed, self.closed_at = True, self._now()
        self.closing.set()


@pytest.fixture
def built() -> list[RecordingCredential]:
    return []


def recorded(
    built: list[RecordingCredential], now: Callable[[], float]
) -> Callable[..., RecordingCredential]:
    """build_credential's stand-in: each credential it builds joins `built`."""

    def build(config: CredentialConfig, cloud: Cloud, **_: Any) -> RecordingCredential:
        credential = RecordingCredential(config, now)
        built.append(credential)
        return credential

    return build


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_http_client() as client:
        yield client


@pytest.fixture
def clients(http: httpx.AsyncClient, built: list[RecordingCredential]) -> ArmClients:
    """The cache as the operator has it: a retired client's grace period is a minute."""
    return ArmClients(CLOUD, http, ArmThrottle(), build=recorded(built, lambda: 0.0))


async def sign_in(client: ArmClient) -> None:
    """Prepare a submission that needs nothing but the ARM token: no request is sent."""
    await client.prepare_submission(
        CLUSTER, "kubectl get ns", None, cluster_token="never", correlation_id="c"
    )


async def test_one_client_per_identity_version_whatever_the_cluster_token_mode(
    clients: ArmClients, built: list[RecordingCredential]
) -> None:
    team_a = clients.get(("secret", "team-a", "creds"), "7", CONFIG)
    assert clients.get(("secret", "team-a", "creds"), "7", CONFIG) is team_a
    team_b = clients.get(("secret", "team-b", "creds"), "7", CONFIG)
    assert team_b is not team_a
    assert built == []  # a credential is built on first use, not by get
    for client in (team_a, team_a, team_b):
        await sign_in(client)
    assert len(built) == 2
    await clients.aclose()
    assert all(credential.closed for credential in built)


async def test_a_rotated_secret_retires_the_old_client_after_the_grace_period(
    http: httpx.AsyncClient, built: list[RecordingCredential]
) -> None:
    clock = FakeClock()  # the grace period passes when the cache sleeps on it
    clients = ArmClients(CLOUD, http, ArmThrottle(), retire_after=60.0,
                         build=recorded(built, clock), sleep=clock.sleep)  # fmt: skip
    first = clients.get(("secret", "team-a", "creds"), "7", CONFIG)
    await sign_in(first)
    second = clients.get(("secret", "team-a", "creds"), "8", CONFIG)
    await sign_in(second)
    assert second is not first
    await asyncio.wait_for(built[0].closing.wait(), 5)
    assert clock.sleeps == [60.0]
    assert built[0].closed_at == 60.0  # once its grace period had passed, not before
    assert not built[1].closed
    await clients.aclose()
    assert built[1].closed


async def test_closing_also_closes_clients_still_in_their_grace_period(
    clients: ArmClients, built: list[RecordingCredential]
) -> None:
    for identity, version in [
        (("operator",), ""),
        (("secret", "team-a", "creds"), "1"),
        (("secret", "team-a", "creds"), "2"),
    ]:
        await sign_in(clients.get(identity, version, CONFIG))
    await clients.aclose()
    assert [credential.closed for credential in built] == [True, True, True]


async def test_unusable_material_is_a_fatal_credential_error_from_the_first_call() -> None:
    garbage = CredentialConfig(
        mode="client-certificate",
        tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47",
        client_id="c",
        client_certificate=b"-----BEGIN CERTIFICATE-----\ngarbage\n",
    )
    async with new_http_client() as http:
        clients = ArmClients(CLOUD, http, ArmThrottle())
        client = clients.get(("secret", "team-a", "creds"), "1", garbage)  # does not raise
        with pytest.raises(CredentialError) as caught:
            await sign_in(client)
        await clients.aclose()
    assert caught.value.code == "InvalidCredentials"
    assert not caught.value.retryable
