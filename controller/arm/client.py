"""The async ARM client for AKS runCommand.

Submission safety: the runCommand POST is not idempotent. It is resent only when ARM certainly
did not accept it: a 429, a connection that was never established (connect error or timeout,
no pooled connection), or a 400 ``MissingAADClusterToken`` in ``auto`` mode (the cached AAD
flag was stale; resent once with a clusterToken). Everything ambiguous raises
:class:`SubmissionOutcomeUnknown`: a timeout or dropped connection after the request went out,
any 5xx, and ``KubernetesOperationError``/``KubernetesPerformanceError`` (the command pod was
being created and might still start).

Reads (cluster GET, result polls) are retried with capped exponential backoff and full jitter,
honouring Retry-After, on transport errors and retryable statuses (408, 409, 429, 5xx).

Secrets: the bearer token and the clusterToken travel only in the Authorization header and the
POST body; neither headers nor bodies are logged, and the bearer token is only ever sent to the
configured ARM endpoint (a Location pointing elsewhere is refused).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)

from .clouds import AKS_AAD_SCOPE, AZURE_PUBLIC_CLOUD, Cloud
from .errors import (
    ArmError,
    ArmResponseError,
    ArmTransportError,
    CredentialError,
    MalformedLocationError,
    SubmissionOutcomeUnknown,
    ThrottledError,
)
from .models import (
    ClusterRef,
    CommandHandle,
    CommandRunning,
    CommandStatus,
    ManagedCluster,
    command_status_from_json,
)
from .retry import RetryPolicy, parse_retry_after
from .throttle import ArmThrottle, RequestKind

__all__ = ["DEFAULT_API_VERSION", "DEFAULT_TIMEOUT", "ArmClient", "ClusterTokenMode"]

DEFAULT_API_VERSION = "2024-09-01"
# ARM proxies runCommand for up to 60 s (the pod gets 30 s to start): read longer than that,
# so ARM's own 504 arrives rather than an ambiguous client-side timeout.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=90.0, write=30.0, pool=30.0)

ClusterTokenMode = Literal["auto", "always", "never"]

_LOG = logging.getLogger("controller.arm")
_RATE_LIMIT_HEADERS: dict[RequestKind, str] = {
    "read": "x-ms-ratelimit-remaining-subscription-reads",
    "write": "x-ms-ratelimit-remaining-subscription-writes",
}
# Raised before any byte of the request left this process.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The command pod was being started when ARM answered: it may still run the command.
_POD_START_CODES = frozenset({"kubernetesoperationerror", "kubernetesperformanceerror"})
_CODE_MISSING_AAD = "missingaadclustertoken"


def _default_user_agent() -> str:
    try:
        version = importlib.metadata.version("aks-runcommand-operator")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"aks-runcommand-operator/{version}"


@dataclass(frozen=True)
class _CommandLocation:
    url: str
    subscription_id: str
    command_id: str


class ArmClient:
    """Submits runCommand requests and polls their results.

    Owns the httpx.AsyncClient it creates (from ``transport``/``ca_file``/``timeout``) or
    borrows ``http_client``; borrowed clients and the credential are never closed here.
    ``sleep`` and ``rand`` exist so tests can observe retry delays without waiting.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        cloud: Cloud = AZURE_PUBLIC_CLOUD,
        cluster_token_mode: ClusterTokenMode = "auto",  # noqa: S107 - a mode, not a secret
        api_version: str = DEFAULT_API_VERSION,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_file: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        throttle: ArmThrottle | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if cluster_token_mode not in ("auto", "always", "never"):
            raise ValueError(
                f"cluster_token_mode must be auto, always or never, got {cluster_token_mode!r}"
            )
        if http_client is not None and (transport is not None or ca_file is not None):
            raise ValueError("pass either http_client or transport/ca_file, not both")
        self._credential = credential
        self._cloud = cloud
        self._arm_origin = httpx.URL(cloud.arm_endpoint)
        self._cluster_token_mode = cluster_token_mode
        self._api_version = api_version
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport,
            verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
            timeout=timeout,
            follow_redirects=False,
        )
        self._throttle = throttle or ArmThrottle()
        self._retry = retry or RetryPolicy()
        self._user_agent = user_agent or _default_user_agent()
        self._sleep = sleep
        self._rand = rand
        # Per cluster resource id (casefolded): does it need a clusterToken? Filled in auto mode.
        self._aad_managed: dict[str, bool] = {}
        self._aad_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # Operations -----------------------------------------------------------------------------

    async def get_cluster(
        self, cluster: ClusterRef, *, correlation_id: str | None = None
    ) -> ManagedCluster:
        """GET the managed cluster (retried as a read)."""
        correlation_id = correlation_id or str(uuid.uuid4())
        response = await self._read(
            self._url(cluster.resource_id), cluster.subscription_id, correlation_id
        )
        return ManagedCluster.from_json(_json_object(response, correlation_id))

    async def submit(
        self,
        cluster: ClusterRef,
        command: str,
        context: str | None = None,
        *,
        correlation_id: str | None = None,
    ) -> CommandHandle:
        """POST runCommand and return the handle to poll.

        Pass ``correlation_id`` after persisting it, so an interrupted submit can be traced in
        ARM's logs. Raises SubmissionOutcomeUnknown (never resent), ArmResponseError (refused),
        ArmTransportError (never reached ARM; safe to submit again) or CredentialError.
        """
        if not command.strip():
            raise ValueError("command must not be empty")
        correlation_id = correlation_id or str(uuid.uuid4())
        url = self._url(f"{cluster.resource_id}/runCommand")
        with_cluster_token = await self._needs_cluster_token(cluster, correlation_id)
        body = await self._run_command_body(command, context, with_cluster_token)
        attempt = 0
        while True:
            error: ArmError
            try:
                response = await self._send(
                    "POST", url, cluster.subscription_id, "write", correlation_id, body
                )
            except _NOT_SENT_ERRORS as exc:
                error = ArmTransportError(
                    f"runCommand POST to {cluster.name} was not sent: {_describe(exc)}",
                    correlation_id=correlation_id,
                )
                if attempt + 1 >= self._retry.submit_max_attempts:
                    raise error from exc
            except httpx.HTTPError as exc:
                raise SubmissionOutcomeUnknown(
                    f"runCommand POST to {cluster.name} may have been accepted ({_describe(exc)});"
                    f" not resent. Correlation id {correlation_id}",
                    correlation_id=correlation_id,
                ) from exc
            else:
                if response.is_success:
                    return self._accepted(response, correlation_id)
                error = ArmResponseError.from_response(response, correlation_id=correlation_id)
                folded_code = error.code.casefold()
                if response.status_code >= 500 or folded_code in _POD_START_CODES:
                    raise SubmissionOutcomeUnknown(
                        f"runCommand POST to {cluster.name} may have been accepted: ARM answered "
                        f"HTTP {response.status_code} {error.code}: {error.message}; not resent",
                        correlation_id=correlation_id,
                        request_id=error.request_id,
                        response_error=error,
                    )
                if (
                    folded_code == _CODE_MISSING_AAD
                    and self._cluster_token_mode == "auto"  # noqa: S105 - a mode
                    and not with_cluster_token
                ):
                    # The cached flag was stale (the cluster became AAD-managed). A 400 is a
                    # certain refusal; resend once with a token.
                    self._aad_managed[cluster.cache_key] = True
                    with_cluster_token = True
                    body = await self._run_command_body(command, context, with_cluster_token)
                    continue
                if (
                    not isinstance(error, ThrottledError)
                    or attempt + 1 >= self._retry.submit_max_attempts
                    or (error.retry_after or 0.0) > self._retry.max_retry_after
                ):
                    raise error
            await self._sleep(self._retry.delay(attempt, error.retry_after, self._rand))
            attempt += 1

    async def poll(self, handle: CommandHandle) -> CommandStatus:
        """GET the command's result.

        202 -> CommandRunning. 200 -> CommandResult when provisioningState is terminal
        (Succeeded/Failed/Canceled, any case); any other state counts as running, so the
        caller must bound the wait with its own deadline.
        """
        try:
            location = self._parse_location(handle.location)
        except ValueError as exc:
            raise ArmError(
                f"command handle {handle.command_id} has an unusable location: {exc}",
                code="InvalidCommandHandle",
                correlation_id=handle.correlation_id,
            ) from None
        response = await self._read(location.url, location.subscription_id, handle.correlation_id)
        retry_after = parse_retry_after(response.headers)
        if response.status_code != 200:
            # 202: still running; the live service sends a body, the spec does not promise one.
            running = _json_or_none(response) or {}
            status = command_status_from_json(running, retry_after)
            return CommandRunning(
                started_at=status.started_at,
                retry_after=retry_after,
                provisioning_state=status.provisioning_state,
            )
        return command_status_from_json(_json_object(response, handle.correlation_id), retry_after)

    # Submission helpers ---------------------------------------------------------------------

    async def _needs_cluster_token(self, cluster: ClusterRef, correlation_id: str) -> bool:
        match self._cluster_token_mode:
            case "always":
                return True
            case "never":
                return False
        key = cluster.cache_key
        cached = self._aad_managed.get(key)
        if cached is not None:
            return cached
        # One GET per cluster even when several submits race.
        async with self._aad_locks.setdefault(key, asyncio.Lock()):
            cached = self._aad_managed.get(key)
            if cached is None:
                managed = await self.get_cluster(cluster, correlation_id=correlation_id)
                cached = self._aad_managed[key] = managed.aad_managed
            return cached

    async def _run_command_body(
        self, command: str, context: str | None, with_cluster_token: bool
    ) -> dict[str, str]:
        body = {"command": command}
        if context:
            body["context"] = context
        if with_cluster_token:
            body["clusterToken"] = await self._access_token(AKS_AAD_SCOPE)
        return body

    def _accepted(self, response: httpx.Response, correlation_id: str) -> CommandHandle:
        location = response.headers.get("location")
        request_id = response.headers.get("x-ms-request-id")
        try:
            parsed = self._parse_location(location)
        except ValueError as exc:
            # Accepted, so it may run: never resubmit. Surfaced as an outcome-unknown error.
            raise MalformedLocationError(
                f"ARM accepted the command (HTTP {response.status_code}, request id "
                f"{request_id}) but its Location cannot be polled: {exc}. The command may run; "
                "it was not resubmitted and its result cannot be read",
                correlation_id=correlation_id,
                request_id=request_id,
                location=location,
            ) from None
        return CommandHandle(
            command_id=parsed.command_id,
            location=parsed.url,
            correlation_id=correlation_id,
            retry_after=parse_retry_after(response.headers),
        )

    def _parse_location(self, location: str | None) -> _CommandLocation:
        """Validate a commandResults URL. Raises ValueError saying what is wrong."""
        if not location:
            raise ValueError("the Location header is missing")
        excerpt = location if len(location) <= 200 else location[:199] + "…"
        try:
            url = httpx.URL(location)
        except httpx.InvalidURL:
            raise ValueError(f"Location {excerpt!r} is not a URL") from None
        if not url.is_absolute_url:
            raise ValueError(f"Location {excerpt!r} is not absolute")
        origin = (url.scheme, url.host.casefold(), url.port)
        arm = self._arm_origin
        if origin != (arm.scheme, arm.host.casefold(), arm.port):
            # The bearer token must not leave the ARM endpoint.
            raise ValueError(f"Location {excerpt!r} is not on {self._cloud.arm_endpoint}")
        segments = url.path.split("/")
        if (
            len(segments) < 5
            or segments[1].casefold() != "subscriptions"
            or segments[-2].casefold() != "commandresults"
            or not segments[-1]
        ):
            raise ValueError(f"Location {excerpt!r} is not a commandResults URL")
        if "api-version" not in url.params:
            url = url.copy_merge_params({"api-version": self._api_version})
        return _CommandLocation(str(url), subscription_id=segments[2], command_id=segments[-1])

    # Transport ------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._cloud.arm_endpoint}{path}?api-version={self._api_version}"

    async def _read(self, url: str, subscription_id: str, correlation_id: str) -> httpx.Response:
        """GET with retries; returns a 2xx response or raises."""
        attempt = 0
        while True:
            error: ArmError
            try:
                response = await self._send("GET", url, subscription_id, "read", correlation_id)
            except httpx.TransportError as exc:
                error = ArmTransportError(
                    f"GET {httpx.URL(url).path} failed: {_describe(exc)}",
                    correlation_id=correlation_id,
                )
                error.__cause__ = exc
            else:
                if response.is_success:
                    return response
                error = ArmResponseError.from_response(response, correlation_id=correlation_id)
            if (
                not error.retryable
                or attempt + 1 >= self._retry.max_attempts
                or (error.retry_after or 0.0) > self._retry.max_retry_after
            ):
                raise error
            delay = self._retry.delay(attempt, error.retry_after, self._rand)
            _LOG.debug("retrying GET in %.2fs after %s (try %d)", delay, error.code, attempt + 1)
            await self._sleep(delay)
            attempt += 1

    async def _send(
        self,
        method: str,
        url: str,
        subscription_id: str,
        kind: RequestKind,
        correlation_id: str,
        body: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request: throttle, authenticate, send, feed rate-limit headers back."""
        await self._throttle.acquire(subscription_id, kind)
        token = await self._access_token(self._cloud.arm_scope)
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            "x-ms-client-request-id": client_request_id,
            "x-ms-correlation-request-id": correlation_id,
        }
        path = httpx.URL(url).path
        try:
            response = await self._http.request(method, url, headers=headers, json=body)
        except httpx.HTTPError as exc:
            _LOG.debug(
                "%s %s failed: %s client_request_id=%s correlation_id=%s",
                method,
                path,
                type(exc).__name__,
                client_request_id,
                correlation_id,
            )
            raise
        _LOG.debug(
            "%s %s -> %d request_id=%s client_request_id=%s correlation_id=%s",
            method,
            path,
            response.status_code,
            response.headers.get("x-ms-request-id"),
            client_request_id,
            correlation_id,
        )
        remaining = response.headers.get(_RATE_LIMIT_HEADERS[kind])
        if remaining is not None and remaining.strip().isdigit():
            self._throttle.observe(subscription_id, kind, int(remaining))
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers)
            if retry_after is not None:
                self._throttle.block_for(subscription_id, kind, retry_after)
        return response

    async def _access_token(self, scope: str) -> str:
        credential_name = type(self._credential).__name__
        try:
            access_token = await self._credential.get_token(scope)
        except ClientAuthenticationError as exc:
            raise CredentialError(
                f"{credential_name} could not get a token for {scope}: {_first_line(exc.message)}."
                " Check the tenant id, client id and secret, certificate or federated credential",
                code="AuthenticationFailed",
            ) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise CredentialError(
                f"{credential_name} could not reach its token endpoint for {scope}: "
                f"{_first_line(exc.message)}",
                code="TokenEndpointUnreachable",
                retryable=True,
            ) from exc
        return access_token.token


def _describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _first_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else "no detail given"


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _json_object(response: httpx.Response, correlation_id: str) -> dict[str, Any]:
    body = _json_or_none(response)
    if body is None:
        raise ArmError(
            f"ARM answered HTTP {response.status_code} to {response.request.method} "
            f"{response.request.url.path} without a JSON object body "
            f"(request id {response.headers.get('x-ms-request-id')})",
            code="MalformedResponse",
            retryable=True,
            correlation_id=correlation_id,
        )
    return body
