"""The emulator's managedClusters lists: by subscription and by resource group, paged through
nextLink, with each cluster's tags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import (
    BucketRules,
    ConfigError,
    ScriptedConfig,
    ThrottleRules,
    config_from_mapping,
)

from tests.emulator.emulator_harness import (
    API,
    SUB,
    Emulator,
    arm_token,
    call,
    cluster,
    error_code,
    running_emulator,
)
from tests.helpers import OTHER_SUBSCRIPTION as OTHER_SUB

CLUSTERS = (
    cluster("a1", tags=(("env", "prod"),)),
    cluster("a2", resource_group="rg-Other", tags=(("env", "dev"),)),
    cluster("a3"),
    cluster("a4", resource_group="rg-Other"),
    cluster("a5"),
    cluster("b1", subscription_id=OTHER_SUB),
)

PROVIDER = "providers/Microsoft.ContainerService/managedClusters"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=CLUSTERS, mode="scripted", scripted=ScriptedConfig(), list_page_size=2
    )
    with running_emulator(config) as running:
        yield running


async def _all_pages(emulator: Emulator, url: str) -> tuple[list[dict[str, Any]], int]:
    token = await arm_token(emulator)
    values: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        status, _, body = await call(emulator, "GET", next_url, token=token)
        assert status == 200, body
        assert len(body["value"]) <= 2  # the page size
        values.extend(body["value"])
        next_url = body.get("nextLink")
        pages += 1
    return values, pages


async def test_subscription_list_pages_through_every_cluster_of_that_subscription(
    emulator: Emulator,
) -> None:
    values, pages = await _all_pages(
        emulator, f"{emulator.base_url}/subscriptions/{SUB}/{PROVIDER}?{API}"
    )
    assert sorted(v["name"] for v in values) == ["a1", "a2", "a3", "a4", "a5"]
    assert pages == 3
    tags = {v["name"]: v["tags"] for v in values}
    assert tags["a1"] == {"env": "prod"} and tags["a3"] == {}


async def test_resource_group_list_holds_only_that_group(emulator: Emulator) -> None:
    url = f"{emulator.base_url}/subscriptions/{SUB}/resourceGroups/RG-other/{PROVIDER}?{API}"
    values, pages = await _all_pages(emulator, url)
    assert sorted(v["name"] for v in values) == ["a2", "a4"]
    assert pages == 1
    assert all("/resourcegroups/rg-Other/" in v["id"] for v in values)


async def test_list_needs_an_api_version(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await call(
        emulator, "GET", f"{emulator.base_url}/subscriptions/{SUB}/{PROVIDER}", token=token
    )
    assert status == 400 and error_code(body) == "MissingApiVersionParameter"


def test_tags_and_page_size_come_from_yaml() -> None:
    config = config_from_mapping(
        {
            "mode": "scripted",
            "listPageSize": 7,
            "clusters": [
                {"subscriptionId": SUB, "resourceGroup": "rg", "name": "c", "tags": {"k": "v"}}
            ],
        }
    )
    assert config.list_page_size == 7 and config.clusters[0].tags == (("k", "v"),)
    with pytest.raises(ConfigError, match="tags"):
        config_from_mapping(
            {"mode": "scripted", "clusters": [
                {"subscriptionId": SUB, "resourceGroup": "rg", "name": "c", "tags": ["k"]}
            ]}
        )  # fmt: skip
    with pytest.raises(ConfigError, match="listPageSize"):
        config_from_mapping({"mode": "scripted", "listPageSize": 0})


async def test_clusters_added_and_removed_while_running_show_in_the_lists(
    emulator: Emulator,
) -> None:
    url = f"{emulator.base_url}/subscriptions/{SUB}/resourceGroups/rg-new/{PROVIDER}?{API}"
    entry = {"subscriptionId": SUB, "resourceGroup": "rg-new", "name": "late", "tags": {"k": "v"}}
    status, _, body = await call(
        emulator, "POST", f"{emulator.base_url}/_emulator/clusters", json_body=entry
    )
    assert status == 201, body
    status, _, body = await call(
        emulator, "POST", f"{emulator.base_url}/_emulator/clusters", json_body=entry
    )
    assert status == 409 and error_code(body) == "ClusterExists"
    values, _ = await _all_pages(emulator, url)
    assert [(v["name"], v["tags"]) for v in values] == [("late", {"k": "v"})]

    status, _, body = await call(
        emulator, "DELETE", f"{emulator.base_url}/_emulator/clusters", json_body=entry
    )
    assert status == 200 and body == {"removed": True}
    assert (await _all_pages(emulator, url))[0] == []
    status, _, body = await call(
        emulator, "POST", f"{emulator.base_url}/_emulator/clusters", json_body={"name": "x"}
    )
    assert status == 400 and error_code(body) == "InvalidCluster"


async def test_lists_have_their_own_per_subscription_budget_after_a_burst() -> None:
    """The AKS resource provider's LIST limit (500 at once, then 1/s), here shrunk to 2."""
    throttle = ThrottleRules(lists=BucketRules(capacity=2, refill_per_second=0.01))
    config = EmulatorConfig(clusters=CLUSTERS, mode="scripted", throttle=throttle)
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        url = f"{emulator.base_url}/subscriptions/{SUB}/{PROVIDER}?{API}"
        answers = [await call(emulator, "GET", url, token=token) for _ in range(3)]
        assert [status for status, _, _ in answers] == [200, 200, 429]
        _, headers, body = answers[2]
        assert error_code(body) == "TooManyRequests" and int(headers["Retry-After"]) >= 1
        other = f"{emulator.base_url}/subscriptions/{OTHER_SUB}/{PROVIDER}?{API}"
        assert (await call(emulator, "GET", other, token=token))[0] == 200
        cluster_get = f"{emulator.cluster_url('a1')}?{API}"
        assert (await call(emulator, "GET", cluster_get, token=token))[0] == 200  # not a list
