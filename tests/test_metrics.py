"""The operator's metrics: labels for the target cluster and the switch that empties them, what
the ARM client reports, and the gauges computed at scrape."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from controller import metrics
from controller.arm import ArmClient, ArmError, ArmThrottle, CommandHandle
from tests.arm.arm_doubles import (
    CLUSTER,
    COMMAND_ID,
    LOCATION,
    SUBSCRIPTION,
    FakeClock,
    ScriptedArm,
    accepted,
    arm_error,
    command_state,
    make_client,
)

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-blue"
)


@pytest.fixture(autouse=True)
def labels_back_on() -> Iterator[None]:
    yield
    metrics.label_clusters(True)


def test_target_labels_come_from_the_cluster_id() -> None:
    assert metrics.target(CLUSTER_ID) == (
        "00000000-0000-0000-0000-000000000001",
        "rg-prod",
        "aks-blue",
    )
    assert metrics.target(None) == ("", "", "")


def test_turned_off_the_labels_are_empty_so_series_do_not_multiply() -> None:
    metrics.label_clusters(False)
    assert metrics.target(CLUSTER_ID) == ("", "", "")


# What the ARM client reports, through the observer the operator hands it ------------------


class RecordingObserver:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.waits: list[tuple[str, str, float]] = []
        self.refusals: list[tuple[str, str]] = []

    def request(self, operation: str, status: str, seconds: float) -> None:
        assert seconds >= 0
        self.requests.append((operation, status))

    def budget_wait(self, subscription_id: str, bucket: str, seconds: float) -> None:
        self.waits.append((subscription_id, bucket, seconds))

    def throttled(self, subscription_id: str, bucket: str) -> None:
        self.refusals.append((subscription_id, bucket))


def _client_with(observer: RecordingObserver, *steps: Any) -> tuple[ArmClient, FakeClock]:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep, observer=observer)
    return make_client(ScriptedArm(*steps), throttle=throttle), clock


async def test_every_request_is_reported_with_its_operation_and_status() -> None:
    observer = RecordingObserver()
    client, _ = _client_with(
        observer,
        accepted(),
        command_state(202, "Running"),
        command_state(200, "Succeeded", exitCode=0, logs="ok"),
    )
    async with client:
        handle = await client.send_submission(
            await client.prepare_submission(
                CLUSTER, "true", None, cluster_token="never", correlation_id="c"
            )
        )
        await client.poll(handle)
        await client.poll(handle)
    assert observer.requests == [
        ("runCommand", "202"),
        ("commandResult", "202"),
        ("commandResult", "200"),
    ]


async def test_a_request_without_an_answer_is_reported_as_an_error() -> None:
    observer = RecordingObserver()
    client, _ = _client_with(observer, httpx.ReadTimeout)
    async with client:
        with pytest.raises(ArmError):
            await client.send_submission(
                await client.prepare_submission(
                    CLUSTER, "true", None, cluster_token="never", correlation_id="c"
                )
            )
    assert observer.requests == [("runCommand", "error")]


async def test_429s_are_counted_by_the_bucket_that_refused() -> None:
    observer = RecordingObserver()
    client, _ = _client_with(
        observer,
        arm_error(429, "Throttled", "the resource provider says slow down", **{"Retry-After": "3"}),
        arm_error(429, "TooManyRequests", "ARM says slow down", **{"Retry-After": "2"}),
        command_state(200, "Succeeded", exitCode=0, logs=""),
    )
    async with client:
        await client.poll(CommandHandle(COMMAND_ID, LOCATION, "c"))
    assert observer.refusals == [(SUBSCRIPTION, "provider"), (SUBSCRIPTION, "read")]
    # The retries after them waited for the blocked buckets, and said so.
    waited = {bucket: seconds for _, bucket, seconds in observer.waits if seconds > 0}
    assert waited.get("provider", 0) >= 3


def test_bucket_levels_are_what_the_gauge_reads() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    throttle.observe(SUBSCRIPTION, "write", 7)
    throttle.provider_bucket(SUBSCRIPTION)
    levels = {(sub, bucket): tokens for sub, bucket, tokens in throttle.levels()}
    assert levels == {(SUBSCRIPTION, "write"): 7.0, (SUBSCRIPTION, "provider"): 58.0}


# Gauges read from the runtime and the fleet at scrape ----------------------------------------


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_runtime_gauges_are_computed_when_scraped() -> None:
    states = ["Running", "Running", "Succeeded"]
    ages = [3.0, 250.0]
    metrics.observe_runtime(
        metrics.RuntimeView(
            states=lambda: states,
            claim_ages=lambda: ages,
            in_flight=lambda: 1,
            claim_lease_seconds=180.0,
        )
    )
    assert _sample("aks_runcommand_runcommands", state="Running") == 2
    assert _sample("aks_runcommand_runcommands", state="Succeeded") == 1
    assert _sample("aks_runcommand_claims_held") == 2
    assert _sample("aks_runcommand_oldest_claim_age_seconds") == 250.0
    assert _sample("aks_runcommand_claim_lease_seconds") == 180.0
    assert _sample("aks_runcommand_submissions_in_flight") == 1
    states.append("Failed")
    ages.clear()
    assert _sample("aks_runcommand_runcommands", state="Failed") == 1
    assert _sample("aks_runcommand_oldest_claim_age_seconds") == 0.0


def test_set_gauges_sum_over_sets_without_naming_them() -> None:
    rounds = [
        ("Progressing", Counter({"Running": 2, "Pending": 3})),
        ("Succeeded", Counter({"Succeeded": 4})),
        ("Progressing", Counter({"Succeeded": 1})),
    ]
    metrics.observe_sets(lambda: iter(rounds))
    assert _sample("aks_runcommand_sets", state="Progressing") == 2
    assert _sample("aks_runcommand_set_clusters", state="Succeeded") == 5
    assert _sample("aks_runcommand_set_clusters", state="Pending") == 3


def test_no_series_is_labelled_with_an_object_name_or_command_id() -> None:
    forbidden = {"name", "namespace", "command_id", "commandId", "uid", "object"}
    for family in REGISTRY.collect():
        for sample in family.samples:
            assert not forbidden & set(sample.labels), (family.name, sample.labels)
