"""GET /_emulator/posts: every runCommand POST, in arrival order, with its outcome and whether a
command started, so end-to-end tests can tie each POST to its run."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import aiohttp
import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import (
    BucketRules,
    FaultsConfig,
    ScriptedConfig,
    ThrottleRules,
)

from tests.emulator.emulator_harness import (
    API,
    SUB,
    Emulator,
    arm_token,
    call,
    cluster,
    posts,
    running_emulator,
    settled_posts,
    submit,
    wait_done,
)

CLUSTERS = (cluster(), cluster("locked", disable_run_command=True))


def config(**faults: object) -> EmulatorConfig:
    return EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        scripted=ScriptedConfig(logs="ran\n"),
        faults=FaultsConfig(**faults),  # type: ignore[arg-type]
    )


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with running_emulator(config()) as running:
        yield running


def ids(correlation: str) -> dict[str, str]:
    return {
        "x-ms-correlation-request-id": correlation,
        "x-ms-client-request-id": "c-" + correlation,
    }


async def submissions(emulator: Emulator) -> list[dict[str, object]]:
    _, _, body = await call(emulator, "GET", f"{emulator.base_url}/_emulator/submissions")
    return list(body["submissions"])


async def test_accepted_and_refused_posts_in_arrival_order(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, headers, _ = await submit(emulator, token, headers=ids("one"))
    assert status == 202
    status, _, _ = await submit(emulator, token, name="locked", headers=ids("two"))
    assert status == 400
    status, _, _ = await submit(emulator, token, name="missing", headers=ids("three"))
    assert status == 404
    status, _, _ = await submit(emulator, "not-a-token", headers=ids("four"))
    assert status == 401
    # Not runCommand POSTs: none of these is logged.
    await call(emulator, "GET", f"{emulator.cluster_url()}?{API}", token=token)
    await call(emulator, "GET", headers["Location"], token=token)
    await call(emulator, "POST", f"{emulator.cluster_url()}?{API}", token=token)

    records = await settled_posts(emulator, 4)
    assert [r["correlationId"] for r in records] == ["one", "two", "three", "four"]
    accepted, disabled, missing, unauthenticated = records
    (submission,) = await submissions(emulator)
    assert accepted["outcome"] == "accepted" and accepted["status"] == 202
    assert accepted["commandId"] == submission["commandId"]
    assert headers["Location"].split("/commandResults/")[1].startswith(accepted["commandId"])
    assert accepted["commandStarted"] is True and accepted["code"] is None
    assert accepted["clientRequestId"] == "c-one"
    assert accepted["cluster"] == (
        f"/subscriptions/{SUB}/resourceGroups/rg-Demo"
        "/providers/Microsoft.ContainerService/managedClusters/aks1"
    )
    assert accepted["answeredAt"] >= accepted["receivedAt"]
    assert (disabled["outcome"], disabled["status"], disabled["code"]) == (
        "refused",
        400,
        "OperationNotAllowed",
    )
    assert (missing["outcome"], missing["code"]) == ("refused", "ResourceNotFound")
    assert (unauthenticated["outcome"], unauthenticated["status"]) == ("refused", 401)
    assert unauthenticated["code"] == "InvalidAuthenticationToken"
    for refused in (disabled, missing, unauthenticated):
        assert refused["commandId"] is None and refused["commandStarted"] is False


async def test_throttled_posts() -> None:
    bucket = EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        throttle=ThrottleRules(writes=BucketRules(capacity=1, refill_per_second=0.01)),
    )
    with running_emulator(bucket) as emulator:
        token = await arm_token(emulator)
        assert (await submit(emulator, token))[0] == 202
        assert (await submit(emulator, token))[0] == 429
        records = await settled_posts(emulator, 2)
    assert [r["outcome"] for r in records] == ["accepted", "throttled"]
    assert (records[1]["status"], records[1]["code"]) == (429, "TooManyRequests")
    assert records[1]["commandStarted"] is False

    with running_emulator(config(throttle_rate=1.0)) as emulator:
        token = await arm_token(emulator)
        assert (await submit(emulator, token))[0] == 429
        (record,) = await settled_posts(emulator, 1)
    assert record["outcome"] == "throttled" and record["commandStarted"] is False


async def test_injected_server_error_starts_nothing() -> None:
    with running_emulator(config(server_error_rate=1.0)) as emulator:
        token = await arm_token(emulator)
        assert (await submit(emulator, token))[0] == 500
        (record,) = await settled_posts(emulator, 1)
        assert await submissions(emulator) == []
    assert (record["outcome"], record["status"], record["code"]) == (
        "serverError",
        500,
        "InternalServerError",
    )
    assert record["commandStarted"] is False and record["commandId"] is None


async def test_dropped_connection_records_the_command_that_runs() -> None:
    with running_emulator(config(drop_connection_after_submit_rate=1.0)) as emulator:
        token = await arm_token(emulator)
        with pytest.raises(aiohttp.ClientError):
            await submit(emulator, token, headers=ids("dropped"))
        (record,) = await settled_posts(emulator, 1)
        (submission,) = await submissions(emulator)
        location = f"{emulator.cluster_url()}/commandResults/{record['commandId']}?{API}"
        result = await wait_done(emulator, token, location)
    assert record["outcome"] == "dropped" and record["correlationId"] == "dropped"
    assert record["commandStarted"] is True
    assert record["commandId"] == submission["commandId"]
    assert record["status"] is None
    assert result["properties"]["logs"] == "ran\n"


async def give_up_early(emulator: Emulator, token: str, correlation: str) -> None:
    """A client whose read timeout is shorter than the emulator's hold."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.post(
                f"{emulator.cluster_url()}/runCommand?{API}",
                json={"command": "echo hi"},
                headers={"Authorization": f"Bearer {token}", **ids(correlation)},
            )


async def test_client_gone_during_the_hold_still_runs_by_default() -> None:
    with running_emulator(config(submit_latency_seconds=1.0)) as emulator:
        token = await arm_token(emulator)
        await give_up_early(emulator, token, "impatient")
        (pending,) = await posts(emulator)
        assert pending["outcome"] == "pending" and pending["answeredAt"] is None
        (record,) = await settled_posts(emulator, 1)
        (submission,) = await submissions(emulator)
    assert record["outcome"] == "aborted"
    assert record["commandStarted"] is True
    assert record["commandId"] == submission["commandId"]
    # The answer it would have had.
    assert record["status"] == 202


async def test_client_gone_during_the_hold_is_abandoned_when_asked() -> None:
    faults = config(submit_latency_seconds=1.0, run_abandoned_submits=False)
    with running_emulator(faults) as emulator:
        token = await arm_token(emulator)
        await give_up_early(emulator, token, "impatient")
        (record,) = await settled_posts(emulator, 1)
        assert await submissions(emulator) == []
    assert record["outcome"] == "aborted"
    assert record["commandStarted"] is False and record["commandId"] is None
    assert record["status"] is None


async def test_posts_can_be_cleared_and_submissions_still_list(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    correlation = str(uuid.uuid4())
    assert (await submit(emulator, token, headers=ids(correlation)))[0] == 202
    await settled_posts(emulator, 1)
    _, _, removed = await call(emulator, "DELETE", f"{emulator.base_url}/_emulator/posts")
    assert removed == {"removed": 1}
    assert await posts(emulator) == []
    (submission,) = await submissions(emulator)
    assert submission["correlationId"] == correlation
    assert re.fullmatch(r"[0-9a-f]{32}", str(submission["commandId"]))
