"""POST /_emulator/revoke-tokens: ARM refuses every access token issued before it, the way ARM
answers a token it does not honour, and honours tokens issued after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aks_arm_emulator import EmulatorConfig

from tests.emulator.emulator_harness import (
    AKS_APP,
    API,
    Emulator,
    arm_token,
    call,
    cluster,
    error_code,
    fetch_token,
    running_emulator,
    submit,
)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=(cluster(), cluster("aad1", aad_managed=True)), mode="scripted"
    )
    with running_emulator(config) as running:
        yield running


async def read_cluster(emulator: Emulator, token: str) -> tuple[int, dict[str, str], object]:
    return await call(emulator, "GET", f"{emulator.cluster_url()}?{API}", token=token)


async def revoke(emulator: Emulator) -> int:
    status, _, body = await call(emulator, "POST", f"{emulator.base_url}/_emulator/revoke-tokens")
    assert status == 200
    return int(body["revoked"])


async def test_tokens_issued_before_are_refused_and_later_ones_work(emulator: Emulator) -> None:
    old = await arm_token(emulator)
    assert (await read_cluster(emulator, old))[0] == 200

    assert await revoke(emulator) == 1
    status, headers, body = await read_cluster(emulator, old)
    assert status == 401
    assert error_code(body) == "InvalidAuthenticationToken"
    assert "revoked" in body["error"]["message"]
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer authorization_uri=")
    assert 'error="invalid_token"' in challenge
    status, _, body = await submit(emulator, old)
    assert status == 401 and error_code(body) == "InvalidAuthenticationToken"

    # Issued right after the revocation, in the same second: honoured.
    fresh = await arm_token(emulator)
    assert (await read_cluster(emulator, fresh))[0] == 200
    assert (await submit(emulator, fresh))[0] == 202

    assert await revoke(emulator) == 1
    assert (await read_cluster(emulator, fresh))[0] == 401
    assert (await read_cluster(emulator, await arm_token(emulator)))[0] == 200


async def test_nothing_to_revoke_is_fine(emulator: Emulator) -> None:
    assert await revoke(emulator) == 0


async def test_revocation_is_about_the_arm_bearer_only(emulator: Emulator) -> None:
    # A clusterToken is checked as part of the request body, not as the caller's identity.
    cluster_token = await fetch_token(emulator, AKS_APP)
    await revoke(emulator)
    status, _, _ = await submit(
        emulator,
        await arm_token(emulator),
        name="aad1",
        body={"command": "true", "clusterToken": cluster_token},
    )
    assert status == 202
