"""Listing managed clusters: one page after another, each a budgeted, retried read."""

from __future__ import annotations

import logging

import httpx

from controller.vocabulary import ErrorCode

from .errors import ArmError
from .models import DiscoveredCluster
from .session import ArmSession, json_object

_LOG = logging.getLogger("controller.arm")


async def list_clusters(
    session: ArmSession, subscription_id: str, resource_group: str | None, correlation_id: str
) -> list[DiscoveredCluster]:
    """Every managed cluster of the subscription (or of one of its resource groups), following
    nextLink to the last page (see ``ArmClient.list_clusters``)."""
    scope = f"/subscriptions/{subscription_id}"
    if resource_group:
        scope += f"/resourceGroups/{resource_group}"
    url: str | None = session.url(f"{scope}/providers/Microsoft.ContainerService/managedClusters")
    found: list[DiscoveredCluster] = []
    while url is not None:
        body = json_object(
            await session.read(url, subscription_id, correlation_id, "listClusters"),
            correlation_id,
        )
        for entry in body.get("value") or []:
            try:
                found.append(DiscoveredCluster.from_json(entry))
            except (ValueError, AttributeError):
                _LOG.debug("skipping a managedClusters entry without a cluster id")
        url = _next_link(session, body.get("nextLink"), correlation_id)
    return found


def _next_link(session: ArmSession, link: object, correlation_id: str) -> str | None:
    """The next page's URL, only on the ARM endpoint: the bearer token never leaves it."""
    if not link:
        return None
    url = httpx.URL(str(link))
    if not session.on_arm(url):
        raise ArmError(
            f"ARM's nextLink {str(link)[:200]!r} is not on {session.cloud.arm_endpoint}",
            code=ErrorCode.INVALID_NEXT_LINK,
            correlation_id=correlation_id,
        )
    return str(url)
