"""The async ARM client for AKS runCommand.

Submitting is two steps, so that a caller can record "submitting" between them:
:meth:`ArmClient.prepare_submission` does everything that can fail without sending (the cluster
GET in ``auto`` mode, the clusterToken, the ARM token) and :meth:`ArmClient.send_submission`
sends the POST.

Submission safety: the runCommand POST is not idempotent. It is resent only when ARM certainly
did not accept it: a 429, a connection that was never established (connect error or timeout,
no pooled connection), a 400 ``MissingAADClusterToken`` in ``auto`` mode (the cached AAD
flag was stale; resent once with a clusterToken), or a 401. Everything ambiguous raises
:class:`SubmissionOutcomeUnknown`: a timeout or dropped connection after the request went out,
any 5xx, and ``KubernetesOperationError``/``KubernetesPerformanceError`` (the command pod was
being created and might still start). Any other error from ``send_submission`` means the POST
was certainly not accepted.

Why resending after a 401 is safe: ARM authenticates the bearer token at its front door, before
it routes the request to the AKS resource provider, and answers 401 itself when the token is
expired, revoked or otherwise not acceptable. A request that got a 401 never reached AKS, so no
command exists. The client drops that token (see ``tokens.py``) and sends the request once more
with a fresh one, for the POST and for reads alike; a second 401 is raised (non-retryable).

Reads (cluster GET, result polls) are retried with capped exponential backoff and full jitter,
honouring Retry-After, on transport errors and retryable statuses (408, 409, 429, 5xx).

Timeouts are the client's own (``transport.DEFAULT_TIMEOUT``, read 90 s, longer than ARM's
60 s proxy timeout) and are passed with every request, whatever http client it was given.

Secrets: the bearer token and the clusterToken travel only in the Authorization header and the
POST body; neither headers nor bodies are logged, and the bearer token is only ever sent to the
configured ARM endpoint (a Location pointing elsewhere is refused).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.metadata
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from controller.vocabulary import ErrorCode

from .clouds import AKS_AAD_SCOPE, AZURE_PUBLIC_CLOUD, Cloud
from .errors import (
    ArmError,
    ArmResponseError,
    ArmTransportError,
    MalformedLocationError,
    SubmissionOutcomeUnknown,
    ThrottledError,
)
from .models import (
    CLUSTER_TOKEN_MODES,
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    CommandRunning,
    CommandStatus,
    DiscoveredCluster,
    ManagedCluster,
    PreparedSubmission,
    command_status_from_json,
)
from .observe import Operation
from .retry import RetryPolicy, parse_retry_after
from .throttle import ArmThrottle, RequestKind
from .tokens import CredentialFactory, Token, TokenSource
from .transport import DEFAULT_TIMEOUT, new_http_client

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "ArmClient",
    "ClusterTokenMode",
    "PreparedSubmission",
]

DEFAULT_API_VERSION = "2024-09-01"

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
class _Request:
    """One ARM request, as sent (and, after a 401, sent again)."""

    method: str
    url: str
    subscription_id: str
    kind: RequestKind
    correlation_id: str
    body: dict[str, str] | None = field(default=None, repr=False)
    # Its share of the budget was taken beforehand (prepare_submission), not at sending.
    budget_reserved: bool = False
    # Draws on the AKS resource provider's "all other APIs" budget (runCommand, commandResults).
    provider: bool = False
    operation: Operation = "getCluster"

    @functools.cached_property
    def path(self) -> str:  # for log lines: parsed once, when one is written
        return httpx.URL(self.url).path


@dataclass(frozen=True)
class _CommandLocation:
    url: str
    subscription_id: str
    command_id: str


class ArmClient:
    """Submits runCommand requests and polls their results.

    Credentials: a borrowed ``credential`` (never closed here; a token ARM refuses cannot be
    dropped, so the retry after a 401 asks it again as is) or a ``credential_factory``: the
    client builds its credential on first use, owns it, and replaces it to drop a token ARM
    refused. Construction failures surface as CredentialError from the first call.

    HTTP: owns the httpx.AsyncClient it creates (``transport``/``ca_file``, see
    :func:`new_http_client`) or borrows ``http_client``, which it never closes. ``sleep`` and
    ``rand`` exist so tests can observe retry delays without waiting.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential | None = None,
        *,
        credential_factory: CredentialFactory | None = None,
        cloud: Cloud = AZURE_PUBLIC_CLOUD,
        api_version: str = DEFAULT_API_VERSION,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_file: str | None = None,
        throttle: ArmThrottle | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if http_client is not None and (transport is not None or ca_file is not None):
            raise ValueError("pass either http_client or transport/ca_file, not both")
        self._tokens = TokenSource(credential, factory=credential_factory)
        self._cloud = cloud
        self._arm_origin = httpx.URL(cloud.arm_endpoint)
        self._api_version = api_version
        self._owns_http = http_client is None
        self._http = http_client or new_http_client(ca_file, transport=transport)
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
        """Close what this client owns: its http client and the credentials it built."""
        if self._owns_http:
            await self._http.aclose()
        await self._tokens.aclose()

    # Operations -----------------------------------------------------------------------------

    async def get_cluster(
        self, cluster: ClusterRef, *, correlation_id: str | None = None
    ) -> ManagedCluster:
        """GET the managed cluster (retried as a read)."""
        correlation_id = correlation_id or str(uuid.uuid4())
        response = await self._read(
            self._url(cluster.resource_id), cluster.subscription_id, correlation_id, "getCluster"
        )
        return ManagedCluster.from_json(_json_object(response, correlation_id))

    async def list_clusters(
        self,
        subscription_id: str,
        resource_group: str | None = None,
        *,
        correlation_id: str | None = None,
    ) -> list[DiscoveredCluster]:
        """Every managed cluster of the subscription (or of one of its resource groups),
        following nextLink to the last page. Each page is a read, retried and budgeted as one;
        an entry without a managed cluster id is skipped (ARM never sends one)."""
        correlation_id = correlation_id or str(uuid.uuid4())
        scope = f"/subscriptions/{subscription_id}"
        if resource_group:
            scope += f"/resourceGroups/{resource_group}"
        url: str | None = self._url(f"{scope}/providers/Microsoft.ContainerService/managedClusters")
        found: list[DiscoveredCluster] = []
        while url is not None:
            body = _json_object(
                await self._read(url, subscription_id, correlation_id, "listClusters"),
                correlation_id,
            )
            for entry in body.get("value") or []:
                try:
                    found.append(DiscoveredCluster.from_json(entry))
                except (ValueError, AttributeError):
                    _LOG.debug("skipping a managedClusters entry without a cluster id")
            url = self._next_link(body.get("nextLink"), correlation_id)
        return found

    def _next_link(self, link: object, correlation_id: str) -> str | None:
        """The next page's URL, only on the ARM endpoint: the bearer token never leaves it."""
        if not link:
            return None
        url = httpx.URL(str(link))
        arm = self._arm_origin
        if (url.scheme, url.host.casefold(), url.port) != (
            arm.scheme,
            arm.host.casefold(),
            arm.port,
        ):
            raise ArmError(
                f"ARM's nextLink {str(link)[:200]!r} is not on {self._cloud.arm_endpoint}",
                code=ErrorCode.INVALID_NEXT_LINK,
                correlation_id=correlation_id,
            )
        return str(url)

    async def prepare_submission(
        self,
        cluster: ClusterRef,
        command: str,
        context: str | None,
        *,
        cluster_token: ClusterTokenMode,
        correlation_id: str,
    ) -> PreparedSubmission:
        """Everything a submission needs before its POST; never sends the POST.

        In ``auto`` mode reads the cluster (once per cluster, cached); gets the clusterToken
        when one will be sent; gets the ARM token, so that sign-in problems show here. Raises
        ValueError (empty command, unknown mode), CredentialError, ArmResponseError (the cluster
        GET was refused), ArmTransportError (ARM unreachable) or ArmError ``MalformedResponse``
        (the cluster GET's body): nothing was submitted.
        """
        if not command.strip():
            raise ValueError("command must not be empty")
        if cluster_token not in CLUSTER_TOKEN_MODES:
            raise ValueError(f"cluster_token must be auto, always or never, got {cluster_token!r}")
        token: str | None = None
        if await self._needs_cluster_token(cluster, cluster_token, correlation_id):
            token = (await self._tokens.get(AKS_AAD_SCOPE)).text
        await self._tokens.get(self._cloud.arm_scope)  # cached by the credential for the POST
        # Waiting for the write budget happens here too, before the operator claims the run: a
        # crash while a claimed POST waits for budget would leave a run Unknown that never left.
        await self._throttle.acquire(cluster.subscription_id, "write")
        await self._throttle.acquire_provider(cluster.subscription_id, submit=True)
        return PreparedSubmission(
            cluster=cluster,
            command=command,
            context=context,
            cluster_token_mode=cluster_token,
            correlation_id=correlation_id,
            cluster_token=token,
            budget_reserved=True,
        )

    async def send_submission(self, prepared: PreparedSubmission) -> CommandHandle:
        """POST runCommand and return the handle to poll.

        Raises SubmissionOutcomeUnknown (may have been accepted; never resent). Any other error
        means ARM certainly did not accept it: ArmResponseError (refused), ArmTransportError
        (never reached ARM; safe to submit again) or CredentialError (no token, so nothing more
        was sent: a token expired since prepare, or Entra refused a fresh one after a 401).
        """
        cluster, correlation_id = prepared.cluster, prepared.correlation_id
        url = self._url(f"{cluster.resource_id}/runCommand")
        attempt = 0
        while True:
            error: ArmError
            try:
                response = await self._send(
                    _Request(
                        "POST",
                        url,
                        cluster.subscription_id,
                        "write",
                        correlation_id,
                        prepared.body(),
                        budget_reserved=prepared.budget_reserved and attempt == 0,
                        provider=True,
                        operation="runCommand",
                    )
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
                    f"runCommand POST to {cluster.name} may have been accepted ({_describe(exc)})",
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
                        f"HTTP {response.status_code} {error.code}: {error.message}",
                        correlation_id=correlation_id,
                        request_id=error.request_id,
                        response_error=error,
                    )
                if (
                    folded_code == _CODE_MISSING_AAD
                    and prepared.cluster_token_mode == "auto"  # noqa: S105 - a mode
                    and prepared.cluster_token is None
                ):
                    # The cached flag was stale (the cluster became AAD-managed). A 400 is a
                    # certain refusal; resend once with a token.
                    self._aad_managed[cluster.cache_key] = True
                    token = await self._tokens.get(AKS_AAD_SCOPE)
                    prepared = dataclasses.replace(prepared, cluster_token=token.text)
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
                code=ErrorCode.INVALID_COMMAND_HANDLE,
                correlation_id=handle.correlation_id,
            ) from None
        response = await self._read(
            location.url, location.subscription_id, handle.correlation_id, "commandResult",
            provider=True,
        )  # fmt: skip
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

    async def _needs_cluster_token(
        self, cluster: ClusterRef, mode: ClusterTokenMode, correlation_id: str
    ) -> bool:
        match mode:
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

    async def _read(
        self,
        url: str,
        subscription_id: str,
        correlation_id: str,
        operation: Operation,
        *,
        provider: bool = False,
    ) -> httpx.Response:
        """GET with retries; returns a 2xx response or raises. ``provider``: the GET draws on
        the resource provider's shared budget, after any submission waiting for it."""
        attempt = 0
        while True:
            error: ArmError
            try:
                response = await self._send(
                    _Request(
                        "GET",
                        url,
                        subscription_id,
                        "read",
                        correlation_id,
                        provider=provider,
                        operation=operation,
                    )
                )
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
                not error.transient  # a refusal that takes minutes to pass is the run's to retry
                or attempt + 1 >= self._retry.max_attempts
                or (error.retry_after or 0.0) > self._retry.max_retry_after
            ):
                raise error
            delay = self._retry.delay(attempt, error.retry_after, self._rand)
            _LOG.debug("retrying GET in %.2fs after %s (try %d)", delay, error.code, attempt + 1)
            await self._sleep(delay)
            attempt += 1

    async def _send(self, request: _Request) -> httpx.Response:
        """One request; after a 401, once more with a fresh token (see the module docstring)."""
        token = await self._tokens.get(self._cloud.arm_scope)
        response = await self._send_once(request, token, acquire=not request.budget_reserved)
        if response.status_code != 401:
            return response
        _LOG.debug("%s %s -> 401: retrying once with a fresh token", request.method, request.path)
        await self._tokens.refused(token)
        token = await self._tokens.get(self._cloud.arm_scope)
        return await self._send_once(request, token, acquire=True)

    async def _send_once(self, request: _Request, token: Token, *, acquire: bool) -> httpx.Response:
        """One request: throttle (unless its budget was reserved), send, feed rate-limit headers
        back."""
        subscription_id, kind = request.subscription_id, request.kind
        if acquire:
            if request.provider:
                await self._throttle.acquire_provider(
                    subscription_id, submit=request.method == "POST"
                )
            await self._throttle.acquire(subscription_id, kind)
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {token.text}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            "x-ms-client-request-id": client_request_id,
            "x-ms-correlation-request-id": request.correlation_id,
        }
        observer, sent_at = self._throttle.observer, time.monotonic()
        try:
            response = await self._http.request(
                request.method,
                request.url,
                headers=headers,
                json=request.body,
                timeout=DEFAULT_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            observer.request(request.operation, "error", time.monotonic() - sent_at)
            _LOG.debug(
                "%s %s failed: %s client_request_id=%s correlation_id=%s",
                request.method,
                request.path,
                type(exc).__name__,
                client_request_id,
                request.correlation_id,
            )
            raise
        if _LOG.isEnabledFor(logging.DEBUG):
            _LOG.debug(
                "%s %s -> %d request_id=%s client_request_id=%s correlation_id=%s",
                request.method,
                request.path,
                response.status_code,
                response.headers.get("x-ms-request-id"),
                client_request_id,
                request.correlation_id,
            )
        observer.request(request.operation, str(response.status_code), time.monotonic() - sent_at)
        remaining = response.headers.get(_RATE_LIMIT_HEADERS[kind])
        if remaining is not None and remaining.strip().isdigit():
            self._throttle.observe(subscription_id, kind, int(remaining))
        if response.status_code == 429:
            by_provider = request.provider and _throttled_by_provider(response)
            observer.throttled(subscription_id, "provider" if by_provider else kind)
            retry_after = parse_retry_after(response.headers)
            if retry_after is not None:
                if by_provider:
                    self._throttle.block_provider(subscription_id, retry_after)
                else:
                    self._throttle.block_for(subscription_id, kind, retry_after)
        return response


def _throttled_by_provider(response: httpx.Response) -> bool:
    """ARM's own 429 says TooManyRequests; the AKS resource provider's says Throttled."""
    body = _json_or_none(response) or {}
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return isinstance(code, str) and code.casefold() == "throttled"


def _describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


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
            code=ErrorCode.MALFORMED_RESPONSE,
            retryable=True,
            correlation_id=correlation_id,
        )
    return body
