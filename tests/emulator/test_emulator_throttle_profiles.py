"""Throttle profiles: `arm` (ARM's buckets) and `aks` (the resource provider's on top)."""

from __future__ import annotations

from typing import Any

import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import (
    BucketRules,
    ConfigError,
    ProviderLimits,
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
    submit,
)

READS = "x-ms-ratelimit-remaining-subscription-reads"
WRITES = "x-ms-ratelimit-remaining-subscription-writes"
TIGHT = BucketRules(capacity=3, refill_per_second=0.2)


def _config(profile: str, **throttle: Any) -> EmulatorConfig:
    return EmulatorConfig(
        clusters=(cluster(), cluster("aks2")),
        mode="scripted",
        scripted=ScriptedConfig(duration_seconds=30),
        throttle=ThrottleRules(profile=profile, **throttle),
    )


def _result_url(emulator: Emulator, headers: dict[str, str]) -> str:
    location = headers["Location"]
    return location if location.startswith("http") else f"{emulator.base_url}{location}"


async def test_aks_submits_and_polls_share_the_other_apis_bucket() -> None:
    config = _config("aks", provider=ProviderLimits(other=TIGHT))
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        status, accepted, _ = await submit(emulator, token)
        assert status == 202
        assert (await submit(emulator, token))[0] == 202
        result_url = _result_url(emulator, accepted)
        status, headers, _ = await call(emulator, "GET", result_url, token=token)
        assert status == 202  # the third token: still running

        status, headers, body = await call(emulator, "GET", result_url, token=token)
        assert status == 429 and error_code(body) == "Throttled"
        assert 1 <= int(headers["Retry-After"]) <= 5
        # ARM let the request through, so its header tells ARM's count, not zero.
        assert 0 < int(headers[READS]) < 250

        status, headers, body = await submit(emulator, token)
        assert status == 429 and error_code(body) == "Throttled"
        assert 0 < int(headers[WRITES]) < 200
        _, _, listing = await call(emulator, "GET", f"{emulator.base_url}/_emulator/submissions")
        assert len(listing["submissions"]) == 2

        # GET ManagedCluster has its own bucket: it still answers.
        status, _, _ = await call(emulator, "GET", f"{emulator.cluster_url()}?{API}", token=token)
        assert status == 200


async def test_aks_get_cluster_bucket_is_per_cluster() -> None:
    config = _config("aks", provider=ProviderLimits(get_cluster=BucketRules(1, 0.1)))
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        first = f"{emulator.cluster_url()}?{API}"
        assert (await call(emulator, "GET", first, token=token))[0] == 200
        status, _, body = await call(emulator, "GET", first, token=token)
        assert status == 429 and error_code(body) == "Throttled"
        other = f"{emulator.cluster_url('aks2')}?{API}"
        assert (await call(emulator, "GET", other, token=token))[0] == 200


async def test_aks_list_buckets_per_resource_group_and_subscription() -> None:
    limits = ProviderLimits(
        list_per_subscription=BucketRules(2, 0.1), list_per_resource_group=BucketRules(1, 0.1)
    )
    with running_emulator(_config("aks", provider=limits)) as emulator:
        token = await arm_token(emulator)
        providers = "providers/Microsoft.ContainerService/managedClusters"
        in_group = f"{emulator.base_url}/subscriptions/{SUB}/resourceGroups/rg-Demo/{providers}"
        assert (await call(emulator, "GET", f"{in_group}?{API}", token=token))[0] == 200
        status, _, body = await call(emulator, "GET", f"{in_group}?{API}", token=token)
        assert status == 429 and error_code(body) == "Throttled"
        everywhere = f"{emulator.base_url}/subscriptions/{SUB}/{providers}?{API}"
        assert (await call(emulator, "GET", everywhere, token=token))[0] == 200
        status, _, body = await call(emulator, "GET", everywhere, token=token)
        assert status == 429 and error_code(body) == "Throttled"


async def test_aks_keeps_arm_buckets_whichever_empties_first() -> None:
    config = _config(
        "aks", writes=BucketRules(capacity=1, refill_per_second=0.1), provider=ProviderLimits()
    )
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        assert (await submit(emulator, token))[0] == 202
        status, headers, body = await submit(emulator, token)
        assert status == 429 and error_code(body) == "TooManyRequests"
        assert headers[WRITES] == "0" and "Retry-After" in headers


async def test_arm_profile_ignores_the_provider_limits() -> None:
    config = _config("arm", provider=ProviderLimits(other=TIGHT))
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        statuses = [(await submit(emulator, token))[0] for _ in range(5)]
        assert statuses == [202] * 5


def test_profile_is_read_from_the_config_and_checked() -> None:
    mapping: dict[str, Any] = {"mode": "scripted", "clusters": []}
    assert config_from_mapping(mapping).throttle.profile == "arm"
    aks = config_from_mapping({**mapping, "throttle": {"profile": "aks"}})
    assert aks.throttle.profile == "aks"
    with pytest.raises(ConfigError, match=r"throttle\.profile must be arm or aks"):
        config_from_mapping({**mapping, "throttle": {"profile": "azure"}})
