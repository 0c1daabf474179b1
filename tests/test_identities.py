"""ARM clients by identity: shared while a Secret is unchanged, closed after it rotates."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from controller.arm import ArmThrottle, Cloud, CredentialConfig
from controller.identities import ArmClients

CLOUD = Cloud.custom("https://arm.example.test", "https://login.example.test")
CONFIG = CredentialConfig(mode="client-secret", tenant_id="t", client_id="c", client_secret="s")


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
def clients(built: list[RecordingCredential]) -> Iterator[ArmClients]:
    def build(config: CredentialConfig, cloud: Cloud, **_: Any) -> RecordingCredential:
        credential = RecordingCredential(config)
        built.append(credential)
        return credential

    yield ArmClients(CLOUD, httpx.AsyncClient(), ArmThrottle(), retire_after=0.05, build=build)


async def test_one_credential_per_identity_version_and_one_client_per_token_mode(
    clients: ArmClients, built: list[RecordingCredential]
) -> None:
    auto = clients.get(("secret", "team-a", "creds"), "7", CONFIG, "auto")
    assert clients.get(("secret", "team-a", "creds"), "7", CONFIG, "auto") is auto
    never = clients.get(("secret", "team-a", "creds"), "7", CONFIG, "never")
    assert never is not auto
    other = clients.get(("secret", "team-b", "creds"), "7", CONFIG, "auto")
    assert other is not auto
    assert len(built) == 2  # team-a's credential serves both modes
    await clients.aclose()
    assert all(credential.closed for credential in built)


async def test_a_rotated_secret_retires_the_old_credential_after_the_grace_period(
    clients: ArmClients, built: list[RecordingCredential]
) -> None:
    first = clients.get(("secret", "team-a", "creds"), "7", CONFIG, "auto")
    second = clients.get(("secret", "team-a", "creds"), "8", CONFIG, "auto")
    assert second is not first
    assert [credential.closed for credential in built] == [False, False]  # grace period
    assert clients.credentials == 2
    await asyncio.sleep(0.2)
    assert [credential.closed for credential in built] == [True, False]
    assert clients.credentials == 1
    await clients.aclose()
    assert built[1].closed


async def test_closing_also_closes_credentials_still_in_their_grace_period(
    clients: ArmClients, built: list[RecordingCredential]
) -> None:
    clients.get(("operator",), "", CONFIG, "auto")
    clients.get(("secret", "team-a", "creds"), "1", CONFIG, "auto")
    clients.get(("secret", "team-a", "creds"), "2", CONFIG, "auto")
    await clients.aclose()
    assert [credential.closed for credential in built] == [True, True, True]
    assert clients.credentials == 0
