"""The HTTP client every ARM request goes through, with the timeouts ARM needs.

ARM holds a runCommand POST until the command pod starts: up to its 60 s proxy timeout (the pod
gets 30 s). A client that stops reading sooner turns a POST ARM may well accept into "outcome
unknown", so the read timeout is longer than ARM's: ARM's own 504 arrives instead. These values
are not options. :func:`new_http_client` builds the shared pool with them, and
:class:`~controller.arm.client.ArmClient` also passes them with every request, so a borrowed
``httpx.AsyncClient`` built with other timeouts cannot shorten them by accident.
"""

from __future__ import annotations

import ssl

import httpx

__all__ = ["DEFAULT_TIMEOUT", "new_http_client"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=90.0, write=30.0, pool=30.0)


def new_http_client(
    ca_file: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An AsyncClient for ARM: the designed timeouts, no redirects (a bearer token must not
    follow one), TLS verified against ``ca_file`` when given (an emulator's CA), else the system
    store. ``transport`` is the test seam (httpx.MockTransport). The caller closes it."""
    return httpx.AsyncClient(
        transport=transport,
        verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
    )
