"""A RunCommandSet's round: from a set's spec and status, the clusters found for it and its
children, decide which children to create or change and what the set's status says. No I/O.

At a round's start every target gets its child, suspended; the rollout lifts `suspend` on the
children it starts, in the order of their cluster ids, at most maxConcurrency at a time, and
starts none once more than maxFailures have failed (core/set_members.py tells the members and
how each counts, core/set_status.py the verdict).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.core.bounds import resolve_bound
from controller.core.decide import Event as SetEvent
from controller.core.set_children import (
    FAILED_STATES,
    FINAL_STATES,
    ChildWrite,
    SetObservation,
    child_labels,
    child_name,
    child_spec,
)
from controller.core.set_events import round_events
from controller.core.set_members import (
    Member,
    member_counts,
    plan_member_stages,
    previous_stages,
    retry_failed,
    round_members,
    stage_counts,
)
from controller.core.set_status import MAX_CLUSTER_ENTRIES, round_status
from controller.core.stages import StagePlan, parse_time, stage_entries, stage_events
from controller.vocabulary import Reason


@dataclass(frozen=True)
class SetDecision:
    writes: tuple[ChildWrite, ...]
    status: dict[str, Any]  # with the round's counts, and a final state once the round is over
    events: tuple[SetEvent, ...] = ()
    blocked: tuple[str, ...] = ()  # children it cannot create: their names are held elsewhere
    wake_after: float | None = None  # seconds until a soak or the progress deadline ends


@dataclass(frozen=True)
class Pace:
    """How far the round may go now: its bounds and its progress deadline."""

    now: datetime
    round_started: str
    deadline: datetime | None  # the progress deadline, when spec.progressDeadlineSeconds is set
    halted: bool  # more than maxFailures failed: nothing new starts
    late: bool  # past the progress deadline: nothing new starts
    room: int  # how many more clusters may start now


def pace(seen: SetObservation, members: Sequence[Member]) -> Pace:
    spec, total = seen.spec, len(members)
    started = [m.current for m in members if m.current is not None and m.current.started]
    failures = sum(1 for child in started if child.state in FAILED_STATES)
    in_flight = sum(1 for child in started if child.state not in FINAL_STATES)
    allowed_failures = resolve_bound(spec.max_failures, total, at_least_one=False)
    halted = allowed_failures is not None and failures > allowed_failures
    concurrency = resolve_bound(spec.max_concurrency, total, at_least_one=True) or total
    now = parse_time(seen.now)
    round_started = (
        str(seen.status.get("roundStartedAt") or seen.now) if seen.same_round else seen.now
    )
    deadline = (
        parse_time(round_started) + timedelta(seconds=spec.progress_deadline_seconds)
        if spec.progress_deadline_seconds is not None
        else None
    )
    late = deadline is not None and now >= deadline
    room = 0 if spec.suspend or halted or late else max(0, concurrency - in_flight)
    return Pace(now, round_started, deadline, halted, late, room)


def plan_set(seen: SetObservation) -> SetDecision:
    members, unmatched = round_members(seen)
    retries = retry_failed(seen, members)
    bounds = pace(seen, members)
    stage_plan = plan_member_stages(seen, members, bounds.now) if seen.spec.stages else None
    writes = _writes(seen, members, retries, bounds.room, stage_plan)
    counts = member_counts(members)
    blocked = tuple(m.held_by.name for m in members if m.blocked and m.held_by is not None)
    finished, overdue = _round_end(seen, counts, bounds, stage_plan)
    status = round_status(
        seen, members, counts, halted=bounds.halted, finished=finished or overdue,
        overdue=overdue, stage_plan=stage_plan,
    )  # fmt: skip
    status["roundStartedAt"] = bounds.round_started
    events = round_events(seen.status, status)
    if stage_plan is not None:
        status["stages"] = stage_entries(seen.spec.stages, stage_plan, stage_counts(members))
        status["stage"] = stage_plan.current
        status["unmatched"] = unmatched[:MAX_CLUSTER_ENTRIES]
        before = previous_stages(seen)
        round_key = seen.spec.round_key
        events = [*stage_events(seen.spec.stages, before, stage_plan, round_key), *events]
    soak_ends = stage_plan.wake_at if stage_plan is not None else None
    wakes = [t for t in (bounds.deadline, soak_ends) if t is not None]
    wake = min((t for t in wakes if t > bounds.now), default=None)
    wake_after = (wake - bounds.now).total_seconds() if wake is not None and not finished else None
    return SetDecision(tuple(writes), status, tuple(events), blocked, wake_after)


def _writes(
    seen: SetObservation,
    members: Sequence[Member],
    retries: Mapping[str, ChildWrite],
    room: int,
    stage_plan: StagePlan | None,
) -> list[ChildWrite]:
    """The children to create or start, in cluster id order (the rollout order is
    deterministic), within `room` and each stage's room."""
    stage_room = stage_plan.room if stage_plan is not None else {}
    held = {f.name: f for f in seen.foreign}
    writes: list[ChildWrite] = []
    for member in members:
        retry = retries.get(member.current.name) if member.current is not None else None
        if member.current is not None and member.current.started:
            continue
        member.held_by = held.get(child_name(seen.name, member.cluster))
        if member.held_by is not None and member.child is None:
            continue  # never created while another owner holds its name: reported in status
        start = room > 0 and (stage_plan is None or stage_room.get(member.stage or "", 0) > 0)
        room -= 1 if start else 0
        if start and stage_plan is not None:
            stage_room[member.stage or ""] -= 1
        member.starting = start
        write = _write(seen, member, retry, start=start)
        if write is not None:
            writes.append(write)
    return writes


def _write(
    seen: SetObservation, member: Member, retry: ChildWrite | None, *, start: bool
) -> ChildWrite | None:
    """A member's write: create its child, or lift `suspend` on a waiting one (and/or retry
    it); None when a waiting child stays as it is."""
    current, spec = member.current, seen.spec
    if current is not None:
        if not (start or retry is not None):
            return None
        base = retry or ChildWrite(
            current.name, member.cluster, current.labels, current.spec, create=False,
            old_spec=current.spec,
        )  # fmt: skip
        started_spec = {**base.spec, "suspend": bool(spec.template.get("suspend"))}
        return dataclasses.replace(base, spec=started_spec if start else base.spec)
    return ChildWrite(
        name=child_name(seen.name, member.cluster),
        cluster=member.cluster,
        labels=child_labels(seen, member.cluster, member.stage),
        spec=child_spec(spec, member.cluster, started=start),
        create=member.child is None,
        old_spec=member.child.spec if member.child is not None else {},
    )


def _round_end(
    seen: SetObservation, counts: Mapping[str, int], bounds: Pace, stage_plan: StagePlan | None
) -> tuple[bool, bool]:
    """Whether the round is finished, and whether it is overdue (its deadline passed)."""
    total = counts["total"]
    stopped = bounds.halted or (stage_plan is not None and stage_plan.failed is not None)
    settled = counts["running"] == 0 and (counts["pending"] == 0 or stopped)
    # A round that found no target ends (it lists again only on a new runToken), unless
    # followNewClusters looks for clusters every minute.
    empty = total == 0 and not seen.spec.follow_new_clusters
    finished = (total > 0 and settled) or empty
    # Past the deadline nothing starts; runs in flight are still followed and recorded, and
    # the round stays failed even if the last of them succeed.
    was_overdue = seen.same_round and seen.status.get("reason") == Reason.PROGRESS_DEADLINE_EXCEEDED
    return finished, bounds.late and (not finished or was_overdue)
