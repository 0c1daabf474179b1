"""The managedClusters resource: the clusters served (those of the configuration, and those
added or removed while the emulator runs, /_emulator/clusters), found by id as ARM finds
them, and answered as ARM's GET and list do."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .arm_wire import ArmTarget, cluster_key, spelt
from .config import ClusterConfig
from .errors import ArmErrorAnswer
from .signin import origin_of

_SKIP_TOKEN = "$skipToken"  # noqa: S105 (a query parameter name, not a secret)


class ManagedClusters:
    def __init__(self, clusters: tuple[ClusterConfig, ...], *, page_size: int, lowercase: bool):
        self._clusters = {
            cluster_key(c.subscription_id, c.resource_group, c.name): c for c in clusters
        }
        self._page_size = page_size
        self._lowercase = lowercase

    def add(self, cluster: ClusterConfig) -> bool:
        """False when a cluster of that id exists already."""
        key = cluster_key(cluster.subscription_id, cluster.resource_group, cluster.name)
        if key in self._clusters:
            return False
        self._clusters[key] = cluster
        return True

    def remove(self, subscription_id: str, resource_group: str, name: str) -> bool:
        key = cluster_key(subscription_id, resource_group, name)
        return self._clusters.pop(key, None) is not None

    def subscription_ids(self) -> list[str]:
        """The subscriptions of the clusters served now (lower case, sorted)."""
        return sorted({key[0] for key in self._clusters})

    def find(self, target: ArmTarget) -> ClusterConfig:
        """The cluster the path names, or ARM's 404 for the first part of its id not found."""
        sub, rg, name = cluster_key(target.subscription_id, target.resource_group, target.name)
        cluster = self._clusters.get((sub, rg, name))
        if cluster is not None:
            return cluster
        if not any(key[0] == sub for key in self._clusters):
            raise ArmErrorAnswer(
                404,
                "SubscriptionNotFound",
                f"The subscription '{target.subscription_id}' could not be found.",
            )
        if not any(key[0] == sub and key[1] == rg for key in self._clusters):
            raise ArmErrorAnswer(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{target.resource_group}' could not be found.",
            )
        raise ArmErrorAnswer(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.ContainerService/managedClusters/{target.name}' under "
            f"resource group '{target.resource_group}' was not found.",
        )

    def list_page(self, request: web.Request, listing: re.Match[str]) -> web.Response:
        """One page of a subscription's (or resource group's) managed clusters, in a stable
        order; `nextLink` carries the offset of the next page, as ARM's `$skipToken` does."""
        sub, rg = listing.group("sub").lower(), (listing.group("rg") or "").lower()
        clusters = sorted(
            (c for key, c in self._clusters.items() if key[0] == sub and (not rg or key[1] == rg)),
            key=lambda c: c.resource_id.lower(),
        )
        try:
            start = int(request.query.get(_SKIP_TOKEN, "0"))
        except ValueError:
            raise ArmErrorAnswer(400, "InvalidParameter", "The $skipToken is not valid.",
                                 target="$skipToken") from None  # fmt: skip
        end = start + self._page_size
        body: dict[str, Any] = {"value": [self.cluster_json(c) for c in clusters[start:end]]}
        if end < len(clusters):
            next_url = request.url.with_query({**request.query, _SKIP_TOKEN: str(end)})
            body["nextLink"] = f"{origin_of(request)}{next_url.path_qs}"
        return web.json_response(body)

    def cluster_json(self, cluster: ClusterConfig) -> dict[str, Any]:
        """The cluster as ARM's GET answers it (the properties runCommand depends on)."""
        return {
            "id": cluster.resource_id,
            "name": cluster.name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": cluster.location,
            "tags": dict(cluster.tags),
            "properties": {
                "provisioningState": spelt("Succeeded", self._lowercase),
                "powerState": {"code": cluster.power_state},
                "aadProfile": {"managed": True, "enableAzureRBAC": False}
                if cluster.aad_managed
                else None,
                "apiServerAccessProfile": {
                    "enablePrivateCluster": True,
                    "disableRunCommand": cluster.disable_run_command,
                },
            },
        }
