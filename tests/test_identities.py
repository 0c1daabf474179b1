"""ARM clients by identity: one per identity version, shared while a Secret is unchanged, closed
(with the credential it built) after the Secret rotates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

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

CLOUD = Cloud.custom("https://arm.example.test", "https://login.example.test")
CONFIG = CredentialConfig(mode="client-secret", tenant_id="t", client_id="c", client_secret="s")
CLUSTER = ClusterRef("00000000-1111-2222-3333-444444444444", "rg", "aks")


class RecordingCredential:
    """The async credential protocol, recording what the cache does with it."""

    def __init__(self, config: CredentialConfig) -> None:
        self.config = config
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", 2**31)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def built() -> list[RecordingCredential]:
    return []


@pytest.fixture
async def clients(built: list[RecordingCredential]) -> AsyncIterator[ArmClients]:
    def build(config: CredentialConfig, cloud: Cloud, **_: Any) -> RecordingCredential:
        credential = RecordingCredential(config)
        built.append(credential)
        return credential

    async with new_http_client() as http:
        yield ArmClients(CLOUD, http, ArmThrottle(), retire_after=0.05, build=build)


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
    clients: ArmClients, built: list[RecordingCredential]
) -> None:
    first = clients.get(("secret", "team-a", "creds"), "7", CONFIG)
    await sign_in(first)
    second = clients.get(("secret", "team-a", "creds"), "8", CONFIG)
    await sign_in(second)
    assert second is not first
    assert [credential.closed for credential in built] == [False, False]  # grace period
    await asyncio.sleep(0.2)
    assert [credential.closed for credential in built] == [True, False]
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
