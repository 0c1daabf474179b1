"""A RunCommandSet's children: how each is named after its target, what it is read as, and
what the set writes to it. No I/O.

A child's name is the set's and a hash of its cluster's id, so the same set and cluster always
give the same name: creating a child twice finds the first one (AlreadyExists), never a twin. A
child's outcome counts for the round only when its status describes the child's current run
(specHash), so a stale status never counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.arm.models import ClusterRef, DiscoveredCluster
from controller.core.adoption import Foreign
from controller.core.set_spec import SetSpec
from controller.core.spec import InvalidSpec, RunSpec
from controller.vocabulary import (
    CLUSTER_LABEL,
    RETRY_LABEL,
    ROUND_LABEL,
    SET_LABEL,
    SHARD_LABEL,
    STAGE_LABEL,
    TEMPLATE_LABEL,
    State,
)

MAX_CHILD_NAME = 63
_CLUSTER_HASH_CHARS = 10
FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.UNKNOWN)
FAILED_STATES = (State.FAILED, State.UNKNOWN)  # Unknown: it may have run; counted as failed


def cluster_key(cluster: ClusterRef) -> str:
    """ARM ids are case-insensitive: one key per cluster however it is spelled."""
    return cluster.resource_id.casefold()


def cluster_hash(cluster: ClusterRef) -> str:
    return hashlib.sha256(cluster_key(cluster).encode()).hexdigest()[:_CLUSTER_HASH_CHARS]


def child_name(set_name: str, cluster: ClusterRef) -> str:
    """Stable, DNS-safe and at most 63 characters (see the module's docstring)."""
    suffix = cluster_hash(cluster)
    prefix = set_name[: MAX_CHILD_NAME - len(suffix) - 1].rstrip("-.")
    return f"{prefix}-{suffix}"


@dataclass(frozen=True)
class Child:
    """A child as read: its name, labels, spec and status."""

    name: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    resource_version: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Child:
        metadata = body.get("metadata") or {}
        return cls(
            name=str(metadata.get("name", "")),
            labels=dict(metadata.get("labels") or {}),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            resource_version=str(metadata.get("resourceVersion", "")),
        )

    @property
    def started(self) -> bool:
        return not self.spec.get("suspend", False)

    @property
    def state(self) -> str:
        """The state of the child's current run: Pending until its status describes it."""
        try:
            current = RunSpec.parse(self.spec).defines(self.status.get("specHash"))
        except InvalidSpec:
            current = False
        state = self.status.get("state")
        return str(state) if current and isinstance(state, str) else State.PENDING


@dataclass(frozen=True)
class SetObservation:
    name: str
    spec: SetSpec
    status: Mapping[str, Any]
    generation: int
    children: Sequence[Child]
    # Clusters discovered now, or None when discovery was not run for this look.
    discovered: Sequence[DiscoveredCluster] | None
    now: str
    shard: str | None = None  # the set's SHARD_LABEL, which its children inherit
    # RunCommands labelled as its children that it does not control (core/adoption.py).
    foreign: Sequence[Foreign] = ()

    @property
    def same_round(self) -> bool:
        """Whether the status describes the spec's round (not an earlier one)."""
        return self.status.get("roundKey") == self.spec.round_key


def child_spec(spec: SetSpec, cluster: ClusterRef, *, started: bool) -> dict[str, Any]:
    return {
        **spec.template,
        "cluster": {"resourceId": cluster.resource_id},
        "runToken": spec.round_key,
        "suspend": spec.template.get("suspend", False) or not started,
    }


def child_labels(
    seen: SetObservation, cluster: ClusterRef, stage: str | None = None
) -> dict[str, str]:
    spec = seen.spec
    labels = {
        SET_LABEL: seen.name,
        CLUSTER_LABEL: cluster_hash(cluster),
        ROUND_LABEL: spec.round_key,
        TEMPLATE_LABEL: spec.template_key,
    }
    if stage is not None:
        labels[STAGE_LABEL] = stage
    if spec.retry_key is not None:
        labels[RETRY_LABEL] = spec.retry_key
    if seen.shard is not None:
        labels[SHARD_LABEL] = seen.shard
    return labels


def spec_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning spec `old` into `new`: removed keys become None."""
    return {**{key: None for key in old if key not in new}, **new}


@dataclass(frozen=True)
class ChildWrite:
    """Create a child (`create`), or bring an existing one to `spec` and `labels`."""

    name: str
    cluster: ClusterRef
    labels: Mapping[str, str]
    spec: Mapping[str, Any]
    create: bool
    old_spec: Mapping[str, Any] = field(default_factory=dict)

    @property
    def patch(self) -> dict[str, Any]:
        return {
            "metadata": {"labels": dict(self.labels)},
            "spec": spec_patch(self.old_spec, self.spec),
        }
