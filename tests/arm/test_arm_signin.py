"""Sign-in failures with the real azure-identity credentials, built by build_credential: each is a
classified CredentialError, raised before anything reaches ARM, and never "outcome unknown".

The token endpoint is fake_entra (HTTPS on 127.0.0.1); ARM is a ScriptedArm transport.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arm_doubles import CLUSTER, ScriptedArm, accepted, arm_error, submit
from azure.core.pipeline.policies import AsyncRetryPolicy
from fake_entra import CLIENT, SECRET, TENANT, FakeEntra, pem_certificate, running_entra

from controller.arm import (
    ArmClient,
    Cloud,
    CredentialConfig,
    CredentialError,
    SubmissionOutcomeUnknown,
    build_credential,
)

ARM = "https://arm.test"
GARBAGE_PEM = b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def entra(tmp_path: Path) -> AsyncIterator[FakeEntra]:
    async with running_entra(tmp_path) as running:
        yield running


def secret_config(secret: str = SECRET) -> CredentialConfig:
    return CredentialConfig(
        mode="client-secret", tenant_id=TENANT, client_id=CLIENT, client_secret=secret
    )


def client_for(
    config: CredentialConfig, authority: str, ca_file: str, arm: ScriptedArm
) -> ArmClient:
    """An ArmClient that builds its credential as the operator does: build_credential."""
    cloud = Cloud.custom(ARM, authority_host=authority)
    factory = functools.partial(build_credential, config, cloud, connection_verify=ca_file)
    return ArmClient(credential_factory=factory, cloud=cloud, transport=arm.transport)


async def submit_refused(client: ArmClient) -> CredentialError:
    async with client:
        with pytest.raises(CredentialError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")
    assert not isinstance(caught.value, SubmissionOutcomeUnknown)
    return caught.value


def key_only_pem() -> bytes:
    pem = pem_certificate()
    return pem[pem.index(b"-----BEGIN PRIVATE KEY-----") :]


def certificate_only_pem() -> bytes:
    pem = pem_certificate()
    return pem[: pem.index(b"-----BEGIN PRIVATE KEY-----")]


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        (
            CredentialConfig(
                mode="client-secret",
                tenant_id="not/a tenant",
                client_id=CLIENT,
                client_secret=SECRET,
            ),
            "Invalid tenant ID",
        ),
        (
            CredentialConfig(
                mode="client-certificate",
                tenant_id=TENANT,
                client_id=CLIENT,
                client_certificate=GARBAGE_PEM,
            ),
            "Unable to load PEM",
        ),
        (
            CredentialConfig(
                mode="client-certificate",
                tenant_id=TENANT,
                client_id=CLIENT,
                client_certificate=certificate_only_pem(),
            ),
            "private key",
        ),
        (
            CredentialConfig(
                mode="client-certificate",
                tenant_id=TENANT,
                client_id=CLIENT,
                client_certificate=key_only_pem(),
            ),
            "CERTIFICATE",
        ),
    ],
    ids=["bad-tenant-id", "garbage-pem", "certificate-without-key", "key-without-certificate"],
)
async def test_material_that_can_never_work_is_invalid_credentials(
    entra: FakeEntra, config: CredentialConfig, detail: str
) -> None:
    with pytest.raises(CredentialError) as built:
        build_credential(config, Cloud.custom(ARM, entra.authority))
    assert (built.value.code, built.value.retryable) == ("InvalidCredentials", False)
    assert detail in built.value.message
    assert built.value.__cause__ is None  # the message says it all; no material in a traceback

    arm = ScriptedArm()
    error = await submit_refused(client_for(config, entra.authority, entra.ca_file, arm))
    assert (error.code, error.retryable) == ("InvalidCredentials", False)
    assert arm.requests == [] and entra.requests == []


async def test_a_wrong_secret_is_authentication_failed(entra: FakeEntra) -> None:
    entra.answer = "refuse"
    arm = ScriptedArm()
    error = await submit_refused(
        client_for(secret_config("wrong-secret-value"), entra.authority, entra.ca_file, arm)
    )

    assert (error.code, error.retryable) == ("AuthenticationFailed", False)
    assert "AADSTS7000215" in error.message and "HTTP 401" in error.message
    assert "wrong-secret-value" not in str(error)
    assert len(entra.requests) == 1  # a refusal is not retried by azure-identity either
    assert arm.requests == []


async def test_a_token_endpoint_answering_503_is_retryable(entra: FakeEntra) -> None:
    entra.answer = "unavailable"
    arm = ScriptedArm()
    error = await submit_refused(client_for(secret_config(), entra.authority, entra.ca_file, arm))

    assert (error.code, error.retryable) == ("TokenEndpointUnreachable", True)
    assert "HTTP 503" in error.message
    assert len(entra.requests) > 1  # azure-identity's own retries came first
    assert arm.requests == []


async def test_an_unreachable_token_endpoint_is_retryable(
    entra: FakeEntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port nobody listens on: connection refused, after azure-core's own retries. Their
    # backoffs are counted and skipped (azure-core sleeps only for a positive backoff).
    backoffs: list[int] = []

    def no_backoff(policy: AsyncRetryPolicy, settings: dict[str, Any]) -> float:
        backoffs.append(len(settings["history"]))
        return 0.0

    monkeypatch.setattr(AsyncRetryPolicy, "get_backoff_time", no_backoff)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    arm = ScriptedArm()
    client = client_for(secret_config(), f"127.0.0.1:{closed_port}", entra.ca_file, arm)
    error = await submit_refused(client)

    assert (error.code, error.retryable) == ("TokenEndpointUnreachable", True)
    assert arm.requests == []
    assert len(backoffs) >= 2, backoffs  # azure-core retried before the error came out


async def test_an_arm_401_makes_the_real_credential_ask_entra_for_a_new_token(
    entra: FakeEntra,
) -> None:
    arm = ScriptedArm(arm_error(401, "InvalidAuthenticationToken"), accepted())
    async with client_for(secret_config(), entra.authority, entra.ca_file, arm) as client:
        await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert [r.headers["Authorization"] for r in arm.requests] == [
        f"Bearer {entra.issued(1)}",
        f"Bearer {entra.issued(2)}",
    ]
    assert len(entra.requests) == 2
    assert all("claims" not in form for form in entra.requests)  # nothing made up sent to Entra
