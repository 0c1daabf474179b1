"""ArmClient.list_clusters: against the emulator's paged lists over real HTTPS, and against a
scripted ARM for what the emulator never sends (a nextLink off the ARM endpoint, odd entries)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import ScriptedConfig
from arm_doubles import CLOUD, ScriptedArm, make_client

from controller.arm import (
    ArmClient,
    ArmError,
    Cloud,
    ClusterRef,
    CredentialConfig,
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
from tests.helpers import OTHER_SUBSCRIPTION as OTHER_SUB


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    in_groups = [
        cluster(f"c{i}", resource_group="rg-a" if i % 2 else "rg-b", tags=(("i", str(i)),))
        for i in range(7)
    ]
    clusters = (*in_groups, cluster("elsewhere", subscription_id=OTHER_SUB))
    config = EmulatorConfig(
        clusters=clusters, mode="scripted", scripted=ScriptedConfig(), list_page_size=3
    )
    with running_emulator(config, tmp_path_factory.mktemp("list-state")) as running:
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


async def test_a_subscription_list_follows_next_link_to_every_cluster(client: ArmClient) -> None:
    found = await client.list_clusters(SUB)
    assert sorted(c.name for c in found) == [f"c{i}" for i in range(7)]  # 3 pages of 3
    by_name = {c.name: c for c in found}
    assert by_name["c4"].tags == {"i": "4"} and by_name["c4"].resource_group == "rg-b"
    assert by_name["c4"].ref == ClusterRef(SUB, "rg-b", "c4")


async def test_a_resource_group_list_holds_only_that_group(client: ArmClient) -> None:
    found = await client.list_clusters(SUB, "rg-a")
    assert sorted(c.name for c in found) == ["c1", "c3", "c5"]


async def test_a_next_link_off_the_arm_endpoint_is_refused_and_not_followed() -> None:
    page = {"value": [], "nextLink": "https://evil.example/subscriptions/x?page=2"}
    arm = ScriptedArm(httpx.Response(200, json=page))
    with pytest.raises(ArmError) as raised:
        await make_client(arm).list_clusters(SUB)
    assert raised.value.code == "InvalidNextLink"
    assert len(arm.requests) == 1
    assert CLOUD.arm_endpoint in str(arm.requests[0].url)


async def test_entries_without_a_cluster_id_are_skipped() -> None:
    good = ClusterRef(SUB, "rg", "ok").resource_id
    page = {"value": [{"name": "no-id"}, {"id": "/not/a/cluster"}, {"id": good, "tags": None}]}
    found = await make_client(ScriptedArm(httpx.Response(200, json=page))).list_clusters(SUB)
    assert [(c.name, dict(c.tags)) for c in found] == [("ok", {})]
