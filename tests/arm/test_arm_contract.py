"""The client contract of issue 3, row by row: the real ArmClient (no MockTransport) over real
HTTPS against the in-process emulator, signing in with a real azure-identity
ClientSecretCredential at the emulator's token endpoint.

Each test asserts what the client returned or raised AND, where it matters, what the emulator
saw: its accepted submissions (``GET /_emulator/submissions``), its ARM answers by method and
status (``GET /_emulator/stats``), or its request log (correlation id of every ARM request).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.config import (
    BucketRules,
    FaultsConfig,
    ScriptedConfig,
    ThrottleRules,
)
from arm_doubles import submit
from azure.core.credentials_async import AsyncTokenCredential

from controller.arm import (
    AKS_AAD_SCOPE,
    DEFAULT_API_VERSION,
    ArmClient,
    ArmResponseError,
    ArmThrottle,
    Cloud,
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    CommandResult,
    CommandRunning,
    CommandStatus,
    ContextTooLargeError,
    CredentialConfig,
    RequestTooLargeError,
    ResourceNotFoundError,
    RetryPolicy,
    SubmissionOutcomeUnknown,
    build_context,
    build_credential,
)
from controller.arm.errors import is_retryable
from tests.emulator.emulator_harness import (
    CLIENT_ID,
    SUB,
    TENANT,
    Emulator,
    cluster,
    running_emulator,
)

# A recognisable secret, so the no-leak test can look for it in every log record.
CLIENT_SECRET = f"contract-secret-{uuid.uuid4().hex}"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Small retry delays: only 429s (with the emulator's Retry-After) should make the client wait.
FAST_RETRY = RetryPolicy(max_attempts=5, submit_max_attempts=6, base_delay=0.05, max_delay=0.2)

PLAIN = ClusterRef(SUB, "rg-Demo", "aks1")
AAD = ClusterRef(SUB, "rg-Demo", "aad1")
LOCKED = ClusterRef(SUB, "rg-Demo", "locked")
SLEEPING = ClusterRef(SUB, "rg-Demo", "sleeping")
MISSING = ClusterRef(SUB, "rg-Demo", "missing")


def emulator_config(**overrides: Any) -> EmulatorConfig:
    """Scripted mode over four clusters: plain, AAD-managed, run command disabled, stopped."""
    base = EmulatorConfig(
        clusters=(
            cluster("aks1"),
            cluster("aad1", aad_managed=True),
            cluster("locked", disable_run_command=True),
            cluster("sleeping", power_state="Stopped"),
        ),
        mode="scripted",
        scripted=ScriptedConfig(exit_code=3, logs="hello from scripted\n", duration_seconds=0.0),
    )
    return dataclasses.replace(base, **overrides)


@dataclass
class Stack:
    emulator: Emulator
    client: ArmClient
    credential: AsyncTokenCredential
    cloud: Cloud
    # Every delay the client asked its injected sleep for (submit resends and read retries).
    sleeps: list[float]
    cluster_token_mode: ClusterTokenMode

    async def submit(
        self,
        cluster: ClusterRef,
        command: str,
        context: str | None = None,
        *,
        correlation_id: str | None = None,
    ) -> CommandHandle:
        """The client's submit with this stack's clusterToken mode."""
        return await submit(
            self.client,
            cluster,
            command,
            context,
            cluster_token=self.cluster_token_mode,
            correlation_id=correlation_id,
        )

    async def _introspect(self, path: str) -> Any:
        assert self.emulator.ca_file is not None
        verify = ssl.create_default_context(cafile=str(self.emulator.ca_file))
        async with httpx.AsyncClient(verify=verify) as http:
            response = await http.get(f"{self.emulator.base_url}{path}")
            response.raise_for_status()
            return response.json()

    async def submissions(self) -> list[dict[str, Any]]:
        """Every submission the emulator accepted (recorded before it answers)."""
        body = await self._introspect("/_emulator/submissions")
        return list(body["submissions"])

    async def stats(self) -> dict[str, int]:
        """ARM answers by "METHOD STATUS", counted by the emulator's middleware."""
        body = await self._introspect("/_emulator/stats")
        return dict(body["requests"])


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for every emulator of this module (the harness reuses ca.key)."""
    return tmp_path_factory.mktemp("contract-state")


@asynccontextmanager
async def arm_stack(
    state_dir: Path,
    config: EmulatorConfig,
    *,
    cluster_token_mode: ClusterTokenMode = "auto",
    api_version: str = DEFAULT_API_VERSION,
    throttle: ArmThrottle | None = None,
) -> AsyncIterator[Stack]:
    """An emulator with ``config`` and a real ArmClient signed in against it."""
    sleeps: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    with running_emulator(config, state_dir) as emulator:
        assert emulator.ca_file is not None
        cloud = Cloud.custom(emulator.base_url, authority_host=emulator.base_url)
        credential = build_credential(
            CredentialConfig.from_secret_data(
                {"tenantId": TENANT, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
            ),
            cloud,
            connection_verify=str(emulator.ca_file),
        )
        client = ArmClient(
            credential,
            cloud=cloud,
            api_version=api_version,
            ca_file=str(emulator.ca_file),
            throttle=throttle,
            retry=FAST_RETRY,
            sleep=recording_sleep,
        )
        async with credential, client:
            yield Stack(emulator, client, credential, cloud, sleeps, cluster_token_mode)


async def poll_until_result(
    client: ArmClient, handle: CommandHandle
) -> tuple[CommandResult, list[CommandStatus]]:
    """Poll every 50 ms for up to 5 s; return the result and every status seen on the way."""
    seen: list[CommandStatus] = []
    for _ in range(100):
        status = await client.poll(handle)
        seen.append(status)
        if isinstance(status, CommandResult):
            return status, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"no result within 5 s; saw {seen}")


def only_submission(submissions: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(submissions) == 1, submissions
    return submissions[0]


# --- submit and poll --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lowercase", "running_state", "done_state"),
    [(False, "Running", "Succeeded"), (True, "running", "succeeded")],
    ids=["PascalCase", "lowercase"],
)
async def test_submit_then_poll_running_then_result(
    state_dir: Path, lowercase: bool, running_state: str, done_state: str
) -> None:
    config = emulator_config(
        scripted=ScriptedConfig(exit_code=3, logs="hello from scripted\n", duration_seconds=0.8),
        lowercase_states=lowercase,
    )
    async with arm_stack(state_dir, config) as stack:
        context = build_context({"ns.yaml": b"kind: Namespace\n"}, 1_000_000)
        handle = await stack.submit(PLAIN, "kubectl apply -f ns.yaml", context)

        assert HEX32.match(handle.command_id), handle.command_id
        location = httpx.URL(handle.location)
        assert str(location).startswith(stack.emulator.base_url + "/subscriptions/")
        assert location.path.endswith(f"/commandResults/{handle.command_id}")
        assert location.params["api-version"] == DEFAULT_API_VERSION
        assert handle.retry_after is None  # no Retry-After configured on the 202

        first = await stack.client.poll(handle)
        assert isinstance(first, CommandRunning)
        assert first.provisioning_state == running_state
        assert first.started_at is not None

        result, seen = await poll_until_result(stack.client, handle)
        assert all(isinstance(status, CommandRunning) for status in seen[:-1])
        assert result.provisioning_state == done_state
        assert (result.exit_code, result.logs, result.reason) == (3, "hello from scripted\n", None)
        assert result.finished_at is not None
        assert not result.succeeded and not result.platform_failed

        recorded = only_submission(await stack.submissions())
        assert recorded["commandId"] == handle.command_id
        assert recorded["command"] == "kubectl apply -f ns.yaml"
        assert recorded["hasContext"] is True
        assert recorded["state"] == "Succeeded"


async def test_retry_after_on_the_submit_202_lands_in_the_handle(state_dir: Path) -> None:
    async with arm_stack(state_dir, emulator_config(retry_after_seconds=7)) as stack:
        handle = await stack.submit(PLAIN, "kubectl get ns")

        assert handle.retry_after == 7.0
        result, _ = await poll_until_result(stack.client, handle)
        assert result.exit_code == 3


# --- unknown outcome --------------------------------------------------------------------------


async def test_connection_dropped_after_accept_is_unknown_and_never_resent(
    state_dir: Path,
) -> None:
    config = emulator_config(faults=FaultsConfig(drop_connection_after_submit_rate=1.0))
    async with arm_stack(state_dir, config) as stack:
        correlation_id = str(uuid.uuid4())
        with pytest.raises(SubmissionOutcomeUnknown) as caught:
            await stack.submit(PLAIN, "kubectl get ns", correlation_id=correlation_id)

        error = caught.value
        assert error.code == "SubmissionOutcomeUnknown"
        assert not error.retryable
        assert error.correlation_id == correlation_id
        assert error.response_error is None  # no response ever arrived
        assert isinstance(error.__cause__, httpx.HTTPError)
        # The emulator accepted it (and runs it) exactly once: the client did not resend.
        recorded = only_submission(await stack.submissions())
        assert recorded["correlationId"] == correlation_id
        assert recorded["state"] in ("Running", "Succeeded")
        # A dropped POST gets no answer, so /_emulator/stats counts none: only the cluster GET.
        # A resend would have been accepted (and dropped) again: a second submission above.
        assert await stack.stats() == {"GET 200": 1}
        assert stack.sleeps == []


async def test_server_error_on_submit_is_unknown_after_exactly_one_post(state_dir: Path) -> None:
    # "never": with serverErrorRate 1.0 the auto mode's cluster GET would meet the 500 first
    # (and, being a read, be retried); this row is about the POST.
    config = emulator_config(faults=FaultsConfig(server_error_rate=1.0))
    async with arm_stack(state_dir, config, cluster_token_mode="never") as stack:
        with pytest.raises(SubmissionOutcomeUnknown) as caught:
            await stack.submit(PLAIN, "kubectl get ns")

        error = caught.value
        assert not error.retryable
        assert error.response_error is not None
        assert error.response_error.status_code == 500
        assert error.response_error.code == "InternalServerError"
        assert error.request_id is not None and error.request_id == error.response_error.request_id
        # The injected 500 is answered before anything is recorded, so /_emulator/submissions
        # stays empty whether or not the POST was resent. The emulator's per-status answer
        # counter (/_emulator/stats) is the observable: exactly one POST reached it.
        assert await stack.submissions() == []
        assert await stack.stats() == {"POST 500": 1}
        assert stack.sleeps == []


# --- throttling -------------------------------------------------------------------------------


async def test_submit_burst_against_a_tiny_writes_bucket_succeeds_without_duplicates(
    state_dir: Path,
) -> None:
    tiny_writes = ThrottleRules(writes=BucketRules(capacity=2, refill_per_second=1.0))
    config = emulator_config(throttle=tiny_writes)
    async with arm_stack(state_dir, config, cluster_token_mode="never") as stack:
        burst = 4
        handles = await asyncio.gather(
            *(stack.submit(PLAIN, f"echo {index}") for index in range(burst))
        )

        assert len({handle.command_id for handle in handles}) == burst
        stats = await stack.stats()
        assert stats.get("POST 202") == burst
        throttled = stats.get("POST 429", 0)
        assert throttled >= burst - 2, stats  # the bucket held two tokens
        # Each 429 was followed by exactly one resend, after the emulator's Retry-After (1 s).
        assert stack.sleeps == [1.0] * throttled
        # Only the certainly-refused POSTs were resent: one accepted submission per handle.
        submissions = await stack.submissions()
        assert len(submissions) == burst
        assert sorted(s["commandId"] for s in submissions) == sorted(h.command_id for h in handles)
        assert sorted(s["correlationId"] for s in submissions) == sorted(
            h.correlation_id for h in handles
        )
        assert sorted(s["command"] for s in submissions) == [f"echo {i}" for i in range(burst)]


async def test_polls_against_a_tiny_reads_bucket_honour_retry_after(state_dir: Path) -> None:
    tiny_reads = ThrottleRules(reads=BucketRules(capacity=2, refill_per_second=1.0))
    config = emulator_config(throttle=tiny_reads)
    async with arm_stack(state_dir, config, cluster_token_mode="never") as stack:
        handle = await stack.submit(PLAIN, "kubectl get ns")
        await asyncio.sleep(0.05)  # the scripted command (0 s) finishes

        statuses = [await stack.client.poll(handle) for _ in range(3)]

        assert all(isinstance(status, CommandResult) for status in statuses), statuses
        stats = await stack.stats()
        # The third poll met an empty bucket, waited the 1 s Retry-After, then succeeded.
        assert stats == {"POST 202": 1, "GET 200": 3, "GET 429": 1}
        assert stack.sleeps == [1.0]


async def test_client_bucket_adopts_the_remaining_headers(state_dir: Path) -> None:
    # The emulator's buckets barely refill, so its remaining counts are exact; the client's
    # clock is frozen, so its own buckets never refill and only the headers move them.
    emulator_buckets = ThrottleRules(
        reads=BucketRules(capacity=7, refill_per_second=0.001),
        writes=BucketRules(capacity=5, refill_per_second=0.001),
    )
    throttle = ArmThrottle(clock=lambda: 0.0)
    reads, writes = throttle.bucket(SUB, "read"), throttle.bucket(SUB, "write")
    assert (reads.tokens, writes.tokens) == (250, 200)  # ARM's defaults before any answer
    config = emulator_config(throttle=emulator_buckets)
    async with arm_stack(state_dir, config, throttle=throttle) as stack:
        handle = await stack.submit(PLAIN, "kubectl get ns")  # cluster GET, then POST
        assert (reads.tokens, writes.tokens) == (6, 4)

        await stack.client.poll(handle)
        await stack.submit(PLAIN, "kubectl get ns")  # AAD flag cached: POST only
        assert (reads.tokens, writes.tokens) == (5, 3)

        # Case-insensitive subscription key: the same bucket.
        assert throttle.bucket(SUB.upper(), "write") is writes


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "answered"), [("auto", {"GET 404": 1}), ("never", {"POST 404": 1})]
)
async def test_unknown_cluster_is_fatal_resource_not_found(
    state_dir: Path, mode: ClusterTokenMode, answered: dict[str, int]
) -> None:
    async with arm_stack(state_dir, emulator_config(), cluster_token_mode=mode) as stack:
        with pytest.raises(ResourceNotFoundError) as caught:
            await stack.submit(MISSING, "kubectl get ns")

        error = caught.value
        assert (error.status_code, error.code) == (404, "ResourceNotFound")
        assert not error.retryable
        assert error.request_id
        assert await stack.stats() == answered  # not retried
        assert await stack.submissions() == []


async def test_aad_cluster_without_cluster_token_is_refused_and_fatal(state_dir: Path) -> None:
    async with arm_stack(state_dir, emulator_config(), cluster_token_mode="never") as stack:
        with pytest.raises(ArmResponseError) as caught:
            await stack.submit(AAD, "kubectl get ns")

        error = caught.value
        assert type(error) is ArmResponseError
        assert (error.status_code, error.code, error.target) == (
            400,
            "MissingAADClusterToken",
            "clusterToken",
        )
        assert not error.retryable
        assert await stack.stats() == {"POST 400": 1}  # "never" does not resend with a token
        assert await stack.submissions() == []


@pytest.mark.parametrize(
    ("target", "mode", "token_sent", "cluster_reads"),
    [
        (AAD, "auto", True, 1),
        (PLAIN, "auto", False, 1),
        (PLAIN, "always", True, 0),
    ],
    ids=["aad-auto", "plain-auto", "plain-always"],
)
async def test_cluster_token_is_sent_exactly_where_needed(
    state_dir: Path,
    target: ClusterRef,
    mode: ClusterTokenMode,
    token_sent: bool,
    cluster_reads: int,
) -> None:
    async with arm_stack(state_dir, emulator_config(), cluster_token_mode=mode) as stack:
        handles = [await stack.submit(target, "kubectl get ns") for _ in range(2)]

        submissions = await stack.submissions()
        assert [s["commandId"] for s in submissions] == [h.command_id for h in handles]
        assert [s["clusterTokenSent"] for s in submissions] == [token_sent, token_sent]
        # auto reads the cluster once and caches the answer; no refused POST on the way.
        expected = {"POST 202": 2} | ({"GET 200": cluster_reads} if cluster_reads else {})
        assert await stack.stats() == expected
        result, _ = await poll_until_result(stack.client, handles[0])
        assert result.exit_code == 3


async def test_request_over_the_emulator_limit_is_request_too_large(state_dir: Path) -> None:
    config = emulator_config(max_request_bytes=2048)
    async with arm_stack(state_dir, config, cluster_token_mode="never") as stack:
        # Random bytes do not compress: about 5.5 KB of base64, over the 2 KB limit.
        context = build_context({"blob.bin": os.urandom(4096)}, 1_000_000)
        assert len(context) > 2048

        with pytest.raises(RequestTooLargeError) as caught:
            await stack.submit(PLAIN, "ls", context)

        error = caught.value
        assert (error.status_code, error.code) == (413, "RequestEntityTooLarge")
        assert not error.retryable
        assert await stack.stats() == {"POST 413": 1}
        assert await stack.submissions() == []


async def test_context_over_max_bytes_is_refused_before_anything_is_sent(
    state_dir: Path,
) -> None:
    async with arm_stack(state_dir, emulator_config()) as stack:
        files = {"blob.bin": os.urandom(4096)}

        async def submit_files() -> CommandHandle:
            return await stack.submit(PLAIN, "ls", build_context(files, max_bytes=1024))

        with pytest.raises(ContextTooLargeError) as caught:
            await submit_files()

        assert caught.value.limit == 1024 and caught.value.size > 1024
        assert caught.value.code == "ContextTooLarge" and not caught.value.retryable
        assert await stack.submissions() == []
        assert await stack.stats() == {}  # not even the cluster GET


@pytest.mark.parametrize(
    ("mode", "answered"), [("auto", {"GET 400": 1}), ("never", {"POST 400": 1})]
)
async def test_unsupported_api_version_is_a_fatal_400(
    state_dir: Path, mode: ClusterTokenMode, answered: dict[str, int]
) -> None:
    async with arm_stack(
        state_dir, emulator_config(), cluster_token_mode=mode, api_version="1999-01-01"
    ) as stack:
        with pytest.raises(ArmResponseError) as caught:
            await stack.submit(PLAIN, "kubectl get ns")

        error = caught.value
        assert (error.status_code, error.code) == (400, "InvalidApiVersionParameter")
        assert "1999-01-01" in error.message
        assert not error.retryable
        assert await stack.stats() == answered
        assert await stack.submissions() == []


@pytest.mark.parametrize(
    ("target", "error_target"),
    [
        (LOCKED, "properties.apiServerAccessProfile.disableRunCommand"),
        (SLEEPING, "properties.powerState"),
    ],
    ids=["disableRunCommand", "stopped"],
)
async def test_disabled_or_stopped_cluster_surfaces_the_code_as_fatal(
    state_dir: Path, target: ClusterRef, error_target: str
) -> None:
    async with arm_stack(state_dir, emulator_config()) as stack:
        with pytest.raises(ArmResponseError) as caught:
            await stack.submit(target, "kubectl get ns")

        error = caught.value
        assert (error.status_code, error.code, error.target) == (
            400,
            "OperationNotAllowed",
            error_target,
        )
        assert not error.retryable
        assert await stack.stats() == {"GET 200": 1, "POST 400": 1}
        assert await stack.submissions() == []


@pytest.mark.parametrize(
    ("target", "retryable"),
    [
        (None, True),  # the usual meaning: busy with another operation
        ("properties.powerState", False),
        ("Properties.ApiServerAccessProfile.DisableRunCommand", False),
    ],
)
def test_operation_not_allowed_is_fatal_only_when_a_cluster_property_forbids_it(
    target: str | None, retryable: bool
) -> None:
    assert is_retryable(400, "OperationNotAllowed", target) is retryable


async def test_pod_that_never_starts_ends_as_platform_failure(state_dir: Path) -> None:
    faults = FaultsConfig(pod_never_starts=True, pod_start_timeout_seconds=0.5)
    async with arm_stack(state_dir, emulator_config(faults=faults)) as stack:
        handle = await stack.submit(PLAIN, "kubectl get ns")
        first = await stack.client.poll(handle)
        assert isinstance(first, CommandRunning)

        result, _ = await poll_until_result(stack.client, handle)

        assert result.provisioning_state == "Failed"
        assert result.reason == "KubernetesOperationError"
        assert result.exit_code is None
        assert result.platform_failed and not result.succeeded
        assert only_submission(await stack.submissions())["state"] == "Failed"


# --- tracing ----------------------------------------------------------------------------------

_CLIENT_LINE = re.compile(
    r"^(?P<method>GET|POST) (?P<path>\S+) -> (?P<status>\d+) request_id=(?P<request_id>\S+) "
    r"client_request_id=(?P<client_request_id>\S+) correlation_id=(?P<correlation_id>\S+)$"
)
_EMULATOR_LINE = re.compile(
    r"^(?P<method>\S+) (?P<path>/subscriptions/\S+) -> (?P<status>\d+) "
    r"\(request (?P<request_id>\S+), correlation (?P<correlation_id>\S+)\)$"
)


def matching_lines(
    records: list[logging.LogRecord], logger: str, pattern: re.Pattern[str]
) -> list[dict[str, str]]:
    found = []
    for record in records:
        if record.name == logger and (match := pattern.match(record.getMessage())):
            found.append(match.groupdict())
    return found


async def test_every_request_carries_a_client_request_id_and_the_run_correlation_id(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # In this order: set_level also sets the capturing handler's level, the last call wins.
    caplog.set_level(logging.INFO, logger="aks_arm_emulator")
    caplog.set_level(logging.DEBUG, logger="controller.arm")
    async with arm_stack(state_dir, emulator_config()) as stack:
        run_id = str(uuid.uuid4())
        handle = await stack.submit(AAD, "kubectl get ns", correlation_id=run_id)
        await poll_until_result(stack.client, handle)

        assert handle.correlation_id == run_id
        recorded = only_submission(await stack.submissions())
        assert recorded["correlationId"] == handle.correlation_id
        assert UUID_TEXT.match(recorded["clientRequestId"] or "")

    # The emulator side: every ARM request of the run (cluster GET, POST, polls) carried it.
    served = matching_lines(caplog.records, "aks_arm_emulator.app", _EMULATOR_LINE)
    assert [line["method"] for line in served[:2]] == ["GET", "POST"]
    assert len(served) >= 3
    assert {line["correlation_id"] for line in served} == {run_id}
    # The client side: one fresh x-ms-client-request-id per request, the POST's being the one
    # the emulator recorded; and the request ids tie each client line to an emulator answer.
    sent = matching_lines(caplog.records, "controller.arm", _CLIENT_LINE)
    assert len(sent) == len(served)
    client_request_ids = [line["client_request_id"] for line in sent]
    assert all(UUID_TEXT.match(value) for value in client_request_ids)
    assert len(set(client_request_ids)) == len(sent)
    posts = [line for line in sent if line["method"] == "POST"]
    assert [line["client_request_id"] for line in posts] == [recorded["clientRequestId"]]
    assert [line["request_id"] for line in sent] == [line["request_id"] for line in served]


# --- no leaks ---------------------------------------------------------------------------------


def record_texts(record: logging.LogRecord) -> Iterator[str]:
    yield record.getMessage()
    yield str(record.msg)
    args = record.args if isinstance(record.args, tuple) else (record.args,)
    yield from (repr(arg) for arg in args)
    if record.exc_text:
        yield record.exc_text
    if record.exc_info and record.exc_info[1] is not None:
        yield repr(record.exc_info[1])


async def test_no_secret_or_token_in_any_log_record(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: client, azure-identity, httpx, emulator
    async with arm_stack(state_dir, emulator_config()) as stack:
        handle = await stack.submit(AAD, "kubectl get ns")
        await poll_until_result(stack.client, handle)
        assert only_submission(await stack.submissions())["clusterTokenSent"] is True
        # The credential caches: these are the very tokens the client sent.
        bearer = (await stack.credential.get_token(stack.cloud.arm_scope)).token
        cluster_token = (await stack.credential.get_token(AKS_AAD_SCOPE)).token

    assert bearer.startswith("eyJ") and cluster_token.startswith("eyJ")
    assert bearer != cluster_token
    loggers = {record.name for record in caplog.records}
    assert {"controller.arm", "aks_arm_emulator.app"} <= loggers  # the check saw traffic
    forbidden = (CLIENT_SECRET, bearer, cluster_token, "eyJ")
    for record in caplog.records:
        for text in record_texts(record):
            for value in forbidden:
                assert value not in text, f"{record.name} logged a secret: {text[:200]!r}"
