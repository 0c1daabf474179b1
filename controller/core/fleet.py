"""RunCommandSet decisions: from a set's spec and status, the clusters found for it and its
children, decide which children to create or change and what the set's status says. No I/O.

A round is one run of the template on every target. It is named by a hash of the set's
runToken and template (the round key); every child of the round carries it as its runToken, so a
new round is a new run of each child, and a label, so children of earlier rounds are told apart.

At a round's start every target gets its child, suspended; the rollout lifts `suspend` on the
children it starts, in the order of their cluster ids, at most maxConcurrency at a time, and
starts none once more than maxFailures have failed. A child's outcome counts for the round only
when its status describes the child's current run (specHash), so a stale status never counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.arm.models import ClusterRef, DiscoveredCluster
from controller.core.adoption import Foreign, describe
from controller.core.bounds import check_bound, resolve_bound
from controller.core.conditions import conditions_for
from controller.core.decide import Event as SetEvent
from controller.core.set_events import round_events
from controller.core.spec import InvalidSpec, RunSpec
from controller.core.stages import (
    Stage,
    StageCounts,
    StageLook,
    StagePlan,
    Target,
    assign,
    parse_approvals,
    parse_stages,
    parse_time,
    plan_stages,
    round_verdict,
    stage_entries,
    stage_events,
)
from controller.vocabulary import (
    CLUSTER_LABEL,
    RETRY_LABEL,
    ROUND_LABEL,
    SET_LABEL,
    SHARD_LABEL,
    STAGE_LABEL,
    TEMPLATE_LABEL,
    Reason,
)

MAX_CLUSTER_ENTRIES = 50  # per-cluster summaries kept in status: failures first
MAX_CHILD_NAME = 63
_CLUSTER_HASH_CHARS = 10
_FINAL = ("Succeeded", "Failed", "Unknown")
_FAILED = ("Failed", "Unknown")  # Unknown: it may have run; counted against maxFailures
_COUNT_KEYS = ("total", "pending", "running", "succeeded", "failed", "unknown")


# Spec ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagIn:
    key: str
    values: frozenset[str]


@dataclass(frozen=True)
class Selector:
    subscriptions: tuple[str, ...]
    resource_groups: tuple[str, ...]
    match_tags: Mapping[str, str]
    match_expressions: tuple[TagIn, ...]

    def matches(self, cluster: DiscoveredCluster) -> bool:
        if self.resource_groups and cluster.resource_group.casefold() not in {
            group.casefold() for group in self.resource_groups
        }:
            return False
        if any(cluster.tags.get(key) != value for key, value in self.match_tags.items()):
            return False
        return all(cluster.tags.get(e.key) in e.values for e in self.match_expressions)

    def scopes(self) -> list[tuple[str, str | None]]:
        """The (subscription, resource group) lists to read: one per group, or the whole
        subscription when no group is named."""
        groups: Sequence[str | None] = self.resource_groups or (None,)
        return [(sub, group) for sub in self.subscriptions for group in groups]


@dataclass(frozen=True)
class SetSpec:
    template: Mapping[str, Any]
    clusters: tuple[ClusterRef, ...]
    selector: Selector | None
    run_token: str | None
    follow_new_clusters: bool
    max_concurrency: int | str | None
    max_failures: int | str | None
    suspend: bool
    round_key: str
    retry_key: str | None  # hash of spec.retryFailedToken
    template_key: str = ""  # hash of the template alone (see core/adoption.py)
    stages: tuple[Stage, ...] = ()  # core/stages.py
    approvals: frozenset[tuple[str, str]] = frozenset()  # (stage, roundKey)
    progress_deadline_seconds: int | None = None

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> SetSpec:
        try:
            return cls._parse(spec)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidSpec(f"invalid spec: {error}") from error

    @classmethod
    def _parse(cls, spec: Mapping[str, Any]) -> SetSpec:
        template = dict(spec["template"])
        if "cluster" in template:
            raise ValueError("spec.template must not name a cluster; list targets in spec.clusters")
        clusters = tuple(_cluster_ref(c) for c in spec.get("clusters") or ())
        selector = _selector(spec["clusterSelector"]) if spec.get("clusterSelector") else None
        if not clusters and selector is None:
            raise ValueError("set spec.clusters, spec.clusterSelector, or both")
        for bound in ("maxConcurrency", "maxFailures"):
            check_bound(spec.get(bound), f"spec.{bound}")
        probe = {**template, "cluster": {"resourceId": (clusters or (_PROBE,))[0].resource_id}}
        RunSpec.parse(probe)  # the template must make a valid RunCommand
        run_token = spec.get("runToken")
        stages = parse_stages(spec.get("stages"))
        deadline = spec.get("progressDeadlineSeconds")
        canonical = json.dumps({"t": template, "r": run_token}, sort_keys=True)
        return cls(
            template=template,
            clusters=clusters,
            selector=selector,
            run_token=run_token,
            follow_new_clusters=bool(spec.get("followNewClusters", False)),
            max_concurrency=spec.get("maxConcurrency"),
            max_failures=spec.get("maxFailures"),
            suspend=bool(spec.get("suspend", False)),
            round_key=hashlib.sha256(canonical.encode()).hexdigest()[:16],
            template_key=_short_hash(json.dumps(template, sort_keys=True)),
            stages=stages,
            approvals=parse_approvals(spec.get("approvals"), stages),
            progress_deadline_seconds=int(deadline) if deadline is not None else None,
            retry_key=_short_hash(spec["retryFailedToken"])
            if spec.get("retryFailedToken")
            else None,
        )


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


_PROBE = ClusterRef("00000000-0000-0000-0000-000000000000", "probe", "probe")


def _cluster_ref(cluster: Mapping[str, Any]) -> ClusterRef:
    if "resourceId" in cluster:
        return ClusterRef.parse(cluster["resourceId"])
    return ClusterRef(cluster["subscriptionId"], cluster["resourceGroup"], cluster["name"])


def _selector(raw: Mapping[str, Any]) -> Selector:
    return Selector(
        subscriptions=tuple(raw["subscriptions"]),
        resource_groups=tuple(raw.get("resourceGroups") or ()),
        match_tags=dict(raw.get("matchTags") or {}),
        match_expressions=tuple(
            TagIn(e["key"], frozenset(e["values"])) for e in raw.get("matchTagExpressions") or ()
        ),
    )


# Names and children -------------------------------------------------------------------------


def cluster_key(cluster: ClusterRef) -> str:
    """ARM ids are case-insensitive: one key per cluster however it is spelled."""
    return cluster.resource_id.casefold()


def cluster_hash(cluster: ClusterRef) -> str:
    return hashlib.sha256(cluster_key(cluster).encode()).hexdigest()[:_CLUSTER_HASH_CHARS]


def child_name(set_name: str, cluster: ClusterRef) -> str:
    """Stable, DNS-safe and at most 63 characters: the same set and cluster always give the same
    name, so creating a child twice finds the first one (AlreadyExists), never a twin."""
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
        return str(state) if current and isinstance(state, str) else "Pending"


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


def _retried(seen: SetObservation, member: Member) -> ChildWrite | None:
    """A failed child of this round that has not obeyed the current retryFailedToken yet goes
    back to waiting, with a new runToken: its RunCommand runs again when the rollout starts it.
    Once it carries the token's label it is never retried for that token again."""
    spec, child = seen.spec, member.current
    if spec.retry_key is None or child is None or not child.started:
        return None
    if child.state not in _FAILED or child.labels.get(RETRY_LABEL) == spec.retry_key:
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


def spec_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning spec `old` into `new`: removed keys become None."""
    return {**{key: None for key in old if key not in new}, **new}


# Decisions ----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class SetDecision:
    writes: tuple[ChildWrite, ...]
    status: dict[str, Any]  # with the round's counts, and a final state once the round is over
    events: tuple[SetEvent, ...] = ()
    blocked: tuple[str, ...] = ()  # children it cannot create: their names are held elsewhere
    wake_after: float | None = None  # seconds until a soak or the progress deadline ends


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


def plan_set(seen: SetObservation) -> SetDecision:
    spec = seen.spec
    by_hash = {c.labels.get(CLUSTER_LABEL): c for c in seen.children}
    clusters = targets(seen)
    total = len(clusters)
    members: list[Member] = []
    for cluster in clusters:
        child = by_hash.get(cluster_hash(cluster))
        in_round = child is not None and child.labels.get(ROUND_LABEL) == spec.round_key
        members.append(Member(cluster, child, child if in_round else None))
    unmatched: list[dict[str, Any]] = []
    if spec.stages:
        members, unmatched = _staged_members(seen, members)
        total = len(members)
    retries: dict[str, ChildWrite] = {}
    for member in members:
        retry = _retried(seen, member)
        if retry is not None:
            retries[retry.name] = retry
            member.current = Child(retry.name, retry.labels, retry.spec, {})  # waiting again
    started = [m.current for m in members if m.current is not None and m.current.started]
    failures = sum(1 for child in started if child.state in _FAILED)
    in_flight = sum(1 for child in started if child.state not in _FINAL)
    allowed_failures = resolve_bound(spec.max_failures, total, at_least_one=False)
    halted = allowed_failures is not None and failures > allowed_failures
    concurrency = resolve_bound(spec.max_concurrency, total, at_least_one=True) or total
    now = parse_time(seen.now)
    same_round = seen.status.get("roundKey") == spec.round_key
    round_started = str(seen.status.get("roundStartedAt") or seen.now) if same_round else seen.now
    deadline = (
        parse_time(round_started) + timedelta(seconds=spec.progress_deadline_seconds)
        if spec.progress_deadline_seconds is not None
        else None
    )
    late = deadline is not None and now >= deadline
    room = 0 if spec.suspend or halted or late else max(0, concurrency - in_flight)
    stage_plan = _plan_stages(seen, members, now) if spec.stages else None
    stage_room = stage_plan.room if stage_plan is not None else {}

    held = {f.name: f for f in seen.foreign}
    writes: list[ChildWrite] = []
    for member in members:  # in cluster id order: the rollout order is deterministic
        retry = retries.get(member.current.name) if member.current is not None else None
        if member.current is not None and member.current.started:
            continue
        member.held_by = held.get(child_name(seen.name, member.cluster))
        if member.held_by is not None and member.child is None:
            continue  # never created while another owner holds its name: reported below
        start = room > 0 and (stage_plan is None or stage_room.get(member.stage or "", 0) > 0)
        room -= 1 if start else 0
        if start and stage_plan is not None:
            stage_room[member.stage or ""] -= 1
        member.starting = start
        if member.current is not None:
            if start or retry is not None:  # a waiting child: lift suspend (and/or retry it)
                base = retry or ChildWrite(
                    member.current.name, member.cluster, member.current.labels,
                    member.current.spec, create=False, old_spec=member.current.spec,
                )  # fmt: skip
                started_spec = {**base.spec, "suspend": bool(spec.template.get("suspend"))}
                writes.append(dataclasses.replace(base, spec=started_spec if start else base.spec))
            continue
        writes.append(
            ChildWrite(
                name=child_name(seen.name, member.cluster),
                cluster=member.cluster,
                labels=child_labels(seen, member.cluster, member.stage),
                spec=child_spec(spec, member.cluster, started=start),
                create=member.child is None,
                old_spec=member.child.spec if member.child is not None else {},
            )
        )

    counts = {"total": total, **dict.fromkeys(_COUNT_KEYS[1:], 0)}
    for member in members:
        counts[member.count_key] += 1
    blocked = tuple(m.held_by.name for m in members if m.blocked and m.held_by is not None)
    stopped = halted or (stage_plan is not None and stage_plan.failed is not None)
    settled = counts["running"] == 0 and (counts["pending"] == 0 or stopped)
    # A round that found no target ends (it lists again only on a new runToken), unless
    # followNewClusters looks for clusters every minute.
    empty = total == 0 and not spec.follow_new_clusters
    finished = (total > 0 and settled) or empty
    # Past the deadline nothing starts; runs in flight are still followed and recorded, and
    # the round stays failed even if the last of them succeed.
    was_overdue = same_round and seen.status.get("reason") == Reason.PROGRESS_DEADLINE_EXCEEDED
    overdue = late and (not finished or was_overdue)
    status = _status(
        seen, members, counts, halted=halted, finished=finished or overdue, overdue=overdue,
        stage_plan=stage_plan,
    )  # fmt: skip
    status["roundStartedAt"] = round_started
    events = round_events(seen.status, status)
    if stage_plan is not None:
        status["stages"] = stage_entries(spec.stages, stage_plan, _stage_counts(members))
        status["stage"] = stage_plan.current
        status["unmatched"] = unmatched[:MAX_CLUSTER_ENTRIES]
        before = _previous_stages(seen)
        events = [*stage_events(spec.stages, before, stage_plan, spec.round_key), *events]
    wakes = [t for t in (deadline, stage_plan.wake_at if stage_plan else None) if t is not None]
    wake = min((t for t in wakes if t > now), default=None)
    wake_after = (wake - now).total_seconds() if wake is not None and not finished else None
    return SetDecision(tuple(writes), status, tuple(events), blocked, wake_after)


def _staged_members(
    seen: SetObservation, members: list[Member]
) -> tuple[list[Member], list[dict[str, Any]]]:
    """The members some stage selects (each given its stage), and the unmatched targets."""
    spec = seen.spec
    tags = {cluster_key(c.ref): c.tags for c in seen.discovered or ()}
    found = [
        Target(
            cluster_key(m.cluster), m.cluster.resource_id,
            m.current.labels.get(STAGE_LABEL) if m.current is not None else None,
            tags.get(cluster_key(m.cluster), {}),
        )
        for m in members
    ]  # fmt: skip
    same_round = seen.status.get("roundKey") == spec.round_key
    kept = seen.status.get("unmatched") or () if same_round else ()
    stages, unmatched = assign(spec.stages, found, kept)
    for member, stage in zip(members, stages, strict=True):
        member.stage = stage
    return [m for m in members if m.stage is not None], unmatched


def _plan_stages(seen: SetObservation, members: Sequence[Member], now: datetime) -> StagePlan:
    spec = seen.spec
    counts: dict[str, StageCounts] = {}
    for member in members:
        tally = counts.setdefault(member.stage or "", StageCounts())
        tally.total += 1
        child = member.current
        if child is None or not child.started:
            tally.waiting += 1
        elif child.state in _FAILED:
            tally.failures += 1
        elif child.state not in _FINAL:
            tally.in_flight += 1
    approved = frozenset(stage for stage, key in spec.approvals if key == spec.round_key)
    look = StageLook(spec.stages, counts, _previous_stages(seen), approved, spec.max_concurrency,
                     now)  # fmt: skip
    return plan_stages(look)


def _previous_stages(seen: SetObservation) -> dict[str, Mapping[str, Any]]:
    """status.stages of this round, by name; nothing from an earlier round."""
    if seen.status.get("roundKey") != seen.spec.round_key:
        return {}
    return {str(s.get("name")): s for s in seen.status.get("stages") or ()}


def _stage_counts(members: Sequence[Member]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for member in members:
        tally = counts.setdefault(member.stage or "", dict.fromkeys(_COUNT_KEYS, 0))
        tally["total"] += 1
        tally[member.count_key] += 1
    return counts


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
            return "Blocked"
        if self.starting:
            return "Pending"
        if self.current is None or not self.current.started:
            return "Waiting"
        return self.current.state

    @property
    def count_key(self) -> str:
        state = self.state
        if state in ("Waiting", "Blocked"):
            return "pending"
        return {"Succeeded": "succeeded", "Failed": "failed", "Unknown": "unknown"}.get(
            state, "running"
        )


def _entries(set_name: str, members: Sequence[Member]) -> list[dict[str, Any]]:
    order = {
        "Failed": 0, "Unknown": 1, "Blocked": 1, "Running": 2, "Submitting": 2, "Pending": 3,
        "Waiting": 4,
    }  # fmt: skip
    entries = []
    for member in members:
        entry: dict[str, Any] = {
            "clusterId": member.cluster.resource_id,
            "child": child_name(set_name, member.cluster),
            "state": member.state,
        }
        child = member.current
        if child is not None and member.state in _FINAL:
            for key in ("exitCode", "commandId", "reason"):
                if child.status.get(key) is not None:
                    entry[key] = child.status[key]
        if member.blocked:
            entry["reason"] = str(Reason.CHILD_OWNED_ELSEWHERE)
        entries.append(entry)
    entries.sort(key=lambda e: (order.get(e["state"], 3), e["clusterId"].casefold()))
    return entries[:MAX_CLUSTER_ENTRIES]


def _status(
    seen: SetObservation,
    members: Sequence[Member],
    counts: Mapping[str, int],
    *,
    halted: bool,
    finished: bool,
    overdue: bool = False,
    stage_plan: StagePlan | None = None,
) -> dict[str, Any]:
    spec, status = seen.spec, seen.status
    new_round = status.get("roundKey") != spec.round_key
    round_number = int(status.get("round") or 0) + (1 if new_round else 0)
    failures = counts["failed"] + counts["unknown"]
    verdict = (
        round_verdict(stage_plan, finished=finished, round_number=round_number,
                      round_key=spec.round_key, set_name=seen.name)
        if stage_plan is not None
        else None
    )  # fmt: skip
    if overdue:
        state, reason = "Failed", Reason.PROGRESS_DEADLINE_EXCEEDED
        message = (
            f"round {round_number}: not finished within progressDeadlineSeconds "
            f"({spec.progress_deadline_seconds}); no new cluster starts, runs in flight are "
            "still recorded"
        )
    elif verdict is not None and (finished or verdict[0] != "Failed"):
        state, reason, message = verdict
    elif finished and failures == 0 and counts["total"] > 0:
        state, reason = "Succeeded", Reason.SUCCEEDED
        message = f"round {round_number}: all {counts['total']} clusters succeeded"
    elif finished and counts["total"] > 0:
        state = "Failed"
        reason = Reason.MAX_FAILURES_EXCEEDED if halted else Reason.CLUSTERS_FAILED
        message = f"round {round_number}: {failures} of {counts['total']} clusters failed" + (
            "; no new cluster was started after maxFailures was exceeded" if halted else ""
        )
    elif spec.suspend:
        state, reason = "Suspended", Reason.SUSPENDED
        message = f"round {round_number}: suspended; no new cluster starts"
    elif counts["total"] == 0 and finished:
        state, reason = "Failed", Reason.NO_TARGETS
        message = (
            f"round {round_number}: no cluster matches spec.clusterSelector, so nothing ran; "
            "fix the selector or tag the clusters, then change spec.runToken to list them again"
        )
    elif counts["total"] == 0:
        state, reason = "Pending", Reason.NO_TARGETS
        message = "no cluster matches spec.clusterSelector yet; listing again every minute"
    elif any(m.blocked for m in members):
        state, reason = "Progressing", Reason.CHILD_OWNED_ELSEWHERE
        held = [describe(m.held_by) for m in members if m.blocked and m.held_by is not None]
        message = (
            f"round {round_number}: {len(held)} child(ren) cannot be created because their "
            f"names are taken: {', '.join(held[:3])}{' ...' if len(held) > 3 else ''}. "
            "A set of the same name being deleted? Waiting for garbage collection to remove "
            "them (or delete them); looking again with backoff"
        )
    else:
        state, reason = "Progressing", Reason.PROGRESSING
        done = counts["succeeded"] + counts["failed"] + counts["unknown"]
        message = f"round {round_number}: {done} of {counts['total']} clusters done"
    previous = list(status.get("conditions") or [])
    return {
        "observedGeneration": seen.generation,
        "round": round_number,
        "roundKey": spec.round_key,
        "runToken": spec.run_token,
        "state": state,
        "reason": str(reason),
        "message": message,
        **{key: value for key, value in counts.items()},
        "clusters": _entries(seen.name, members),
        "conditions": _set_conditions(state, reason, message, seen.generation, seen.now, previous),
    }


def _set_conditions(
    state: str, reason: str, message: str, generation: int, now: str, previous: Sequence[Any]
) -> list[dict[str, Any]]:
    """A set's conditions read as a RunCommand's do: Succeeded is Ready, Failed is Stalled,
    Suspended is neither, a rollout in progress is Reconciling."""
    as_run = {"Succeeded": "Succeeded", "Failed": "Failed", "Suspended": "Pending"}.get(
        state, "Running"
    )
    return conditions_for(as_run, reason, message, generation, now, previous)


def set_problem(
    status: Mapping[str, Any],
    generation: int,
    now: str,
    reason: Reason,
    message: str,
    *,
    stalled: bool,
) -> dict[str, Any]:
    """The set's status when it cannot be planned: an invalid spec (Stalled: it needs an
    edit), or ARM failing to list its clusters (Reconciling: the operator tries again). Nothing
    new starts meanwhile."""
    previous = list(status.get("conditions") or [])
    state = "Failed" if stalled else "Progressing"
    patch = {
        "observedGeneration": generation,
        "reason": str(reason),
        "message": message,
        "conditions": _set_conditions(state, reason, message, generation, now, previous),
    }
    return {**patch, "state": state} if stalled else patch
