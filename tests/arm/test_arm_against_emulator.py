"""ArmClient and build_credential against the local emulator over real HTTPS with a real
azure-identity ClientSecretCredential (the emulator's sign-in endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import ScriptedConfig
from arm_doubles import submit

from controller.arm import (
    ArmClient,
    Cloud,
    ClusterRef,
    CommandHandle,
    CommandResult,
    CredentialConfig,
    ResourceNotFoundError,
    build_context,
    build_credential,
)
from tests.emulator.emulator_harness import (
    CLIENT_ID,
    SUB,
    TENANT,
    Emulator,
    cluster,
    running_emulator,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=(cluster(), cluster("aad1", aad_managed=True)),
        mode="scripted",
        scripted=ScriptedConfig(exit_code=3, logs="hello from scripted\n", duration_seconds=0.2),
        lowercase_states=True,
    )
    with running_emulator(config, tmp_path_factory.mktemp("arm-state")) as running:
        yield running


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[ArmClient]:
    assert emulator.ca_file is not None
    cloud = Cloud.custom(emulator.base_url, emulator.base_url.removeprefix("https://"))
    config = CredentialConfig.from_secret_data(
        {"tenantId": TENANT, "clientId": CLIENT_ID, "clientSecret": "emulator-secret"}
    )
    credential = build_credential(config, cloud, connection_verify=str(emulator.ca_file))
    async with credential, ArmClient(credential, cloud=cloud, ca_file=str(emulator.ca_file)) as arm:
        yield arm


async def wait_for_result(client: ArmClient, handle: CommandHandle) -> CommandResult:
    for _ in range(100):
        status = await client.poll(handle)
        if isinstance(status, CommandResult):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError("command did not finish within 10 s")


@pytest.mark.parametrize("name", ["aks1", "aad1"])
async def test_submit_and_poll_to_a_result(client: ArmClient, name: str) -> None:
    target = ClusterRef(SUB, "rg-Demo", name)
    context = build_context({"ns.yaml": b"kind: Namespace\n"}, 1_000_000)

    handle = await submit(client, target, "kubectl apply -f ns.yaml", context)
    result = await wait_for_result(client, handle)

    assert len(handle.command_id) == 32
    assert result.provisioning_state.casefold() == "succeeded"
    assert (result.exit_code, result.logs) == (3, "hello from scripted\n")
    assert not result.succeeded and not result.platform_failed


async def test_aad_detection_reads_the_emulated_cluster(client: ArmClient) -> None:
    summary = await client.get_cluster(ClusterRef(SUB, "rg-demo", "aad1"))
    assert summary.aad_managed
    assert summary.power_state == "Running"


async def test_unknown_cluster_is_resource_not_found(client: ArmClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        await submit(client, ClusterRef(SUB, "rg-Demo", "missing"), "kubectl get ns")
    assert not caught.value.retryable
    assert caught.value.request_id
