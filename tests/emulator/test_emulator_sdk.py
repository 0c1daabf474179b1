"""The official Azure SDK and real azure-identity credentials, unchanged, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import ScriptedConfig
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    WorkloadIdentityCredential,
)
from azure.identity.aio import (
    CertificateCredential as AsyncCertificateCredential,
)
from azure.identity.aio import (
    ClientSecretCredential as AsyncClientSecretCredential,
)
from azure.identity.aio import (
    WorkloadIdentityCredential as AsyncWorkloadIdentityCredential,
)
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import RunCommandRequest

from tests.emulator.emulator_harness import (
    AKS_APP,
    CLIENT_ID,
    SUB,
    TENANT,
    Emulator,
    cluster,
    federated_token,
    running_emulator,
    self_signed_certificate,
)


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=(cluster(), cluster("aad1", aad_managed=True)),
        mode="scripted",
        scripted=ScriptedConfig(exit_code=3, logs="hello from scripted\n", duration_seconds=0.3),
    )
    with running_emulator(config, tmp_path_factory.mktemp("state")) as emulator:
        yield emulator


def authority(emulator: Emulator) -> str:
    return emulator.base_url.removeprefix("https://")


def sdk_client(emulator: Emulator, credential: ClientSecretCredential) -> ContainerServiceClient:
    return ContainerServiceClient(
        credential,
        SUB,
        base_url=emulator.base_url,
        credential_scopes=[emulator.base_url + "/.default"],
        connection_verify=str(emulator.ca_file),
        polling_interval=0.1,
    )


def secret_credential(emulator: Emulator) -> ClientSecretCredential:
    return ClientSecretCredential(
        TENANT,
        CLIENT_ID,
        "the-secret",
        authority=authority(emulator),
        disable_instance_discovery=True,
        connection_verify=str(emulator.ca_file),
    )


def test_sdk_begin_run_command_and_get_command_result(tls_emulator: Emulator) -> None:
    client = sdk_client(tls_emulator, secret_credential(tls_emulator))
    poller = client.managed_clusters.begin_run_command(
        "RG-demo", "aks1", RunCommandRequest(command="echo hi"), polling_interval=0.1
    )
    result = poller.result()
    assert result.provisioning_state == "Succeeded"
    assert result.exit_code == 3
    assert result.logs == "hello from scripted\n"
    assert result.id is not None and len(result.id) == 32

    again = client.managed_clusters.get_command_result("rg-demo", "aks1", result.id)
    assert again is not None
    assert again.exit_code == 3
    assert again.logs == "hello from scripted\n"
    assert again.finished_at is not None and again.started_at is not None
    assert again.finished_at >= again.started_at


def test_sdk_reads_managed_cluster(tls_emulator: Emulator) -> None:
    client = sdk_client(tls_emulator, secret_credential(tls_emulator))
    aad = client.managed_clusters.get("rg-demo", "aad1")
    assert aad.aad_profile is not None and aad.aad_profile.managed is True
    assert aad.power_state is not None and aad.power_state.code == "Running"
    plain = client.managed_clusters.get("rg-demo", "aks1")
    assert plain.aad_profile is None
    assert plain.api_server_access_profile is not None
    assert plain.api_server_access_profile.disable_run_command is False


def test_sdk_unknown_cluster_raises_resource_not_found(tls_emulator: Emulator) -> None:
    client = sdk_client(tls_emulator, secret_credential(tls_emulator))
    with pytest.raises(ResourceNotFoundError) as info:
        client.managed_clusters.begin_run_command(
            "rg-demo", "nope", RunCommandRequest(command="true")
        ).result()
    assert info.value.error is not None
    assert info.value.error.code == "ResourceNotFound"


def test_sdk_aad_cluster_with_cluster_token(tls_emulator: Emulator) -> None:
    credential = secret_credential(tls_emulator)
    cluster_token = credential.get_token(f"{AKS_APP}/.default").token
    assert jwt.decode(cluster_token, options={"verify_signature": False})["aud"] == AKS_APP
    client = sdk_client(tls_emulator, credential)
    result = client.managed_clusters.begin_run_command(
        "rg-demo",
        "aad1",
        RunCommandRequest(command="kubectl get ns", cluster_token=cluster_token),
        polling_interval=0.1,
    ).result()
    assert result.exit_code == 3


def _self_signed_pem(tmp_path: Path) -> Path:
    key, cert = self_signed_certificate()
    path = tmp_path / "sp.pem"
    path.write_bytes(key + cert)
    return path


def _service_account_token(tmp_path: Path) -> Path:
    path = tmp_path / "sa-token"
    path.write_text(federated_token())
    return path


def _arm_audience(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["aud"])


def test_certificate_credential_sync_runs_a_command(tls_emulator: Emulator, tmp_path: Path) -> None:
    credential = CertificateCredential(
        TENANT,
        CLIENT_ID,
        certificate_path=str(_self_signed_pem(tmp_path)),
        authority=authority(tls_emulator),
        disable_instance_discovery=True,
        connection_verify=str(tls_emulator.ca_file),
    )
    client = sdk_client(tls_emulator, credential)  # type: ignore[arg-type]
    result = client.managed_clusters.begin_run_command(
        "rg-demo", "aks1", RunCommandRequest(command="true"), polling_interval=0.1
    ).result()
    assert result.exit_code == 3


def test_workload_identity_credential_sync_via_environment(
    tls_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The way a pod gets it: AZURE_* variables set by the workload identity webhook.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", tls_emulator.base_url)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(_service_account_token(tmp_path)))
    credential = WorkloadIdentityCredential(connection_verify=str(tls_emulator.ca_file))
    token = credential.get_token(tls_emulator.base_url + "/.default").token
    assert _arm_audience(token) == tls_emulator.base_url
    client = sdk_client(tls_emulator, credential)  # type: ignore[arg-type]
    assert client.managed_clusters.get("rg-demo", "aks1").name == "aks1"


async def test_async_credentials_get_arm_tokens(tls_emulator: Emulator, tmp_path: Path) -> None:
    scope = tls_emulator.base_url + "/.default"
    common = {
        "authority": authority(tls_emulator),
        "connection_verify": str(tls_emulator.ca_file),
    }
    async with AsyncClientSecretCredential(TENANT, CLIENT_ID, "s", **common) as secret:
        assert _arm_audience((await secret.get_token(scope)).token) == tls_emulator.base_url
    async with AsyncCertificateCredential(
        TENANT, CLIENT_ID, certificate_path=str(_self_signed_pem(tmp_path)), **common
    ) as certificate:
        token = (await certificate.get_token(f"{AKS_APP}/.default")).token
        assert _arm_audience(token) == AKS_APP
    async with AsyncWorkloadIdentityCredential(
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        token_file_path=str(_service_account_token(tmp_path)),
        **common,
    ) as workload:
        claims = jwt.decode(
            (await workload.get_token(scope)).token, options={"verify_signature": False}
        )
        assert claims["aud"] == tls_emulator.base_url
        assert claims["tid"] == TENANT
        assert claims["appid"] == CLIENT_ID
