"""Credential configuration from Secret data, secret redaction, and credential construction."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_entra import CLIENT, SECRET, TENANT, pem_certificate

from controller.arm import Cloud, CredentialConfig, CredentialError, build_credential

EMULATOR = Cloud.custom("https://127.0.0.1:8443", "127.0.0.1:8443")


def test_secret_data_with_client_secret() -> None:
    config = CredentialConfig.from_secret_data(
        {"tenantId": TENANT.encode() + b"\n", "clientId": CLIENT.encode(), "clientSecret": SECRET}
    )
    assert (config.mode, config.tenant_id, config.client_id) == ("client-secret", TENANT, CLIENT)
    assert config.client_secret == SECRET


def test_secret_data_with_certificate() -> None:
    pem = pem_certificate()
    config = CredentialConfig.from_secret_data(
        {"tenantId": TENANT, "clientId": CLIENT, "clientCertificate": pem}
    )
    assert (config.mode, config.client_certificate) == ("client-certificate", pem)


def test_secret_data_with_workload_identity() -> None:
    config = CredentialConfig.from_secret_data(
        {"tenantId": TENANT, "clientId": CLIENT, "workloadIdentity": b"True"}
    )
    assert config.mode == "workload-identity"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tenantId": TENANT, "clientId": CLIENT}, "found none"),
        (
            {"tenantId": TENANT, "clientId": CLIENT, "clientSecret": "x", "clientCertificate": "y"},
            "exactly one",
        ),
        ({"clientId": CLIENT, "clientSecret": "x"}, "needs tenantId and clientId"),
        ({"tenantId": TENANT, "clientId": CLIENT, "authMode": "managed-identity"}, "Secret"),
        ({"tenantId": TENANT, "clientId": CLIENT, "authMode": "default"}, "Secret"),
        ({"tenantId": TENANT, "clientId": CLIENT, "password": "x"}, "unknown keys password"),
    ],
)
def test_secret_data_errors_are_clear(data: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CredentialConfig.from_secret_data(data)


def test_secret_data_errors_never_echo_secret_values() -> None:
    with pytest.raises(ValueError) as caught:
        CredentialConfig.from_secret_data(
            {
                "tenantId": TENANT,
                "clientId": CLIENT,
                "clientSecret": SECRET,
                "clientCertificate": SECRET,
            }
        )
    assert SECRET not in str(caught.value)


def test_repr_redacts_secrets() -> None:
    config = CredentialConfig(
        mode="client-secret", tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET
    )
    for text in (repr(config), str(config), f"{config}", repr([config])):
        assert SECRET not in text
        assert "client_secret=<redacted>" in text
        assert CLIENT in text


def test_config_validates_required_fields_per_mode() -> None:
    with pytest.raises(ValueError, match="needs client_secret"):
        CredentialConfig(mode="client-secret", tenant_id=TENANT, client_id=CLIENT)
    with pytest.raises(ValueError, match="unknown credential mode"):
        CredentialConfig(mode="password")  # type: ignore[arg-type]


async def test_build_credential_creates_the_matching_azure_identity_type(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("federated-token")
    cases = [
        (
            CredentialConfig(
                mode="client-secret", tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET
            ),
            ClientSecretCredential,
        ),
        (
            CredentialConfig(
                mode="client-certificate",
                tenant_id=TENANT,
                client_id=CLIENT,
                client_certificate=pem_certificate(),
            ),
            CertificateCredential,
        ),
        (
            CredentialConfig(
                mode="workload-identity",
                tenant_id=TENANT,
                client_id=CLIENT,
                token_file_path=str(token_file),
            ),
            WorkloadIdentityCredential,
        ),
        (CredentialConfig(mode="managed-identity", client_id=CLIENT), ManagedIdentityCredential),
        (CredentialConfig(mode="default"), DefaultAzureCredential),
    ]
    for config, expected in cases:
        credential = build_credential(config, EMULATOR, connection_verify=str(tmp_path / "ca.pem"))
        try:
            assert isinstance(credential, expected), config
        finally:
            await credential.close()


@pytest.mark.parametrize(
    ("password", "detail"),
    [(None, "TypeError: Password was not given"), ("wrong", "ValueError: Incorrect password")],
)
def test_an_encrypted_key_without_its_password_is_invalid_credentials(
    password: str | None, detail: str
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate_pem = pem_certificate()
    certificate_only = certificate_pem[: certificate_pem.index(b"-----BEGIN PRIVATE KEY-----")]
    encrypted_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"the-right-password"),
    )
    config = CredentialConfig(
        mode="client-certificate",
        tenant_id=TENANT,
        client_id=CLIENT,
        client_certificate=certificate_only + encrypted_key,
        client_certificate_password=password,
    )
    with pytest.raises(CredentialError) as caught:
        build_credential(config, EMULATOR)
    assert (caught.value.code, caught.value.retryable) == ("InvalidCredentials", False)
    assert detail in caught.value.message
