"""One ARM endpoint's requests: the bearer token, the budget, the retries of reads.

Every request goes through :meth:`ArmSession.send`: the throttle (unless its budget was reserved
beforehand), the headers, one resend with a fresh token after a 401 (see ``client.py``), and the
rate-limit headers fed back to the throttle. Reads go through :meth:`ArmSession.read`, which
retries them; the runCommand POST is never retried here (``submission.py`` decides).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from controller.vocabulary import ErrorCode

from .clouds import Cloud
from .errors import ArmError, ArmResponseError, ArmTransportError
from .models import ArmCode
from .observe import Operation
from .retry import RetryPolicy, parse_retry_after
from .throttle import ArmThrottle, RequestKind
from .tokens import Token, TokenSource
from .transport import DEFAULT_TIMEOUT

_LOG = logging.getLogger("controller.arm")
_RATE_LIMIT_HEADERS: dict[RequestKind, str] = {
    "read": "x-ms-ratelimit-remaining-subscription-reads",
    "write": "x-ms-ratelimit-remaining-subscription-writes",
}


@dataclass(frozen=True)
class Request:
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


@dataclass
class ArmSession:
    """What every request of one client shares. Owns nothing: the client closes what it owns."""

    cloud: Cloud
    api_version: str
    http: httpx.AsyncClient
    tokens: TokenSource
    throttle: ArmThrottle
    retry: RetryPolicy
    user_agent: str
    sleep: Callable[[float], Awaitable[None]]
    rand: Callable[[], float]

    @functools.cached_property
    def _arm_origin(self) -> tuple[str, str, int | None]:
        arm = httpx.URL(self.cloud.arm_endpoint)
        return arm.scheme, arm.host.casefold(), arm.port

    def url(self, path: str) -> str:
        return f"{self.cloud.arm_endpoint}{path}?api-version={self.api_version}"

    def on_arm(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on the ARM endpoint: the bearer token never leaves it."""
        return (url.scheme, url.host.casefold(), url.port) == self._arm_origin

    async def read(
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
        request = Request(
            "GET", url, subscription_id, "read", correlation_id,
            provider=provider, operation=operation,
        )  # fmt: skip
        attempt = 0
        while True:
            error: ArmError
            try:
                response = await self.send(request)
            except httpx.TransportError as exc:
                error = ArmTransportError(
                    f"GET {httpx.URL(url).path} failed: {describe(exc)}",
                    correlation_id=correlation_id,
                )
                error.__cause__ = exc
            else:
                if response.is_success:
                    return response
                error = ArmResponseError.from_response(response, correlation_id=correlation_id)
            if (
                not error.transient  # a refusal that takes minutes to pass is the run's to retry
                or attempt + 1 >= self.retry.max_attempts
                or (error.retry_after or 0.0) > self.retry.max_retry_after
            ):
                raise error
            delay = self.retry.delay(attempt, error.retry_after, self.rand)
            _LOG.debug("retrying GET in %.2fs after %s (try %d)", delay, error.code, attempt + 1)
            await self.sleep(delay)
            attempt += 1

    async def send(self, request: Request) -> httpx.Response:
        """One request; after a 401, once more with a fresh token (see ``client.py``)."""
        token = await self.tokens.get(self.cloud.arm_scope)
        response = await self._send_once(request, token, acquire=not request.budget_reserved)
        if response.status_code != 401:
            return response
        _LOG.debug("%s %s -> 401: retrying once with a fresh token", request.method, request.path)
        await self.tokens.refused(token)
        token = await self.tokens.get(self.cloud.arm_scope)
        return await self._send_once(request, token, acquire=True)

    async def _send_once(self, request: Request, token: Token, *, acquire: bool) -> httpx.Response:
        """One request: throttle (unless its budget was reserved), send, feed rate-limit headers
        back."""
        if acquire:
            if request.provider:
                await self.throttle.acquire_provider(
                    request.subscription_id, submit=request.method == "POST"
                )
            await self.throttle.acquire(request.subscription_id, request.kind)
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {token.text}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
            "x-ms-client-request-id": client_request_id,
            "x-ms-correlation-request-id": request.correlation_id,
        }
        observer, sent_at = self.throttle.observer, time.monotonic()
        try:
            response = await self.http.request(
                request.method, request.url, headers=headers, json=request.body,
                timeout=DEFAULT_TIMEOUT,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            observer.request(request.operation, "error", time.monotonic() - sent_at)
            _LOG.debug(
                "%s %s failed: %s client_request_id=%s correlation_id=%s",
                request.method, request.path, type(exc).__name__, client_request_id,
                request.correlation_id,
            )  # fmt: skip
            raise
        if _LOG.isEnabledFor(logging.DEBUG):
            _LOG.debug(
                "%s %s -> %d request_id=%s client_request_id=%s correlation_id=%s",
                request.method, request.path, response.status_code,
                response.headers.get("x-ms-request-id"), client_request_id,
                request.correlation_id,
            )  # fmt: skip
        observer.request(request.operation, str(response.status_code), time.monotonic() - sent_at)
        self._observe_budget(request, response)
        return response

    def _observe_budget(self, request: Request, response: httpx.Response) -> None:
        """Feed ARM's rate-limit headers and a 429's Retry-After back to the throttle."""
        subscription_id, kind = request.subscription_id, request.kind
        remaining = response.headers.get(_RATE_LIMIT_HEADERS[kind])
        if remaining is not None and remaining.strip().isdigit():
            self.throttle.observe(subscription_id, kind, int(remaining))
        if response.status_code != 429:
            return
        by_provider = request.provider and _throttled_by_provider(response)
        self.throttle.observer.throttled(subscription_id, "provider" if by_provider else kind)
        retry_after = parse_retry_after(response.headers)
        if retry_after is not None:
            if by_provider:
                self.throttle.block_provider(subscription_id, retry_after)
            else:
                self.throttle.block_for(subscription_id, kind, retry_after)


def _throttled_by_provider(response: httpx.Response) -> bool:
    """ARM's own 429 says TooManyRequests; the AKS resource provider's says Throttled."""
    body = json_or_none(response) or {}
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return isinstance(code, str) and code.casefold() == ArmCode.THROTTLED.casefold()


def describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def json_object(response: httpx.Response, correlation_id: str) -> dict[str, Any]:
    body = json_or_none(response)
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
