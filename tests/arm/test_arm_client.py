"""ArmClient against a scripted ARM (httpx.MockTransport): submission safety, polling, headers."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from arm_doubles import (
    AKS_TOKEN,
    ARM_ENDPOINT,
    ARM_TOKEN,
    CLOUD,
    CLUSTER,
    COMMAND_ID,
    LOCATION,
    SUBSCRIPTION,
    FakeClock,
    FakeCredential,
    FakeCredentials,
    ScriptedArm,
    accepted,
    arm_error,
    cluster_body,
    command_state,
    entra_error,
    make_client,
    submit,
)
from azure.core.exceptions import ServiceRequestError

from controller.arm import (
    AKS_AAD_SCOPE,
    ArmClient,
    ArmError,
    ArmResponseError,
    ArmThrottle,
    ArmTransportError,
    BucketConfig,
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    CommandResult,
    CommandRunning,
    CredentialError,
    MalformedLocationError,
    ResourceNotFoundError,
    RetryPolicy,
    SubmissionOutcomeUnknown,
    ThrottleConfig,
    ThrottledError,
)

HANDLE = CommandHandle(COMMAND_ID, LOCATION, "corr-1")


# Submission ---------------------------------------------------------------------------------


async def test_submit_202_returns_handle_from_location_as_given() -> None:
    arm = ScriptedArm(accepted(**{"Retry-After": "5"}))
    async with make_client(arm) as client:
        handle = await submit(
            client,
            CLUSTER,
            "kubectl get ns",
            "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
            cluster_token="never",
        )

    assert handle.command_id == COMMAND_ID
    assert handle.location == LOCATION  # "resourcegroups" kept as ARM wrote it
    assert handle.retry_after == 5.0
    (request,) = arm.requests
    assert request.method == "POST"
    assert request.url.path == f"{CLUSTER.resource_id}/runCommand"
    assert request.url.params["api-version"] == "2024-09-01"
    assert arm.bodies() == [
        {"command": "kubectl get ns", "context": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}
    ]
    assert handle.correlation_id == request.headers["x-ms-correlation-request-id"]


async def test_submit_429_then_202_resubmits_after_retry_after() -> None:
    sleeps = FakeClock()
    arm = ScriptedArm(arm_error(429, "TooManyRequests", **{"Retry-After": "3"}), accepted())
    async with make_client(arm, clock=sleeps) as client:
        handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert handle.command_id == COMMAND_ID
    assert len(arm.requests) == 2
    assert sleeps.sleeps[-1] == 3.0
    # Both tries belong to one logical operation.
    assert len({r.headers["x-ms-correlation-request-id"] for r in arm.requests}) == 1


async def test_submit_429_gives_up_after_bounded_attempts() -> None:
    arm = ScriptedArm(*[arm_error(429, "TooManyRequests", **{"Retry-After": "1"})] * 3)
    async with make_client(arm, retry=RetryPolicy(submit_max_attempts=3)) as client:
        with pytest.raises(ThrottledError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert len(arm.requests) == 3
    assert caught.value.retryable
    assert caught.value.retry_after == 1.0


async def test_submit_429_with_long_retry_after_is_raised_not_slept() -> None:
    sleeps = FakeClock()
    arm = ScriptedArm(arm_error(429, "TooManyRequests", **{"Retry-After": "900"}))
    async with make_client(arm, clock=sleeps) as client:
        with pytest.raises(ThrottledError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert caught.value.retry_after == 900.0
    assert sleeps.sleeps == []
    assert len(arm.requests) == 1


@pytest.mark.parametrize("not_sent", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_submit_resends_when_the_connection_was_never_made(
    not_sent: type[httpx.HTTPError],
) -> None:
    arm = ScriptedArm(not_sent, accepted())
    async with make_client(arm) as client:
        handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert handle.command_id == COMMAND_ID
    assert len(arm.requests) == 2


async def test_submit_connect_errors_exhausted_raise_retryable_transport_error() -> None:
    arm = ScriptedArm(httpx.ConnectError, httpx.ConnectError)
    async with make_client(arm, retry=RetryPolicy(submit_max_attempts=2)) as client:
        with pytest.raises(ArmTransportError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert len(arm.requests) == 2
    assert caught.value.retryable
    assert not isinstance(caught.value, SubmissionOutcomeUnknown)


@pytest.mark.parametrize(
    "ambiguous",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_submit_ambiguous_transport_failure_is_unknown_and_never_resent(
    ambiguous: type[httpx.HTTPError],
) -> None:
    arm = ScriptedArm(ambiguous, accepted())
    async with make_client(arm) as client:
        with pytest.raises(SubmissionOutcomeUnknown) as caught:
            await submit(
                client,
                CLUSTER,
                "kubectl get ns",
                correlation_id="corr-ambiguous",
                cluster_token="never",
            )

    assert len(arm.requests) == 1
    assert caught.value.code == "SubmissionOutcomeUnknown"
    assert caught.value.correlation_id == "corr-ambiguous"
    assert not caught.value.retryable
    assert ambiguous.__name__ in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_submit_5xx_is_unknown_and_never_resent(status: int) -> None:
    arm = ScriptedArm(arm_error(status, "InternalServerError", **{"Retry-After": "1"}), accepted())
    async with make_client(arm) as client:
        with pytest.raises(SubmissionOutcomeUnknown) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert len(arm.requests) == 1
    assert caught.value.response_error is not None
    assert caught.value.response_error.status_code == status
    assert caught.value.response_error.code == "InternalServerError"


@pytest.mark.parametrize("code", ["KubernetesPerformanceError", "KubernetesOperationError"])
async def test_submit_pod_start_errors_are_unknown_because_the_pod_may_still_run(code: str) -> None:
    arm = ScriptedArm(arm_error(400, code, "pod did not start in time"))
    async with make_client(arm) as client:
        with pytest.raises(SubmissionOutcomeUnknown) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert len(arm.requests) == 1
    assert caught.value.response_error is not None
    assert caught.value.response_error.code == code


async def test_submit_4xx_raises_typed_fatal_error_once() -> None:
    body = {
        "error": {
            "code": "InvalidParameter",
            "message": "command is invalid",
            "target": "command",
            "details": [{"code": "Inner", "message": "detail", "target": "x"}],
        }
    }
    arm = ScriptedArm(httpx.Response(400, json=body, headers={"x-ms-request-id": "req-9"}))
    async with make_client(arm) as client:
        with pytest.raises(ArmResponseError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    error = caught.value
    assert len(arm.requests) == 1
    assert (error.status_code, error.code, error.target) == (400, "InvalidParameter", "command")
    assert error.details[0].code == "Inner"
    assert error.request_id == "req-9"
    assert not error.retryable


async def test_submit_404_for_missing_cluster() -> None:
    arm = ScriptedArm(arm_error(404, "ResourceNotFound", "cluster not found"))
    async with make_client(arm) as client:
        with pytest.raises(ResourceNotFoundError):
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")


@pytest.mark.parametrize(
    "location",
    [
        None,
        "",
        "/subscriptions/x/commandResults/abc",  # relative
        "https://evil.test/subscriptions/x/resourceGroups/rg/commandResults/abc",  # other host
        f"{ARM_ENDPOINT}/subscriptions/{SUBSCRIPTION}/operations/abc",  # not commandResults
        f"{ARM_ENDPOINT}/subscriptions/{SUBSCRIPTION}/commandResults/",  # no id
    ],
)
async def test_submit_202_without_usable_location_is_accepted_but_unpollable(
    location: str | None,
) -> None:
    arm = ScriptedArm(accepted(location, **{"x-ms-request-id": "req-1"}), accepted())
    async with make_client(arm) as client:
        with pytest.raises(MalformedLocationError) as caught:
            await submit(
                client, CLUSTER, "kubectl get ns", correlation_id="corr-ml", cluster_token="never"
            )

    assert len(arm.requests) == 1  # accepted: never resubmitted
    error = caught.value
    assert isinstance(error, SubmissionOutcomeUnknown)
    assert error.code == "MalformedLocation"
    assert error.correlation_id == "corr-ml"
    assert error.request_id == "req-1"
    assert not error.retryable


async def test_submit_location_host_is_compared_case_insensitively() -> None:
    arm = ScriptedArm(accepted(LOCATION.replace("arm.test", "ARM.Test")))
    async with make_client(arm) as client:
        handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")
    assert handle.command_id == COMMAND_ID


async def test_submit_refuses_empty_command_without_sending() -> None:
    arm = ScriptedArm()
    async with make_client(arm) as client:
        with pytest.raises(ValueError, match="command must not be empty"):
            await submit(client, CLUSTER, "  ", cluster_token="never")
    assert arm.requests == []


# Prepare, then send ------------------------------------------------------------------------


async def test_prepare_reads_the_cluster_and_gets_every_token_but_sends_no_post() -> None:
    credential = FakeCredential()
    arm = ScriptedArm(cluster_body(aad_managed=True), accepted())
    async with make_client(arm, credential=credential) as client:
        prepared = await client.prepare_submission(
            CLUSTER, "kubectl get ns", None, cluster_token="auto", correlation_id="corr-p"
        )
        assert [r.method for r in arm.requests] == ["GET"]
        arm_scope = f"{ARM_ENDPOINT}/.default"
        # The GET's token, then the cluster token; the POST's ARM token is the GET's, kept
        # while it has more than 5 minutes to live.
        assert credential.scopes == [arm_scope, AKS_AAD_SCOPE]

        handle = await client.send_submission(prepared)

    assert [r.method for r in arm.requests] == ["GET", "POST"]
    assert arm.bodies() == [{"command": "kubectl get ns", "clusterToken": AKS_TOKEN}]
    assert handle.correlation_id == "corr-p"
    assert {r.headers["x-ms-correlation-request-id"] for r in arm.requests} == {"corr-p"}


async def test_prepare_in_never_mode_sends_nothing_and_only_warms_the_arm_token() -> None:
    credential = FakeCredential()
    arm = ScriptedArm()
    async with make_client(arm, credential=credential) as client:
        prepared = await client.prepare_submission(
            CLUSTER, "kubectl get ns", "UEsFBg==", cluster_token="never", correlation_id="c"
        )
    assert arm.requests == []
    assert credential.scopes == [f"{ARM_ENDPOINT}/.default"]
    assert prepared.body() == {"command": "kubectl get ns", "context": "UEsFBg=="}


@pytest.mark.parametrize(
    ("budget", "refill_wait"),
    [
        (ThrottleConfig(writes=BucketConfig(capacity=1, refill_per_second=0.5)), 2.0),
        (ThrottleConfig(provider=BucketConfig(capacity=1, refill_per_second=0.25)), 4.0),
    ],
    ids=["arm-writes", "aks-provider"],
)
async def test_prepare_waits_for_the_budget_so_the_claimed_post_does_not(
    budget: ThrottleConfig, refill_wait: float
) -> None:
    """A claimed POST that waits for budget widens the window in which a crash means Unknown:
    prepare takes the POST's share of ARM's write budget and of the provider's, and send spends
    them."""
    clock = FakeClock()
    throttle = ArmThrottle(budget, clock=clock, sleep=clock.sleep)
    arm = ScriptedArm(accepted(), accepted())
    async with make_client(arm, throttle=throttle) as client:
        for correlation_id in ("first", "second"):
            prepared = await client.prepare_submission(
                CLUSTER, "true", None, cluster_token="never", correlation_id=correlation_id
            )
            waited_in_prepare = list(clock.sleeps)
            await client.send_submission(prepared)
            assert clock.sleeps == waited_in_prepare  # sending never waits for budget

    assert clock.sleeps == [pytest.approx(refill_wait)]  # the second prepare waited for a refill
    assert [r.method for r in arm.requests] == ["POST", "POST"]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (arm_error(404, "ResourceNotFound"), ResourceNotFoundError),
        (arm_error(403, "AuthorizationFailed"), ArmResponseError),
    ],
)
async def test_prepare_failures_send_no_post(step: httpx.Response, error: type[Exception]) -> None:
    arm = ScriptedArm(step)
    async with make_client(arm) as client:
        with pytest.raises(error):
            await client.prepare_submission(
                CLUSTER, "kubectl get ns", None, cluster_token="auto", correlation_id="c"
            )
    assert [r.method for r in arm.requests] == ["GET"]


async def test_prepare_surfaces_sign_in_failures_before_anything_is_sent() -> None:
    arm = ScriptedArm()
    credential = FakeCredential(ServiceRequestError("connection refused"))
    async with make_client(arm, credential=credential) as client:
        with pytest.raises(CredentialError) as caught:
            await client.prepare_submission(
                CLUSTER, "kubectl get ns", None, cluster_token="never", correlation_id="c"
            )
    assert caught.value.code == "TokenEndpointUnreachable"
    assert arm.requests == []


async def test_prepare_refuses_an_unknown_cluster_token_mode() -> None:
    async with make_client(ScriptedArm()) as client:
        with pytest.raises(ValueError, match="cluster_token must be auto, always or never"):
            await client.prepare_submission(
                CLUSTER,
                "kubectl get ns",
                None,
                cluster_token="Always",  # type: ignore[arg-type]
                correlation_id="c",
            )


async def test_prepared_submission_repr_shows_neither_cluster_token_nor_context() -> None:
    arm = ScriptedArm()
    async with make_client(arm) as client:
        prepared = await client.prepare_submission(
            CLUSTER, "kubectl get ns", "UEsFBg" * 100, cluster_token="always", correlation_id="c"
        )
    assert prepared.cluster_token == AKS_TOKEN
    for text in (repr(prepared), str(prepared), f"{prepared}", repr([prepared])):
        assert AKS_TOKEN not in text and "UEsFBg" not in text
        assert "cluster_token=<redacted>" in text and "context=<600 chars>" in text
        assert "kubectl get ns" in text


# clusterToken -------------------------------------------------------------------------------


async def test_auto_mode_reads_the_cluster_once_and_sends_cluster_token_when_aad_managed() -> None:
    credential = FakeCredential()
    arm = ScriptedArm(cluster_body(aad_managed=True), accepted(), accepted())
    async with make_client(arm, credential=credential) as client:
        await submit(client, CLUSTER, "kubectl get ns", cluster_token="auto")
        # Resource ids are case-insensitive: the same cluster spelled differently hits the cache.
        same_cluster = ClusterRef(SUBSCRIPTION, "RG-DEMO", "aks-demo")
        await submit(client, same_cluster, "kubectl get pods", cluster_token="auto")

    assert [r.method for r in arm.requests] == ["GET", "POST", "POST"]
    assert arm.requests[0].url.path == CLUSTER.resource_id
    assert [body.get("clusterToken") for body in arm.bodies()] == [AKS_TOKEN, AKS_TOKEN]
    assert AKS_AAD_SCOPE in credential.scopes


async def test_auto_mode_omits_cluster_token_when_not_aad_managed() -> None:
    credential = FakeCredential()
    arm = ScriptedArm(cluster_body(aad_managed=False), accepted())
    async with make_client(arm, credential=credential) as client:
        await submit(client, CLUSTER, "kubectl get ns", cluster_token="auto")

    assert "clusterToken" not in arm.bodies()[0]
    assert AKS_AAD_SCOPE not in credential.scopes


async def test_auto_mode_stale_cache_resends_once_with_cluster_token() -> None:
    arm = ScriptedArm(
        cluster_body(aad_managed=False),
        arm_error(400, "MissingAADClusterToken", "clusterToken is required"),
        accepted(),
        accepted(),
    )
    async with make_client(arm) as client:
        await submit(client, CLUSTER, "kubectl get ns", cluster_token="auto")
        await submit(
            client, CLUSTER, "kubectl get ns", cluster_token="auto"
        )  # cache now says AAD-managed

    bodies = arm.bodies()
    assert [r.method for r in arm.requests] == ["GET", "POST", "POST", "POST"]
    assert "clusterToken" not in bodies[0]
    assert bodies[1]["clusterToken"] == AKS_TOKEN
    assert bodies[2]["clusterToken"] == AKS_TOKEN


@pytest.mark.parametrize(("mode", "sent"), [("always", True), ("never", False)])
async def test_explicit_cluster_token_modes_do_not_read_the_cluster(
    mode: ClusterTokenMode, sent: bool
) -> None:
    arm = ScriptedArm(accepted())
    async with make_client(arm) as client:
        await submit(client, CLUSTER, "kubectl get ns", cluster_token=mode)

    assert [r.method for r in arm.requests] == ["POST"]
    assert ("clusterToken" in arm.bodies()[0]) is sent


async def test_never_mode_surfaces_missing_cluster_token_as_fatal() -> None:
    arm = ScriptedArm(arm_error(400, "MissingAADClusterToken"))
    async with make_client(arm) as client:
        with pytest.raises(ArmResponseError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")
    assert caught.value.code == "MissingAADClusterToken"
    assert not caught.value.retryable
    assert len(arm.requests) == 1


# Polling ------------------------------------------------------------------------------------


async def test_poll_202_with_body_is_running() -> None:
    arm = ScriptedArm(command_state(202, "Running"))
    async with make_client(arm) as client:
        status = await client.poll(HANDLE)

    assert status == CommandRunning(
        started_at="2024-09-01T10:00:00Z", retry_after=None, provisioning_state="Running"
    )
    assert str(arm.requests[0].url) == LOCATION


async def test_poll_202_without_body_is_running_and_keeps_retry_after() -> None:
    arm = ScriptedArm(httpx.Response(202, headers={"Retry-After": "10"}))
    async with make_client(arm) as client:
        status = await client.poll(HANDLE)
    assert status == CommandRunning(started_at=None, retry_after=10.0, provisioning_state=None)


@pytest.mark.parametrize("state", ["Succeeded", "succeeded", "SUCCEEDED"])
async def test_poll_200_succeeded_any_case(state: str) -> None:
    arm = ScriptedArm(
        command_state(
            200, state, exitCode=0, finishedAt="2024-09-01T10:00:05Z", logs="ns/demo created\n"
        )
    )
    async with make_client(arm) as client:
        result = await client.poll(HANDLE)

    assert isinstance(result, CommandResult)
    assert result.succeeded and not result.platform_failed
    assert (result.exit_code, result.logs) == (0, "ns/demo created\n")
    assert result.finished_at == "2024-09-01T10:00:05Z"


async def test_poll_200_nonzero_exit_is_a_command_failure_not_a_platform_failure() -> None:
    arm = ScriptedArm(command_state(200, "Succeeded", exitCode=2, logs="error: not found\n"))
    async with make_client(arm) as client:
        result = await client.poll(HANDLE)

    assert isinstance(result, CommandResult)
    # It ran and exited non-zero: not succeeded, yet no platform failure.
    assert not result.succeeded and not result.platform_failed
    assert result.exit_code == 2


async def test_poll_200_failed_is_a_platform_failure_with_reason() -> None:
    arm = ScriptedArm(command_state(200, "failed", reason="ImagePullBackoff"))
    async with make_client(arm) as client:
        result = await client.poll(HANDLE)

    assert isinstance(result, CommandResult)
    assert result.platform_failed and not result.succeeded
    assert (result.reason, result.exit_code, result.logs) == ("ImagePullBackoff", None, "")


@pytest.mark.parametrize("state", ["Provisioning", "Pending", "running"])
async def test_poll_200_with_non_terminal_state_counts_as_running(state: str) -> None:
    arm = ScriptedArm(command_state(200, state))
    async with make_client(arm) as client:
        status = await client.poll(HANDLE)
    assert isinstance(status, CommandRunning)
    assert status.provisioning_state == state


async def test_poll_200_without_json_is_a_retryable_malformed_response() -> None:
    arm = ScriptedArm(httpx.Response(200, text="<html>oops</html>"))
    async with make_client(arm) as client:
        with pytest.raises(ArmError) as caught:
            await client.poll(HANDLE)
    assert caught.value.code == "MalformedResponse"
    assert caught.value.retryable


async def test_poll_retries_honouring_retry_after() -> None:
    sleeps = FakeClock()
    arm = ScriptedArm(
        arm_error(503, "ServiceUnavailable", **{"Retry-After": "7"}),
        arm_error(429, "TooManyRequests", **{"retry-after-ms": "1500"}),
        command_state(200, "Succeeded", exitCode=0),
    )
    async with make_client(arm, clock=sleeps) as client:
        result = await client.poll(HANDLE)

    assert isinstance(result, CommandResult)
    assert len(arm.requests) == 3
    # The throttle may also sleep after the 429 block; the retry delays come first per failure.
    assert sleeps.sleeps[:2] == [7.0, 1.5]


async def test_poll_retries_transport_errors_with_jittered_backoff() -> None:
    sleeps = FakeClock()
    arm = ScriptedArm(httpx.ReadTimeout, httpx.RemoteProtocolError, command_state(202, "Running"))
    retry = RetryPolicy(base_delay=2.0, max_delay=30.0)
    async with make_client(arm, clock=sleeps, retry=retry) as client:
        status = await client.poll(HANDLE)

    assert isinstance(status, CommandRunning)
    # Full jitter with rand() == 0.5: 0.5 * 2 * 2**n.
    assert sleeps.sleeps == [1.0, 2.0]


async def test_poll_gives_up_after_max_attempts() -> None:
    sleeps = FakeClock()
    arm = ScriptedArm(*[httpx.ConnectError] * 3)
    async with make_client(arm, clock=sleeps, retry=RetryPolicy(max_attempts=3)) as client:
        with pytest.raises(ArmTransportError) as caught:
            await client.poll(HANDLE)

    assert len(arm.requests) == 3
    assert len(sleeps.sleeps) == 2
    assert caught.value.retryable
    assert caught.value.correlation_id == HANDLE.correlation_id


async def test_poll_does_not_retry_404() -> None:
    arm = ScriptedArm(httpx.Response(404), command_state(200, "Succeeded", exitCode=0))
    async with make_client(arm) as client:
        with pytest.raises(ResourceNotFoundError) as caught:
            await client.poll(HANDLE)
    assert len(arm.requests) == 1
    assert caught.value.code == "Http404"


async def test_poll_refuses_a_handle_pointing_outside_arm_without_sending() -> None:
    credential = FakeCredential()
    arm = ScriptedArm()
    tampered = CommandHandle(COMMAND_ID, LOCATION.replace(ARM_ENDPOINT, "https://evil.test"), "c")
    async with make_client(arm, credential=credential) as client:
        with pytest.raises(ArmError) as caught:
            await client.poll(tampered)
    assert caught.value.code == "InvalidCommandHandle"
    assert arm.requests == []
    assert credential.scopes == []


async def test_poll_adds_api_version_when_location_lacks_it() -> None:
    arm = ScriptedArm(command_state(202, "Running"))
    async with make_client(arm) as client:
        await client.poll(CommandHandle(COMMAND_ID, LOCATION.split("?")[0], "c"))
    assert arm.requests[0].url.params["api-version"] == "2024-09-01"


# get_cluster --------------------------------------------------------------------------------


async def test_get_cluster_parses_the_summary() -> None:
    body = {
        "properties": {
            "aadProfile": {"managed": True},
            "apiServerAccessProfile": {"disableRunCommand": True},
            "powerState": {"code": "Stopped"},
        }
    }
    arm = ScriptedArm(arm_error(500, "InternalServerError"), httpx.Response(200, json=body))
    async with make_client(arm) as client:
        cluster = await client.get_cluster(CLUSTER)

    assert len(arm.requests) == 2  # a read: retried
    assert (cluster.aad_managed, cluster.disable_run_command, cluster.power_state) == (
        True,
        True,
        "Stopped",
    )


# Headers, credentials, logging ---------------------------------------------------------------


async def test_headers_request_ids_unique_and_correlation_shared_across_submit_and_polls() -> None:
    credential = FakeCredential()
    arm = ScriptedArm(
        cluster_body(aad_managed=False),
        accepted(),
        command_state(202, "Running"),
        command_state(200, "Succeeded", exitCode=0),
    )
    async with make_client(arm, credential=credential) as client:
        handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="auto")
        await client.poll(handle)
        # After a restart: rebuilt from the fields status keeps, as the core does.
        await client.poll(CommandHandle(handle.command_id, handle.location, handle.correlation_id))

    client_ids = [r.headers["x-ms-client-request-id"] for r in arm.requests]
    assert len(set(client_ids)) == 4
    assert all(uuid.UUID(value) for value in client_ids)
    assert {r.headers["x-ms-correlation-request-id"] for r in arm.requests} == {
        handle.correlation_id
    }
    for request in arm.requests:
        assert request.headers["Authorization"] == f"Bearer {ARM_TOKEN}"
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"].startswith("aks-runcommand-operator/")
    assert set(credential.scopes) == {f"{ARM_ENDPOINT}/.default"}


async def test_caller_correlation_id_is_used() -> None:
    arm = ScriptedArm(accepted())
    async with make_client(arm) as client:
        handle = await submit(
            client,
            CLUSTER,
            "kubectl get ns",
            correlation_id="persisted-corr",
            cluster_token="never",
        )
    assert handle.correlation_id == "persisted-corr"
    assert arm.requests[0].headers["x-ms-correlation-request-id"] == "persisted-corr"


async def test_tokens_never_reach_logs_or_error_messages(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    arm = ScriptedArm(
        cluster_body(aad_managed=True),
        arm_error(429, "TooManyRequests", **{"Retry-After": "0"}),
        accepted(),
        httpx.ReadTimeout,
        command_state(200, "Succeeded", exitCode=0),
        httpx.ReadTimeout,
    )
    errors: list[str] = []
    async with make_client(arm) as client:
        handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="auto")
        await client.poll(handle)
        try:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="auto")
        except SubmissionOutcomeUnknown as exc:
            errors.append(repr(exc) + str(exc) + repr(exc.__cause__))

    assert arm.bodies()[-1]["clusterToken"] == AKS_TOKEN  # it was sent...
    assert "POST" in caplog.text and "/runCommand" in caplog.text  # ...and requests were logged
    for secret in (ARM_TOKEN, AKS_TOKEN):
        assert secret not in caplog.text
        assert all(secret not in message for message in errors)


async def test_credential_failure_is_a_fatal_credential_error_and_nothing_is_sent() -> None:
    credential = FakeCredential(entra_error(401, "AADSTS7000215: Invalid client secret."))
    arm = ScriptedArm()
    async with make_client(arm, credential=credential) as client:
        with pytest.raises(CredentialError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert caught.value.code == "AuthenticationFailed"
    assert not caught.value.retryable
    assert "AADSTS7000215" in caught.value.message
    assert arm.requests == []


async def test_unreachable_token_endpoint_is_retryable() -> None:
    credential = FakeCredential(ServiceRequestError("connection refused"))
    async with make_client(ScriptedArm(), credential=credential) as client:
        with pytest.raises(CredentialError) as caught:
            await client.poll(HANDLE)
    assert caught.value.code == "TokenEndpointUnreachable"
    assert caught.value.retryable


# 401: ARM refused the token --------------------------------------------------------------


def unauthorized() -> httpx.Response:
    return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")


def bearer_tokens(arm: ScriptedArm) -> list[str]:
    return [r.headers["Authorization"].removeprefix("Bearer ") for r in arm.requests]


async def test_submit_401_is_resent_once_with_a_fresh_token() -> None:
    credentials = FakeCredentials()
    arm = ScriptedArm(unauthorized(), accepted())
    async with make_client(arm, credentials=credentials) as client:
        handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert handle.command_id == COMMAND_ID
    assert [r.method for r in arm.requests] == ["POST", "POST"]
    assert bearer_tokens(arm) == [f"{ARM_TOKEN}-1", f"{ARM_TOKEN}-2"]
    assert arm.bodies()[0] == arm.bodies()[1]
    assert [c.closed for c in credentials.built] == [True, True]  # replaced, then aclose


async def test_submit_401_twice_is_a_fatal_refusal_after_two_posts() -> None:
    arm = ScriptedArm(unauthorized(), unauthorized(), accepted())
    async with make_client(arm, credentials=FakeCredentials()) as client:
        with pytest.raises(ArmResponseError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    error = caught.value
    assert not isinstance(error, SubmissionOutcomeUnknown)
    assert (error.status_code, error.code, error.retryable) == (
        401,
        "InvalidAuthenticationToken",
        False,
    )
    assert len(arm.requests) == 2
    assert bearer_tokens(arm) == [f"{ARM_TOKEN}-1", f"{ARM_TOKEN}-2"]


async def test_submit_401_then_entra_refusing_a_fresh_token_sends_nothing_more() -> None:
    # The first credential signs in; its replacement is refused (the secret was revoked).
    credentials = iter([FakeCredential(), FakeCredential(entra_error(401, "AADSTS7000222"))])
    arm = ScriptedArm(unauthorized(), accepted())
    async with ArmClient(
        credential_factory=lambda: next(credentials), cloud=CLOUD, transport=arm.transport
    ) as client:
        with pytest.raises(CredentialError) as caught:
            await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")

    assert caught.value.code == "AuthenticationFailed"
    assert len(arm.requests) == 1


async def test_poll_401_is_retried_once_with_a_fresh_token() -> None:
    arm = ScriptedArm(unauthorized(), command_state(200, "Succeeded", exitCode=0))
    async with make_client(arm, credentials=FakeCredentials()) as client:
        result = await client.poll(HANDLE)

    assert isinstance(result, CommandResult)
    assert bearer_tokens(arm) == [f"{ARM_TOKEN}-1", f"{ARM_TOKEN}-2"]


async def test_poll_401_twice_is_raised_without_read_retries() -> None:
    sleeps = FakeClock()
    arm = ScriptedArm(unauthorized(), unauthorized(), command_state(202, "Running"))
    async with make_client(arm, clock=sleeps, credentials=FakeCredentials()) as client:
        with pytest.raises(ArmResponseError) as caught:
            await client.poll(HANDLE)

    assert (caught.value.status_code, caught.value.retryable) == (401, False)
    assert len(arm.requests) == 2
    assert sleeps.sleeps == []


async def test_a_borrowed_credential_is_asked_again_after_a_401() -> None:
    credential = FakeCredential()
    arm = ScriptedArm(unauthorized(), accepted())
    async with make_client(arm, credential=credential) as client:
        await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")
    assert len(arm.requests) == 2
    assert not credential.closed


# Throttle integration and lifecycle ----------------------------------------------------------


async def test_ratelimit_header_lowers_the_subscription_bucket() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    arm = ScriptedArm(
        command_state(202, "Running", headers={"x-ms-ratelimit-remaining-subscription-reads": "3"})
    )
    async with make_client(arm, throttle=throttle) as client:
        await client.poll(HANDLE)

    assert throttle.bucket(SUBSCRIPTION, "read").tokens == 3
    assert throttle.bucket(SUBSCRIPTION, "write").tokens == 200


async def test_429_blocks_the_bucket_for_retry_after() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    arm = ScriptedArm(
        arm_error(429, "TooManyRequests", **{"Retry-After": "4"}), command_state(202, "Running")
    )
    async with make_client(arm, throttle=throttle) as client:
        await client.poll(HANDLE)

    # The client's retry sleep is injected separately and does not move this clock, so the
    # retry's acquire waited out the whole Retry-After block.
    assert clock.sleeps == [pytest.approx(4.0)]
    assert len(arm.requests) == 2


async def test_provider_429_blocks_the_provider_budget_not_arm_reads() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    arm = ScriptedArm(arm_error(429, "Throttled", **{"Retry-After": "6"}))
    async with make_client(arm, throttle=throttle, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ThrottledError):
            await client.poll(HANDLE)

    await throttle.acquire(SUBSCRIPTION, "read")  # ARM's reads were not blocked
    assert clock.sleeps == []
    await throttle.acquire_provider(SUBSCRIPTION, submit=True)
    assert clock.sleeps == [pytest.approx(6.0)]


async def test_client_closes_only_the_http_client_it_owns() -> None:
    borrowed = httpx.AsyncClient(transport=ScriptedArm().transport)
    async with ArmClient(FakeCredential(), http_client=borrowed):
        pass
    assert not borrowed.is_closed
    await borrowed.aclose()

    owned = ArmClient(FakeCredential(), transport=ScriptedArm().transport)
    await owned.aclose()
    assert owned._http.is_closed


async def test_client_refuses_both_http_client_and_transport() -> None:
    async with httpx.AsyncClient() as http_client:
        with pytest.raises(ValueError, match="either http_client or transport"):
            ArmClient(FakeCredential(), http_client=http_client, transport=ScriptedArm().transport)
