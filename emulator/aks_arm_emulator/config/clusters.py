"""The `clusters:` section: the managed clusters the emulator serves."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from .patterns import CLUSTER_NAME_RE, UUID_RE
from .reader import ConfigError, Section

Mode = Literal["execute", "scripted"]


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    subscription_id: str
    resource_group: str
    name: str
    kubeconfig: Path | None = None
    location: str = "westeurope"
    aad_managed: bool = False
    disable_run_command: bool = False
    power_state: Literal["Running", "Stopped"] = "Running"
    # ARM resource tags, served by the cluster GET and the managedClusters lists.
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourcegroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )


def validate_clusters(clusters: Sequence[ClusterConfig], mode: str) -> None:
    """Raise ConfigError for a cluster ARM could not have, or a twin of another."""
    seen: set[tuple[str, str, str]] = set()
    for index, cluster in enumerate(clusters):
        where = f"clusters[{index}]"
        if not UUID_RE.match(cluster.subscription_id):
            raise ConfigError(f"{where}.subscriptionId must be a UUID: {cluster.subscription_id!r}")
        if not cluster.resource_group or len(cluster.resource_group) > 90:
            raise ConfigError(f"{where}.resourceGroup must be 1..90 characters")
        if not CLUSTER_NAME_RE.match(cluster.name):
            raise ConfigError(f"{where}.name is not a valid managed cluster name: {cluster.name!r}")
        if cluster.power_state not in ("Running", "Stopped"):
            raise ConfigError(f"{where}.powerState must be Running or Stopped")
        key = (
            cluster.subscription_id.lower(),
            cluster.resource_group.lower(),
            cluster.name.lower(),
        )
        if key in seen:
            raise ConfigError(f"{where} duplicates another cluster")
        seen.add(key)
        if mode == "execute" and cluster.kubeconfig is None:
            raise ConfigError(f"{where}.kubeconfig is required in execute mode")


def clusters_from_mapping(raw: Any, base_dir: Path) -> tuple[ClusterConfig, ...]:
    """The `clusters:` list; relative kubeconfig paths resolve from base_dir."""
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConfigError("clusters must be a list")
    return tuple(cluster_entry(item, f"clusters[{i}]", base_dir) for i, item in enumerate(raw))


def cluster_entry(data: Any, where: str, base_dir: Path) -> ClusterConfig:
    """One entry of `clusters:` (or of POST /_emulator/clusters), read but not yet validated."""
    section = Section(data, where)
    kubeconfig_raw = section.raw("kubeconfig")
    kubeconfig: Path | None = None
    if kubeconfig_raw is not None:
        if not isinstance(kubeconfig_raw, str) or not kubeconfig_raw:
            raise ConfigError(f"{where}.kubeconfig must be a path")
        kubeconfig = (base_dir / kubeconfig_raw).resolve()
    power_state = section.string("powerState", "Running")
    if power_state not in ("Running", "Stopped"):
        raise ConfigError(f"{where}.powerState must be Running or Stopped")
    cluster = ClusterConfig(
        subscription_id=section.string("subscriptionId"),
        resource_group=section.string("resourceGroup"),
        name=section.string("name"),
        kubeconfig=kubeconfig,
        location=section.string("location", "westeurope"),
        aad_managed=section.boolean("aadManaged", False),
        disable_run_command=section.boolean("disableRunCommand", False),
        power_state="Running" if power_state == "Running" else "Stopped",
        tags=_tags(section.raw("tags"), f"{where}.tags"),
    )
    section.finish()
    return cluster


def _tags(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigError(f"{where} must map tag names to string values")
    return tuple(sorted(raw.items()))
