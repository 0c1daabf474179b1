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
import importlib.metadata
import random
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from . import listing, polling, submission
from .clouds import AKS_AAD_SCOPE, AZURE_PUBLIC_CLOUD, Cloud
from .models import (
    CLUSTER_TOKEN_MODES,
    ClusterRef,
    ClusterTokenMode,
    CommandHandle,
    CommandStatus,
    DiscoveredCluster,
    ManagedCluster,
    PreparedSubmission,
)
from .retry import RetryPolicy
from .session import ArmSession, json_object
from .throttle import ArmThrottle
from .tokens import CredentialFactory, TokenSource
from .transport import DEFAULT_TIMEOUT, new_http_client

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "ArmClient",
    "ClusterTokenMode",
    "PreparedSubmission",
]

DEFAULT_API_VERSION = "2024-09-01"


def _default_user_agent() -> str:
    try:
        version = importlib.metadata.version("aks-runcommand-operator")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"aks-runcommand-operator/{version}"


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
        self._owns_http = http_client is None
        self._http = http_client or new_http_client(ca_file, transport=transport)
        self._throttle = throttle or ArmThrottle()
        self._session = ArmSession(
            cloud=cloud,
            api_version=api_version,
            http=self._http,
            tokens=self._tokens,
            throttle=self._throttle,
            retry=retry or RetryPolicy(),
            user_agent=user_agent or _default_user_agent(),
            sleep=sleep,
            rand=rand,
        )
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
        session = self._session
        response = await session.read(
            session.url(cluster.resource_id), cluster.subscription_id, correlation_id, "getCluster"
        )
        return ManagedCluster.from_json(json_object(response, correlation_id))

    async def list_clusters(
        self,
        subscription_id: str,
        resource_group: str | None = None,
        *,
        correlation_id: str | None = None,
    ) -> list[DiscoveredCluster]:
        """Every managed cluster of the subscription (or of one of its resource groups),
        following nextLink to the last page. Each page is a read, retried and budgeted as one;
        an entry without a managed cluster id is skipped (ARM never sends one). A nextLink off
        the ARM endpoint raises ArmError ``InvalidNextLink``: the bearer token never leaves it."""
        correlation_id = correlation_id or str(uuid.uuid4())
        return await listing.list_clusters(
            self._session, subscription_id, resource_group, correlation_id
        )

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
        return await submission.send_submission(self._session, prepared, self._aad_managed)

    async def poll(self, handle: CommandHandle) -> CommandStatus:
        """GET the command's result.

        202 -> CommandRunning. 200 -> CommandResult when provisioningState is terminal
        (Succeeded/Failed/Canceled, any case); any other state counts as running, so the
        caller must bound the wait with its own deadline.
        """
        return await polling.poll(self._session, handle)

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
