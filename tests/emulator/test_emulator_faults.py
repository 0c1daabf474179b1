"""Fault knobs switched while the emulator runs (GET/POST /_emulator/faults), and the latency
knobs that hold only submissions or only polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aks_arm_emulator import EmulatorConfig, create_app
from aks_arm_emulator.config import (
    ConfigError,
    FaultsConfig,
    ScriptedConfig,
    config_from_mapping,
)

from tests.emulator.emulator_harness import (
    API,
    Emulator,
    arm_token,
    call,
    cluster,
    error_code,
    posts,
    running_emulator,
    submit,
)
from tests.helpers import SkippingLoop


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=(cluster(),),
        mode="scripted",
        scripted=ScriptedConfig(duration_seconds=30),
        faults=FaultsConfig(pod_start_timeout_seconds=12.5),
    )
    with running_emulator(config) as running:
        yield running


async def set_faults(emulator: Emulator, body: Any) -> tuple[int, Any]:
    status, _, answer = await call(
        emulator, "POST", f"{emulator.base_url}/_emulator/faults", json_body=body
    )
    return status, answer


async def get_faults(emulator: Emulator) -> dict[str, Any]:
    _, _, answer = await call(emulator, "GET", f"{emulator.base_url}/_emulator/faults")
    return dict(answer["faults"])


async def test_get_shows_every_knob_in_yaml_spelling(emulator: Emulator) -> None:
    assert await get_faults(emulator) == {
        "seed": 0,
        "serverErrorRate": 0.0,
        "throttleRate": 0.0,
        "latencySeconds": 0.0,
        "submitLatencySeconds": 0.0,
        "pollLatencySeconds": 0.0,
        "dropConnectionAfterSubmitRate": 0.0,
        "runAbandonedSubmits": True,
        "podNeverStarts": False,
        "podStartTimeoutSeconds": 12.5,
    }


async def test_a_change_applies_to_the_next_request_and_keeps_other_knobs(
    emulator: Emulator,
) -> None:
    token = await arm_token(emulator)
    url = f"{emulator.cluster_url()}?{API}"
    assert (await call(emulator, "GET", url, token=token))[0] == 200

    status, answer = await set_faults(emulator, {"serverErrorRate": 1.0})
    assert status == 200
    assert answer["faults"]["serverErrorRate"] == 1.0
    assert answer["faults"]["podStartTimeoutSeconds"] == 12.5  # untouched
    status, _, body = await call(emulator, "GET", url, token=token)
    assert status == 500 and error_code(body) == "InternalServerError"

    status, answer = await set_faults(emulator, {"serverErrorRate": 0, "throttleRate": 1})
    assert status == 200
    status, headers, body = await call(emulator, "GET", url, token=token)
    assert status == 429 and headers["Retry-After"] == "1"

    await set_faults(emulator, {"throttleRate": 0})
    assert (await call(emulator, "GET", url, token=token))[0] == 200


async def test_pod_never_starts_can_be_switched_on_for_later_submissions(
    emulator: Emulator,
) -> None:
    token = await arm_token(emulator)
    await set_faults(emulator, {"podNeverStarts": True, "podStartTimeoutSeconds": 0.2})
    status, headers, _ = await submit(emulator, token)
    assert status == 202
    for _ in range(100):
        _, _, body = await call(emulator, "GET", headers["Location"], token=token)
        if body["properties"]["provisioningState"] != "Running":
            break
        await asyncio.sleep(0.05)
    # Scripted commands here take 30 s; only the fault ends this one so soon.
    assert body["properties"]["reason"] == "KubernetesOperationError"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"serverErrorRate": 1.5}, "faults.serverErrorRate must be between 0 and 1"),
        ({"submitLatencySeconds": -1}, "faults.submitLatencySeconds must be >= 0"),
        ({"throttleRate": "often"}, "faults.throttleRate must be a number"),
        ({"podNeverStarts": "yes"}, "faults.podNeverStarts must be true or false"),
        ({"seed": 1.5}, "faults.seed must be an integer"),
        ({"latencySecs": 1}, "unknown key(s) in faults: latencySecs"),
        ([1, 2], "faults must be a mapping"),
    ],
)
async def test_bad_input_is_400_and_changes_nothing(
    emulator: Emulator, body: Any, message: str
) -> None:
    before = await get_faults(emulator)
    status, answer = await set_faults(emulator, body)
    assert status == 400
    assert error_code(answer) == "InvalidFaults"
    assert answer["error"]["message"] == message
    assert await get_faults(emulator) == before


async def test_a_body_that_is_not_json_is_400(emulator: Emulator) -> None:
    status, _, answer = await call(
        emulator, "POST", f"{emulator.base_url}/_emulator/faults", data=b"serverErrorRate=1"
    )
    assert status == 400 and error_code(answer) == "InvalidFaults"


async def statuses(emulator: Emulator, token: str, count: int) -> list[int]:
    url = f"{emulator.cluster_url()}?{API}"
    return [(await call(emulator, "GET", url, token=token))[0] for _ in range(count)]


async def test_giving_the_seed_restarts_the_sequence(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    await set_faults(emulator, {"seed": 5, "serverErrorRate": 0.5})
    first = await statuses(emulator, token, 12)
    await set_faults(emulator, {"seed": 5})
    assert await statuses(emulator, token, 12) == first
    assert set(first) == {200, 500}


async def timed(emulator: Emulator, method: str, url: str, token: str, **kw: Any) -> float:
    started = time.monotonic()
    status, _, _ = await call(emulator, method, url, token=token, **kw)
    assert status in (200, 202)
    return time.monotonic() - started


async def test_submit_latency_holds_only_run_command_posts(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, headers, _ = await submit(emulator, token)
    assert status == 202
    await set_faults(emulator, {"submitLatencySeconds": 0.6})
    post = f"{emulator.cluster_url()}/runCommand?{API}"
    assert await timed(emulator, "POST", post, token, json_body={"command": "true"}) >= 0.6
    assert await timed(emulator, "GET", headers["Location"], token) < 0.5
    assert await timed(emulator, "GET", f"{emulator.cluster_url()}?{API}", token) < 0.5


async def test_poll_latency_holds_only_command_results(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    await set_faults(emulator, {"pollLatencySeconds": 0.6})
    status, headers, _ = await submit(emulator, token)
    assert status == 202
    assert await timed(emulator, "GET", headers["Location"], token) >= 0.6
    assert await timed(emulator, "GET", f"{emulator.cluster_url()}?{API}", token) < 0.5


@pytest.mark.parametrize("read_timeout", [90, 30])
def test_a_submit_held_45_seconds_succeeds_for_a_client_that_waits_90(read_timeout: int) -> None:
    """Nothing in the emulator (or aiohttp's server) may cut a slow answer short. The emulator
    and the client share a loop whose clock skips the 45 s hold at once: every timer armed on
    it, the client's read timeout and any the server might arm, sees them pass, as the control
    (a client that waits 30 s, and times out) shows."""
    loop = SkippingLoop()
    config = EmulatorConfig(
        clusters=(cluster(),),
        mode="scripted",
        faults=FaultsConfig(submit_latency_seconds=45),
    )

    async def held_submit() -> tuple[int, str, float] | None:
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            emulator = Emulator(f"http://127.0.0.1:{runner.addresses[0][1]}", None)
            token = await arm_token(emulator)
            timeout = aiohttp.ClientTimeout(total=None, sock_read=read_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                started = loop.time()
                answer = asyncio.ensure_future(
                    session.post(
                        f"{emulator.cluster_url()}/runCommand?{API}",
                        json={"command": "true"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                )
                # The emulator holds the POST now (its log is read over HTTP: no event to await).
                while not [p for p in await posts(emulator) if p["outcome"] == "pending"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                loop.skipped += 45
                try:
                    async with await answer as response:
                        return response.status, response.headers["Location"], loop.time() - started
                except TimeoutError:
                    return None
        finally:
            await runner.cleanup()

    try:
        answered = loop.run_until_complete(held_submit())
    finally:
        loop.close()
    if read_timeout < 45:
        assert answered is None, "the control's read timeout did not see the hold"
        return
    assert answered is not None, "the client timed out"
    status, location, waited = answered
    assert status == 202
    assert "/commandResults/" in location
    assert waited >= 45


def test_yaml_knobs_use_the_same_names() -> None:
    config = config_from_mapping(
        {
            "mode": "scripted",
            "faults": {
                "submitLatencySeconds": 2,
                "pollLatencySeconds": 0.5,
                "runAbandonedSubmits": False,
            },
        }
    )
    assert config.faults.submit_latency_seconds == 2.0
    assert config.faults.poll_latency_seconds == 0.5
    assert config.faults.run_abandoned_submits is False
    with pytest.raises(ConfigError, match=r"faults\.pollLatencySeconds must be >= 0"):
        config_from_mapping({"faults": {"pollLatencySeconds": -0.1}})
