"""The targets of a RunCommandSet's round and the child each has: which clusters the round
runs on, which stage each belongs to, which failed child a retryFailedToken runs again, and how
each counts. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.arm.models import ClusterRef
from controller.core.adoption import Foreign
from controller.core.set_children import (
    FAILED_STATES,
    FINAL_STATES,
    Child,
    ChildWrite,
    SetObservation,
    child_labels,
    child_spec,
    cluster_hash,
    cluster_key,
)
from controller.core.stages import StageCounts, StageLook, StagePlan, Target, assign, plan_stages
from controller.vocabulary import CLUSTER_LABEL, RETRY_LABEL, ROUND_LABEL, STAGE_LABEL, ClusterState

COUNT_KEYS = ("total", "pending", "running", "succeeded", "failed", "unknown")
_COUNTED: dict[str, str] = {
    ClusterState.SUCCEEDED: "succeeded",
    ClusterState.FAILED: "failed",
    ClusterState.UNKNOWN: "unknown",
}


@dataclass
class Member:
    """One target of the round: its child (any round) and the child of this round, if any."""

    cluster: ClusterRef
    child: Child | None
    current: Child | None
    starting: bool = False  # started by this decision
    held_by: Foreign | None = None  # another owner holds its child's name
    stage: str | None = None  # with spec.stages: the stage it belongs to

    @property
    def blocked(self) -> bool:
        return self.held_by is not None and self.child is None

    @property
    def state(self) -> str:
        if self.blocked:
            return ClusterState.BLOCKED
        if self.starting:
            return ClusterState.PENDING
        if self.current is None or not self.current.started:
            return ClusterState.WAITING
        return self.current.state

    @property
    def count_key(self) -> str:
        state = self.state
        if state in (ClusterState.WAITING, ClusterState.BLOCKED):
            return "pending"
        return _COUNTED.get(state, "running")


def targets(seen: SetObservation) -> list[ClusterRef]:
    """The round's clusters, sorted by id: the explicit ones, those discovered now (at the
    round's start, or always with followNewClusters), and those already given a child this
    round (a cluster that vanished later keeps its child)."""
    found: dict[str, ClusterRef] = {cluster_key(c): c for c in seen.spec.clusters}
    selector = seen.spec.selector
    if seen.discovered is not None and selector is not None:
        for cluster in seen.discovered:
            if selector.matches(cluster):
                found.setdefault(cluster_key(cluster.ref), cluster.ref)
    for child in seen.children:
        if child.labels.get(ROUND_LABEL) == seen.spec.round_key:
            resource_id = (child.spec.get("cluster") or {}).get("resourceId")
            if isinstance(resource_id, str):
                ref = ClusterRef.parse(resource_id)
                found.setdefault(cluster_key(ref), ref)
    return [found[key] for key in sorted(found)]


def round_members(seen: SetObservation) -> tuple[list[Member], list[dict[str, Any]]]:
    """The round's members, in cluster id order (the rollout order is deterministic), and with
    spec.stages the targets no stage selects."""
    by_hash = {c.labels.get(CLUSTER_LABEL): c for c in seen.children}
    members: list[Member] = []
    for cluster in targets(seen):
        child = by_hash.get(cluster_hash(cluster))
        in_round = child is not None and child.labels.get(ROUND_LABEL) == seen.spec.round_key
        members.append(Member(cluster, child, child if in_round else None))
    if not seen.spec.stages:
        return members, []
    return _staged_members(seen, members)


def _staged_members(
    seen: SetObservation, members: list[Member]
) -> tuple[list[Member], list[dict[str, Any]]]:
    """The members some stage selects (each given its stage), and the unmatched targets."""
    tags = {cluster_key(c.ref): c.tags for c in seen.discovered or ()}
    found = [
        Target(
            cluster_key(m.cluster), m.cluster.resource_id,
            m.current.labels.get(STAGE_LABEL) if m.current is not None else None,
            tags.get(cluster_key(m.cluster), {}),
        )
        for m in members
    ]  # fmt: skip
    kept = seen.status.get("unmatched") or () if seen.same_round else ()
    stages, unmatched = assign(seen.spec.stages, found, kept)
    for member, stage in zip(members, stages, strict=True):
        member.stage = stage
    return [m for m in members if m.stage is not None], unmatched


def retry_failed(seen: SetObservation, members: Sequence[Member]) -> dict[str, ChildWrite]:
    """The writes that send failed children back to waiting, by child name; each such member's
    current child becomes the waiting one."""
    retries: dict[str, ChildWrite] = {}
    for member in members:
        retry = _retried(seen, member)
        if retry is not None:
            retries[retry.name] = retry
            member.current = Child(retry.name, retry.labels, retry.spec, {})  # waiting again
    return retries


def _retried(seen: SetObservation, member: Member) -> ChildWrite | None:
    """A failed child of this round that has not obeyed the current retryFailedToken yet goes
    back to waiting, with a new runToken: its RunCommand runs again when the rollout starts it.
    Once it carries the token's label it is never retried for that token again."""
    spec, child = seen.spec, member.current
    if spec.retry_key is None or child is None or not child.started:
        return None
    if child.state not in FAILED_STATES or child.labels.get(RETRY_LABEL) == spec.retry_key:
        return None
    wanted = child_spec(spec, member.cluster, started=False)
    wanted["runToken"] = f"{spec.round_key}-{spec.retry_key}"
    return ChildWrite(
        name=child.name,
        cluster=member.cluster,
        labels=child_labels(seen, member.cluster, member.stage),
        spec=wanted,
        create=False,
        old_spec=child.spec,
    )


def plan_member_stages(seen: SetObservation, members: Sequence[Member], now: datetime) -> StagePlan:
    spec = seen.spec
    counts: dict[str, StageCounts] = {}
    for member in members:
        tally = counts.setdefault(member.stage or "", StageCounts())
        tally.total += 1
        child = member.current
        if child is None or not child.started:
            tally.waiting += 1
        elif child.state in FAILED_STATES:
            tally.failures += 1
        elif child.state not in FINAL_STATES:
            tally.in_flight += 1
    approved = frozenset(stage for stage, key in spec.approvals if key == spec.round_key)
    look = StageLook(spec.stages, counts, previous_stages(seen), approved, spec.max_concurrency,
                     now)  # fmt: skip
    return plan_stages(look)


def previous_stages(seen: SetObservation) -> dict[str, Mapping[str, Any]]:
    """status.stages of this round, by name; nothing from an earlier round."""
    if not seen.same_round:
        return {}
    return {str(s.get("name")): s for s in seen.status.get("stages") or ()}


def member_counts(members: Sequence[Member]) -> dict[str, int]:
    counts = {"total": len(members), **dict.fromkeys(COUNT_KEYS[1:], 0)}
    for member in members:
        counts[member.count_key] += 1
    return counts


def stage_counts(members: Sequence[Member]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for member in members:
        tally = counts.setdefault(member.stage or "", dict.fromkeys(COUNT_KEYS, 0))
        tally["total"] += 1
        tally[member.count_key] += 1
    return counts
