"""The ARM wire contract of the emulator, over real HTTP on a loopback port."""

from __future__ import annotations

import base64
import io
import logging
import re
import time
import uuid
import zipfile
from collections.abc import Iterator

import aiohttp
import jwt
import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import (
    BucketRules,
    FaultsConfig,
    ScriptedConfig,
    ThrottleRules,
)
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulator.emulator_harness import (
    AKS_APP,
    API,
    SUB,
    TENANT,
    Emulator,
    arm_token,
    call,
    cluster,
    error_code,
    fetch_token,
    running_emulator,
    submit,
    wait_done,
)

CLUSTERS = (
    cluster(),
    cluster("aad1", aad_managed=True),
    cluster("locked", disable_run_command=True),
    cluster("sleeping", power_state="Stopped"),
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        scripted=ScriptedConfig(exit_code=0, logs="done\n", duration_seconds=0.4),
        max_request_bytes=4096,
    )
    with running_emulator(config) as running:
        yield running


# --- the happy path -----------------------------------------------------------------------------


async def test_submit_then_poll_running_then_result(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, headers, body = await submit(emulator, token)
    assert status == 202 and body is None
    assert "Retry-After" not in headers
    location = headers["Location"]
    match = re.fullmatch(
        re.escape(emulator.base_url)
        + rf"/subscriptions/{SUB}/resourcegroups/rg-Demo/providers/Microsoft\.ContainerService"
        r"/managedClusters/aks1/commandResults/([0-9a-f]{32})\?api-version=2024-09-01",
        location,
    )
    assert match is not None, location

    status, headers, body = await call(emulator, "GET", location, token=token)
    assert status == 202
    assert "Location" not in headers and "Retry-After" not in headers
    assert body["id"] == match.group(1)
    assert body["properties"]["provisioningState"] == "Running"
    assert "startedAt" in body["properties"] and "exitCode" not in body["properties"]

    result = await wait_done(emulator, token, location)
    assert result["properties"]["provisioningState"] == "Succeeded"
    assert result["properties"]["exitCode"] == 0
    assert result["properties"]["logs"] == "done\n"
    assert result["properties"]["finishedAt"] >= result["properties"]["startedAt"]


async def test_stats_count_arm_answers_by_method_and_status(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    before = await _stats(emulator)
    status, headers, _ = await submit(emulator, token)
    assert status == 202
    await wait_done(emulator, token, headers["Location"])
    missing = emulator.cluster_url("no-such-cluster") + "?api-version=2024-09-01"
    await call(emulator, "GET", missing, token=token)
    after = await _stats(emulator)
    assert after.get("POST 202", 0) - before.get("POST 202", 0) == 1
    assert after.get("GET 200", 0) - before.get("GET 200", 0) == 1
    assert after.get("GET 404", 0) - before.get("GET 404", 0) == 1


async def _stats(emulator: Emulator) -> dict[str, int]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emulator.base_url}/_emulator/stats", ssl=emulator.ssl_context()) as response,
    ):
        return dict((await response.json())["requests"])


async def test_resource_group_is_case_insensitive(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url(rg='RG-DEMO')}?{API}", token=token
    )
    assert status == 200
    assert body["name"] == "aks1"
    assert body["properties"]["provisioningState"] == "Succeeded"
    assert body["properties"]["apiServerAccessProfile"]["disableRunCommand"] is False


@pytest.mark.parametrize(
    "version", ["2024-09-01", "2025-10-01", "2026-08-01", "2025-09-02-preview", "2021-05-01"]
)
async def test_current_api_versions_accepted(emulator: Emulator, version: str) -> None:
    token = await arm_token(emulator)
    status, _, _ = await call(
        emulator, "GET", f"{emulator.cluster_url()}?api-version={version}", token=token
    )
    assert status == 200


# --- every error row --------------------------------------------------------------------------


async def test_no_bearer_is_401(emulator: Emulator) -> None:
    status, headers, body = await submit(emulator, token=None)  # type: ignore[arg-type]
    assert status == 401
    assert error_code(body) == "AuthenticationFailed"
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url()}?{API}", headers={"Authorization": "Basic x"}
    )
    assert status == 401 and error_code(body) == "AuthenticationFailed"


async def test_wrong_audience_is_401(emulator: Emulator) -> None:
    token = await fetch_token(emulator, "https://management.azure.com")
    status, _, body = await submit(emulator, token)
    assert status == 401
    assert error_code(body) == "InvalidAuthenticationTokenAudience"


async def test_token_signed_by_someone_else_is_401(emulator: Emulator) -> None:
    forged = jwt.encode(
        {"aud": emulator.base_url, "tid": TENANT, "exp": int(time.time()) + 600},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
    )
    status, _, body = await submit(emulator, forged)
    assert status == 401 and error_code(body) == "InvalidAuthenticationToken"


async def test_unknown_cluster_resource_group_and_subscription_are_404(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await submit(emulator, token, name="nope")
    assert status == 404 and error_code(body) == "ResourceNotFound"
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url(rg='other')}?{API}", token=token
    )
    assert status == 404 and error_code(body) == "ResourceGroupNotFound"
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url(sub=str(uuid.uuid4()))}?{API}", token=token
    )
    assert status == 404 and error_code(body) == "SubscriptionNotFound"
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url()}/commandResults/{'0' * 32}?{API}", token=token
    )
    assert status == 404 and error_code(body) == "ResourceNotFound"


async def test_aad_cluster_needs_a_cluster_token(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await submit(emulator, token, name="aad1")
    assert status == 400 and error_code(body) == "MissingAADClusterToken"

    # An ARM token is not a token for the AKS AAD server application.
    status, _, body = await submit(
        emulator, token, name="aad1", body={"command": "true", "clusterToken": token}
    )
    assert status == 400 and error_code(body) == "InvalidAADClusterToken"
    assert body["error"]["target"] == "clusterToken"

    cluster_token = await fetch_token(emulator, AKS_APP)
    status, _, _ = await submit(
        emulator, token, name="aad1", body={"command": "true", "clusterToken": cluster_token}
    )
    assert status == 202


async def test_body_above_max_request_bytes_is_413(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    small = b'{"command": "' + b"x" * (4096 - 15) + b'"}'
    assert len(small) == 4096
    status, _, _ = await call(
        emulator,
        "POST",
        f"{emulator.cluster_url()}/runCommand?{API}",
        token=token,
        data=small,
        headers={"Content-Type": "application/json"},
    )
    assert status == 202
    big = b'{"command": "' + b"x" * 4096 + b'"}'
    status, _, body = await call(
        emulator,
        "POST",
        f"{emulator.cluster_url()}/runCommand?{API}",
        token=token,
        data=big,
        headers={"Content-Type": "application/json"},
    )
    assert status == 413 and error_code(body) == "RequestEntityTooLarge"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("api-version=banana", "InvalidApiVersionParameter"),
        ("api-version=2024-13-01", "InvalidApiVersionParameter"),
        ("api-version=2024-09-01-beta", "InvalidApiVersionParameter"),
        ("api-version=2017-08-31", "InvalidApiVersionParameter"),
        ("api-version=2099-01-01", "InvalidApiVersionParameter"),
        ("other=1", "MissingApiVersionParameter"),
    ],
)
async def test_bad_api_version_is_400(emulator: Emulator, query: str, code: str) -> None:
    token = await arm_token(emulator)
    status, _, body = await call(
        emulator,
        "POST",
        f"{emulator.cluster_url()}/runCommand?{query}",
        token=token,
        json_body={"command": "true"},
    )
    assert status == 400 and error_code(body) == code


async def test_malformed_subscription_is_400(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url(sub='not-a-uuid')}?{API}", token=token
    )
    assert status == 400 and error_code(body) == "InvalidSubscriptionId"


def _zip_with(name: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, b"x")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("body", "code", "target"),
    [
        (b"not json", "BadRequest", "requestPayload"),
        (b"[1, 2]", "BadRequest", "requestPayload"),
        (b"{}", "InvalidParameter", "command"),
        (b'{"command": "   "}', "InvalidParameter", "command"),
        (b'{"command": 7}', "InvalidParameter", "command"),
        (b'{"command": "true", "context": "%%%not base64"}', "InvalidParameter", "context"),
        (
            b'{"command": "true", "context": "' + base64.b64encode(b"plain text") + b'"}',
            "InvalidParameter",
            "context",
        ),
        (
            b'{"command": "true", "context": "' + _zip_with("../escape.yaml").encode() + b'"}',
            "InvalidParameter",
            "context",
        ),
        (
            b'{"command": "true", "context": "' + _zip_with("/etc/abs.yaml").encode() + b'"}',
            "InvalidParameter",
            "context",
        ),
    ],
)
async def test_bad_body_is_400(emulator: Emulator, body: bytes, code: str, target: str) -> None:
    token = await arm_token(emulator)
    status, _, answer = await call(
        emulator,
        "POST",
        f"{emulator.cluster_url()}/runCommand?{API}",
        token=token,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert error_code(answer) == code
    assert answer["error"]["target"] == target


async def test_disabled_and_stopped_clusters_refuse(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await submit(emulator, token, name="locked")
    assert status == 400 and error_code(body) == "OperationNotAllowed"
    assert body["error"]["target"] == "properties.apiServerAccessProfile.disableRunCommand"
    status, _, body = await submit(emulator, token, name="sleeping")
    assert status == 400 and error_code(body) == "OperationNotAllowed"
    assert body["error"]["target"] == "properties.powerState"
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url('sleeping')}?{API}", token=token
    )
    assert status == 200 and body["properties"]["powerState"]["code"] == "Stopped"


# --- tracing headers, throttling, introspection -----------------------------------------------


async def test_request_ids_are_echoed_and_generated(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    client_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    status, headers, _ = await submit(
        emulator,
        token,
        headers={"x-ms-client-request-id": client_id, "x-ms-correlation-request-id": correlation},
    )
    assert status == 202
    assert headers["x-ms-client-request-id"] == client_id
    assert headers["x-ms-correlation-request-id"] == correlation
    assert uuid.UUID(headers["x-ms-request-id"])
    assert int(headers["x-ms-ratelimit-remaining-subscription-writes"]) < 200

    status, headers, _ = await call(emulator, "GET", f"{emulator.cluster_url()}?{API}", token=token)
    assert "x-ms-client-request-id" not in headers
    assert uuid.UUID(headers["x-ms-correlation-request-id"]) != uuid.UUID(correlation)
    assert int(headers["x-ms-ratelimit-remaining-subscription-reads"]) < 250

    _, _, listing = await call(emulator, "GET", f"{emulator.base_url}/_emulator/submissions")
    mine = [s for s in listing["submissions"] if s["correlationId"] == correlation]
    assert len(mine) == 1
    assert mine[0]["clientRequestId"] == client_id
    assert mine[0]["command"] == "echo hi"
    assert mine[0]["clusterId"].endswith("/managedClusters/aks1")
    assert re.fullmatch(r"[0-9a-f]{32}", mine[0]["commandId"])


async def test_introspection_never_shows_the_cluster_token_and_can_be_reset() -> None:
    config = EmulatorConfig(clusters=CLUSTERS, mode="scripted")
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        cluster_token = await fetch_token(emulator, AKS_APP)
        await submit(
            emulator, token, name="aad1", body={"command": "ls", "clusterToken": cluster_token}
        )
        await submit(emulator, token, body={"command": "pwd"})
        async with aiohttp.ClientSession() as session:
            url = f"{emulator.base_url}/_emulator/submissions"
            async with session.get(url) as response:
                text = await response.text()
                listing = await response.json()
            assert cluster_token not in text
            assert [s["clusterTokenSent"] for s in listing["submissions"]] == [True, False]
            async with session.delete(url) as response:
                assert (await response.json())["removed"] == 2
            async with session.get(url) as response:
                assert (await response.json())["submissions"] == []


async def test_exhausted_bucket_answers_429_with_retry_after() -> None:
    config = EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        throttle=ThrottleRules(
            reads=BucketRules(capacity=2, refill_per_second=0.25),
            writes=BucketRules(capacity=1, refill_per_second=0.25),
        ),
    )
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        url = f"{emulator.cluster_url()}?{API}"
        remaining = []
        for _ in range(2):
            status, headers, _ = await call(emulator, "GET", url, token=token)
            assert status == 200
            remaining.append(int(headers["x-ms-ratelimit-remaining-subscription-reads"]))
        assert remaining == [1, 0]
        status, headers, body = await call(emulator, "GET", url, token=token)
        assert status == 429 and error_code(body) == "TooManyRequests"
        assert 1 <= int(headers["Retry-After"]) <= 4
        assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"

        # Writes have their own bucket.
        status, headers, _ = await submit(emulator, token)
        assert status == 202
        assert headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
        status, headers, _ = await submit(emulator, token)
        assert status == 429 and "Retry-After" in headers
        _, _, listing = await call(emulator, "GET", f"{emulator.base_url}/_emulator/submissions")
        assert len(listing["submissions"]) == 1


async def test_lowercase_states_switch() -> None:
    config = EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        lowercase_states=True,
        retry_after_seconds=3,
        scripted=ScriptedConfig(duration_seconds=0.2),
    )
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        status, headers, _ = await submit(emulator, token)
        assert status == 202 and headers["Retry-After"] == "3"
        _, _, running = await call(emulator, "GET", headers["Location"], token=token)
        assert running["properties"]["provisioningState"] == "running"
        done = await wait_done(emulator, token, headers["Location"])
        assert done["properties"]["provisioningState"] == "succeeded"


# --- fault knobs --------------------------------------------------------------------------------


async def _statuses(faults: FaultsConfig, count: int) -> list[int]:
    config = EmulatorConfig(clusters=CLUSTERS, mode="scripted", faults=faults)
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        statuses = []
        for _ in range(count):
            status, _, body = await call(
                emulator, "GET", f"{emulator.cluster_url()}?{API}", token=token
            )
            if status == 500:
                assert error_code(body) == "InternalServerError"
            if status == 429:
                assert error_code(body) == "TooManyRequests"
            statuses.append(status)
        return statuses


async def test_server_error_and_throttle_rates_are_seeded() -> None:
    faults = FaultsConfig(seed=7, server_error_rate=0.4, throttle_rate=0.2)
    first = await _statuses(faults, 30)
    second = await _statuses(faults, 30)
    assert first == second
    assert {200, 429, 500} <= set(first)
    other_seed = await _statuses(FaultsConfig(seed=8, server_error_rate=0.4, throttle_rate=0.2), 30)
    assert other_seed != first
    assert set(await _statuses(FaultsConfig(server_error_rate=1.0), 3)) == {500}


async def test_added_latency() -> None:
    config = EmulatorConfig(
        clusters=CLUSTERS, mode="scripted", faults=FaultsConfig(latency_seconds=0.3)
    )
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        started = time.monotonic()
        status, _, _ = await call(emulator, "GET", f"{emulator.cluster_url()}?{API}", token=token)
        assert status == 200
        assert time.monotonic() - started >= 0.3


async def test_connection_dropped_after_submit_is_still_recorded() -> None:
    config = EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        scripted=ScriptedConfig(logs="ran anyway\n"),
        faults=FaultsConfig(drop_connection_after_submit_rate=1.0),
    )
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        correlation = str(uuid.uuid4())
        with pytest.raises(aiohttp.ClientError):
            await submit(emulator, token, headers={"x-ms-correlation-request-id": correlation})
        _, _, listing = await call(emulator, "GET", f"{emulator.base_url}/_emulator/submissions")
        assert [s["correlationId"] for s in listing["submissions"]] == [correlation]
        command_id = listing["submissions"][0]["commandId"]
        location = f"{emulator.cluster_url()}/commandResults/{command_id}?{API}"
        result = await wait_done(emulator, token, location)
        assert result["properties"]["logs"] == "ran anyway\n"


async def test_pod_never_starts_ends_failed_with_reason() -> None:
    config = EmulatorConfig(
        clusters=CLUSTERS,
        mode="scripted",
        faults=FaultsConfig(pod_never_starts=True, pod_start_timeout_seconds=0.3),
    )
    with running_emulator(config) as emulator:
        token = await arm_token(emulator)
        status, headers, _ = await submit(emulator, token)
        assert status == 202
        status, _, running = await call(emulator, "GET", headers["Location"], token=token)
        assert status == 202 and running["properties"]["provisioningState"] == "Running"
        result = await wait_done(emulator, token, headers["Location"])
        assert result["properties"]["provisioningState"] == "Failed"
        assert result["properties"]["reason"] == "KubernetesOperationError"
        assert "exitCode" not in result["properties"]


# --- no leaks --------------------------------------------------------------------------------


async def test_no_secret_or_token_in_any_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = EmulatorConfig(clusters=CLUSTERS, mode="scripted")
    with running_emulator(config) as emulator:
        secret = "very-secret-" + uuid.uuid4().hex
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{emulator.base_url}/{TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "c1",
                    "client_secret": secret,
                    "scope": f"{emulator.base_url}/.default",
                },
            ) as response,
        ):
            token = (await response.json())["access_token"]
        cluster_token = await fetch_token(emulator, AKS_APP)
        federated = jwt.encode(
            {
                "iss": "https://k8s",
                "sub": "sa",
                "aud": "api://AzureADTokenExchange",
                "exp": int(time.time()) + 600,
            },
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
        )
        assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{emulator.base_url}/{TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "c1",
                    "client_assertion_type": assertion_type,
                    "client_assertion": federated,
                    "scope": f"{emulator.base_url}/.default",
                },
            ) as response,
        ):
            assert response.status == 200
        status, headers, _ = await submit(
            emulator, token, name="aad1", body={"command": "true", "clusterToken": cluster_token}
        )
        assert status == 202
        await wait_done(emulator, token, headers["Location"])
        await submit(emulator, "garbage-" + secret)
    emulator_lines = [
        r.getMessage() for r in caplog.records if r.name.startswith(("aks_arm_emulator", "aiohttp"))
    ]
    assert any("sign-in" in line for line in emulator_lines)  # logging did happen
    for line in emulator_lines:
        for value in (secret, token, cluster_token, federated):
            assert value not in line
        # No JWT-shaped string at all.
        assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", line)
