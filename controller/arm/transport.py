"""The HTTP client every ARM request goes through, with the timeouts ARM needs.

ARM holds a runCommand POST until the command pod starts: up to its 60 s proxy timeout (the pod
gets 30 s). A client that stops reading sooner turns a POST ARM may well accept into "outcome
unknown", so the read timeout is longer than ARM's: ARM's own 504 arrives instead. These values
are not options. :func:`new_http_client` builds the shared pool with them, and
:class:`~controller.arm.client.ArmClient` also passes them with every request, so a borrowed
``httpx.AsyncClient`` built with other timeouts cannot shorten them by accident.

The wire under httpx is aiohttp (:class:`AiohttpTransport`), kopf's own HTTP client: on this
project's 2-core machine an ARM request cost 1.8 to 3.8 ms of CPU through httpcore and 0.35 ms
through aiohttp. The client API, the error types and the test seam (``httpx.MockTransport``)
stay httpx's. The transport is written here rather than taken from
httpx-aiohttp 0.2.0, which maps every ``aiohttp.ClientConnectionError`` — a server that drops a
POST it has already read included — to ``httpx.ConnectTimeout``, "never sent": that would resend
a runCommand ARM may have accepted.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request

import aiohttp
import httpx

__all__ = ["DEFAULT_TIMEOUT", "LONGEST_REQUEST_SECONDS", "AiohttpTransport", "new_http_client"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=90.0, write=30.0, pool=30.0)
# The longest one request can take before its timeouts end it: a claim on a POST must outlive it.
LONGEST_REQUEST_SECONDS = sum(
    limit or 0.0
    for limit in (
        DEFAULT_TIMEOUT.connect,
        DEFAULT_TIMEOUT.read,
        DEFAULT_TIMEOUT.write,
        DEFAULT_TIMEOUT.pool,
    )
)
_MAX_CONNECTIONS = 100
# aiohttp sets these from the body it sends and decodes what it receives.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "accept-encoding", "connection"})
_DECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _as_httpx_error(error: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """Map aiohttp's errors onto httpx's, keeping the one distinction exactly-once rests on:
    only a connection that was never made means the request was never sent."""
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, aiohttp.ConnectionTimeoutError):  # pool wait or connect: not sent
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake: not sent
        return httpx.ConnectError(message, request=request)
    if isinstance(error, aiohttp.ServerTimeoutError):  # no answer in time: it may have arrived
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError):  # dropped after sending, maybe read
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)  # anything else: sent, answer unknown


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session (created on first use, in the running loop).

    aiohttp never resends a POST; it retries a GET once on a kept-alive connection the server had
    closed, which is safe. Bodies are read whole here, so a failure while reading one maps like
    any other. aiohttp has no write timeout: a request body is bounded by ARM's 1 MiB limit."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        # HTTPS_PROXY/NO_PROXY, read once as httpx does. (aiohttp's trust_env looks them up in
        # a worker thread on every request: a sixth of aiohttp's own work per request.)
        self._proxies = urllib.request.getproxies()

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one transport per process, few hosts
    def _proxy(self, scheme: str, host: str) -> str | None:
        if not self._proxies or urllib.request.proxy_bypass(host):
            return None
        return self._proxies.get(scheme)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=_MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector)
        timeouts = request.extensions.get("timeout", {})
        connect, pool = timeouts.get("connect"), timeouts.get("pool")
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=timeouts.get("read"),
        )
        headers = [(k, v) for k, v in request.headers.multi_items() if k not in _HOP_BY_HOP]
        try:
            async with self._session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=timeout,
                proxy=self._proxy(request.url.scheme, request.url.host),
            ) as answer:
                content = await answer.read()
        except aiohttp.ClientError as error:
            raise _as_httpx_error(error, request) from error
        except TimeoutError as error:  # aiohttp raises the bare one for some read timeouts
            raise httpx.ReadTimeout(str(error) or "read timeout", request=request) from error
        kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in _DECODED]
        return httpx.Response(answer.status, headers=kept, content=content, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def new_http_client(
    ca_file: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An AsyncClient for ARM: the designed timeouts, no redirects (a bearer token must not
    follow one), TLS verified against ``ca_file`` when given (an emulator's CA), else the
    certifi store httpx uses. ``transport`` is the test seam (httpx.MockTransport); by default
    :class:`AiohttpTransport`. The caller closes it."""
    if transport is None:
        context = (
            ssl.create_default_context(cafile=ca_file) if ca_file else httpx.create_ssl_context()
        )
        transport = AiohttpTransport(context)
    return httpx.AsyncClient(transport=transport, timeout=DEFAULT_TIMEOUT, follow_redirects=False)
