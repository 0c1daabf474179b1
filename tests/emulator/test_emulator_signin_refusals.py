"""Sign-in that refuses like Entra ID (the `signin:` section), seen through the real
azure-identity credentials: every refusal must reach the caller as ClientAuthenticationError
from get_token, never as another exception."""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import ConfigError, SigninConfig, config_from_mapping
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.identity._internal import aad_client_base
from azure.identity.aio import (
    CertificateCredential,
    WorkloadIdentityCredential,
)
from azure.identity.aio import (
    ClientSecretCredential as AsyncClientSecretCredential,
)

from tests.emulator.emulator_harness import (
    TENANT,
    Emulator,
    federated_token,
    running_emulator,
    self_signed_certificate,
)

OTHER_TENANT = "0b7e9a4c-1d2f-4e3a-9b8c-7d6e5f4a3b2c"
SECRET_APP = "11111111-0000-0000-0000-00000000000a"
ROTATING_APP = "11111111-0000-0000-0000-00000000000b"
CERT_APP = "11111111-0000-0000-0000-00000000000c"
UNLISTED_APP = "11111111-0000-0000-0000-00000000000d"

KEY_A, CERT_A = self_signed_certificate("a")
KEY_B, CERT_B = self_signed_certificate("b")
KEY_C, _ = self_signed_certificate("c")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    signin = SigninConfig(
        known_tenants=(TENANT,),
        client_secrets={SECRET_APP: ("right-secret",), ROTATING_APP: ("old", "new")},
        # Two certificates: a rotation in progress.
        client_certificates={CERT_APP: (CERT_A + CERT_B).decode()},
    )
    config = EmulatorConfig(mode="scripted", signin=signin)
    with running_emulator(config, tmp_path_factory.mktemp("signin")) as running:
        yield running


def common(emulator: Emulator) -> dict[str, Any]:
    return {
        "authority": emulator.base_url.removeprefix("https://"),
        "connection_verify": str(emulator.ca_file),
    }


async def arm_scope_token(credential: AsyncTokenCredential, emulator: Emulator) -> str:
    async with credential:
        return (await credential.get_token(emulator.base_url + "/.default")).token


async def refused(credential: AsyncTokenCredential, emulator: Emulator) -> str:
    """get_token's ClientAuthenticationError message; any other exception fails the test."""
    with pytest.raises(ClientAuthenticationError) as info:
        await arm_scope_token(credential, emulator)
    return str(info.value)


def secret_credential(
    emulator: Emulator, client: str, secret: str, tenant: str = TENANT
) -> AsyncClientSecretCredential:
    return AsyncClientSecretCredential(tenant, client, secret, **common(emulator))


def certificate_credential(
    emulator: Emulator, tmp_path: Path, client: str, key: bytes, cert: bytes
) -> CertificateCredential:
    pem = tmp_path / f"{client}.pem"
    pem.write_bytes(key + cert)
    return CertificateCredential(TENANT, client, certificate_path=str(pem), **common(emulator))


def workload_credential(
    emulator: Emulator, tmp_path: Path, token: str, tenant: str = TENANT
) -> WorkloadIdentityCredential:
    token_file = tmp_path / "sa-token"
    token_file.write_text(token)
    return WorkloadIdentityCredential(
        tenant_id=tenant,
        client_id=UNLISTED_APP,
        token_file_path=str(token_file),
        **common(emulator),
    )


# --- tenants ----------------------------------------------------------------------------------


async def test_unknown_tenant_is_refused_to_the_async_credentials(
    emulator: Emulator, tmp_path: Path
) -> None:
    message = await refused(
        secret_credential(emulator, UNLISTED_APP, "s", tenant=OTHER_TENANT), emulator
    )
    assert "invalid_request" in message and "AADSTS90002" in message
    assert OTHER_TENANT in message
    message = await refused(
        workload_credential(emulator, tmp_path, federated_token(), tenant=OTHER_TENANT), emulator
    )
    assert "AADSTS90002" in message
    # The known tenant still signs in.
    assert await arm_scope_token(secret_credential(emulator, UNLISTED_APP, "s"), emulator)


def test_unknown_tenant_is_refused_to_the_msal_based_credential(emulator: Emulator) -> None:
    # msal asks the tenant's discovery document first; Entra answers 400 there, msal raises a
    # ValueError of its own wording (Entra's AADSTS text is dropped) and azure-identity wraps it.
    credential = ClientSecretCredential(
        OTHER_TENANT, UNLISTED_APP, "s", disable_instance_discovery=True, **common(emulator)
    )
    with pytest.raises(ClientAuthenticationError) as info:
        credential.get_token(emulator.base_url + "/.default")
    assert "Unable to get authority configuration" in str(info.value)
    assert OTHER_TENANT in str(info.value)


async def test_discovery_of_an_unknown_tenant_answers_like_entra(emulator: Emulator) -> None:
    ssl = emulator.ssl_context()
    async with aiohttp.ClientSession() as session:
        url = f"{emulator.base_url}/{OTHER_TENANT}/v2.0/.well-known/openid-configuration"
        async with session.get(url, ssl=ssl, headers={"client-request-id": "abc"}) as response:
            assert response.status == 400
            body = await response.json()
        assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]
        assert body["correlation_id"] == "abc"
        assert body["error_uri"].endswith("?code=90002")
        for tenant in (TENANT, "common", "organizations"):
            url = f"{emulator.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
            async with session.get(url, ssl=ssl) as response:
                assert response.status == 200


# --- client secrets ---------------------------------------------------------------------------


async def test_wrong_secret_for_a_listed_client_is_invalid_client(emulator: Emulator) -> None:
    message = await refused(secret_credential(emulator, SECRET_APP, "wrong-x9q"), emulator)
    assert "invalid_client" in message and "AADSTS7000215" in message
    assert "wrong-x9q" not in message and "right-secret" not in message
    assert await arm_scope_token(secret_credential(emulator, SECRET_APP, "right-secret"), emulator)


async def test_every_listed_secret_of_a_rotating_client_works(emulator: Emulator) -> None:
    for secret in ("old", "new"):
        assert await arm_scope_token(secret_credential(emulator, ROTATING_APP, secret), emulator)
    assert "AADSTS7000215" in await refused(
        secret_credential(emulator, ROTATING_APP, "older"), emulator
    )


async def test_unlisted_client_keeps_the_accept_anything_default(emulator: Emulator) -> None:
    assert await arm_scope_token(secret_credential(emulator, UNLISTED_APP, "any"), emulator)


async def test_a_certificate_only_app_has_no_secret(emulator: Emulator) -> None:
    assert "AADSTS7000215" in await refused(
        secret_credential(emulator, CERT_APP, "guess"), emulator
    )


# --- certificates -----------------------------------------------------------------------------


async def test_assertions_signed_by_a_registered_certificate_work(
    emulator: Emulator, tmp_path: Path
) -> None:
    for key, cert in ((KEY_A, CERT_A), (KEY_B, CERT_B)):
        credential = certificate_credential(emulator, tmp_path, CERT_APP, key, cert)
        assert await arm_scope_token(credential, emulator)


async def test_assertion_signed_by_another_key_is_refused(
    emulator: Emulator, tmp_path: Path
) -> None:
    # The client presents certificate A but signs with another key: the signature fails.
    credential = certificate_credential(emulator, tmp_path, CERT_APP, KEY_C, CERT_A)
    message = await refused(credential, emulator)
    assert "invalid_client" in message and "AADSTS700027" in message


async def test_a_secret_only_app_has_no_certificate(emulator: Emulator, tmp_path: Path) -> None:
    credential = certificate_credential(emulator, tmp_path, SECRET_APP, KEY_A, CERT_A)
    assert "AADSTS700027" in await refused(credential, emulator)


async def test_expired_certificate_assertion_is_refused(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client clock two hours slow: azure-identity dates its 30-minute assertion in the past.
    slow = time.time() - 7200
    monkeypatch.setattr(aad_client_base, "time", types.SimpleNamespace(time=lambda: slow))
    credential = certificate_credential(emulator, tmp_path, CERT_APP, KEY_A, CERT_A)
    message = await refused(credential, emulator)
    assert "invalid_client" in message and "AADSTS700024" in message


# --- federated tokens (workload identity) -----------------------------------------------------


async def test_expired_federated_token_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    credential = workload_credential(emulator, tmp_path, federated_token(expires_in=-600))
    message = await refused(credential, emulator)
    assert "invalid_client" in message and "AADSTS700024" in message


async def test_malformed_federated_token_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    credential = workload_credential(emulator, tmp_path, "not-a-jwt")
    assert "AADSTS700027" in await refused(credential, emulator)


async def test_fresh_federated_token_works(emulator: Emulator, tmp_path: Path) -> None:
    assert await arm_scope_token(
        workload_credential(emulator, tmp_path, federated_token()), emulator
    )


# --- configuration ----------------------------------------------------------------------------


def test_yaml_section_is_read() -> None:
    config = config_from_mapping(
        {
            "signin": {
                "knownTenants": [TENANT],
                "clientSecrets": {SECRET_APP: "one", ROTATING_APP: ["a", "b"]},
                "clientCertificates": {CERT_APP: CERT_A.decode()},
            }
        }
    )
    assert config.signin.known_tenants == (TENANT,)
    assert dict(config.signin.client_secrets) == {SECRET_APP: ("one",), ROTATING_APP: ("a", "b")}
    assert config.signin.client_certificates[CERT_APP] == CERT_A.decode()
    assert config_from_mapping({}).signin == SigninConfig()


@pytest.mark.parametrize(
    ("signin", "message"),
    [
        ({"knownTenants": ["contoso"]}, "signin.knownTenants[0] must be a tenant id (UUID)"),
        ({"knownTenants": TENANT}, "signin.knownTenants must be a list"),
        ({"clientSecrets": {SECRET_APP: ""}}, f"signin.clientSecrets.{SECRET_APP} must be"),
        ({"clientSecrets": {SECRET_APP: []}}, f"signin.clientSecrets.{SECRET_APP} must be"),
        ({"clientSecrets": [SECRET_APP]}, "signin.clientSecrets must be a mapping"),
        (
            {"clientCertificates": {CERT_APP: "not a pem"}},
            f"signin.clientCertificates.{CERT_APP} must hold PEM certificates",
        ),
        ({"knwonTenants": []}, "unknown key(s) in signin: knwonTenants"),
    ],
)
def test_bad_signin_section_is_explained(signin: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"signin": signin})
    assert message in str(info.value)
