"""A RunCommandSchedule's children: how each tick's child is named, what it is read as, which
finished ones the history limits delete, and the last run and success the status keeps. No I/O.

Each tick's child is named ``<schedule>-<unix minutes of the tick>`` (CronJob's
getTimeHashInMinutes), so a restart, a second replica or a missed watch event that decides the
same tick again finds the child that is there instead of making a twin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.core.conditions import FINISHED
from controller.core.durations import format_timestamp, parse_timestamp
from controller.core.schedule_spec import ChildKind
from controller.vocabulary import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    SHARD_LABEL,
    TICK_LABEL,
    ConditionStatus,
    State,
)

parse_time = parse_timestamp  # the core's one reader of Kubernetes and ARM timestamps


def tick_minutes(tick: datetime) -> int:
    return int(tick.timestamp()) // 60


def tick_child_name(schedule: str, tick: datetime) -> str:
    """CronJob's job name: the schedule's name and the tick in unix minutes. The CRD keeps the
    schedule's name short enough for the child's kind."""
    return f"{schedule}-{tick_minutes(tick)}"


@dataclass(frozen=True)
class ScheduledChild:
    """A child as read: when it was scheduled (None for a manual trigger), whether its run
    has ended, and how."""

    name: str
    kind: ChildKind
    uid: str
    scheduled: datetime | None
    created: datetime | None
    finished: bool
    state: str
    exit_code: int | None
    reason: str
    message: str
    finished_at: datetime | None

    @classmethod
    def from_body(cls, body: Mapping[str, Any], kind: ChildKind) -> ScheduledChild:
        metadata = body.get("metadata") or {}
        status = body.get("status") or {}
        annotations = metadata.get("annotations") or {}
        generation = metadata.get("generation")
        finished_condition = any(
            c.get("type") == FINISHED
            and c.get("status") == ConditionStatus.TRUE
            and c.get("observedGeneration") == generation
            for c in status.get("conditions") or ()
        )
        exit_code = status.get("exitCode")
        return cls(
            name=str(metadata.get("name", "")),
            kind=kind,
            uid=str(metadata.get("uid", "")),
            scheduled=parse_time(annotations.get(SCHEDULED_TIME_ANNOTATION)),
            created=parse_time(metadata.get("creationTimestamp")),
            finished=finished_condition and status.get("observedGeneration") == generation,
            state=str(status.get("state") or State.PENDING),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            finished_at=parse_time(status.get("finishedAt")),
        )

    @property
    def succeeded(self) -> bool:
        return self.finished and self.state == State.SUCCEEDED

    @property
    def order(self) -> datetime:
        """When it started, for history order: its tick, or its creation if manual."""
        return self.scheduled or self.created or datetime.min.replace(tzinfo=UTC)


def child_labels(schedule: str, tick: datetime, shard: str | None) -> dict[str, str]:
    labels = {SCHEDULE_LABEL: schedule, TICK_LABEL: str(tick_minutes(tick))}
    if shard is not None:
        labels[SHARD_LABEL] = shard  # the children land on the schedule's shard
    return labels


def history_to_delete(
    children: Sequence[ScheduledChild], successful_limit: int, failed_limit: int
) -> tuple[ScheduledChild, ...]:
    """CronJob's cleanupFinishedJobs: the oldest finished children beyond each limit; runs
    in flight are never touched."""
    doomed: list[ScheduledChild] = []
    for outcome, limit in ((True, successful_limit), (False, failed_limit)):
        finished = sorted(
            (c for c in children if c.finished and c.succeeded == outcome),
            key=lambda c: (c.order, c.name),
        )
        doomed.extend(finished[: max(0, len(finished) - limit)])
    return tuple(doomed)


def last_run(recorded: object, children: Sequence[ScheduledChild]) -> dict[str, Any] | None:
    """The newest finished run: from the children, or as recorded when it has been deleted
    since (history limits)."""
    finished = [c for c in children if c.finished]
    previous = dict(recorded) if isinstance(recorded, Mapping) else None
    if not finished:
        return previous
    newest = max(finished, key=lambda c: (c.order, c.name))
    recorded_at = parse_time((previous or {}).get("scheduledTime"))
    if previous is not None and recorded_at is not None and recorded_at > newest.order:
        return previous
    run: dict[str, Any] = {
        "name": newest.name,
        "kind": newest.kind,
        "scheduledTime": format_timestamp(newest.order),
        "state": newest.state,
        "reason": newest.reason,
        "message": newest.message[:1024],
    }
    if newest.exit_code is not None:
        run["exitCode"] = newest.exit_code
    if newest.finished_at is not None:
        run["finishedAt"] = format_timestamp(newest.finished_at)
    return run


def last_success(recorded: object, children: Sequence[ScheduledChild]) -> str | None:
    times = [parse_time(recorded)] if isinstance(recorded, str) else []
    times += [c.finished_at or c.order for c in children if c.succeeded]
    known = [t for t in times if t is not None]
    return format_timestamp(max(known)) if known else None
