"""RunCommandSchedule decisions, CronJob's: from a schedule's spec and status, its children and
the time, decide which tick to start (at most one per look), which to skip or count as missed,
which finished children to delete, and what the schedule's status says. No I/O.

The rules are those of the CronJob controller (pkg/controller/cronjob): the ticks to consider
follow the last one handled (or the schedule's creation), and no earlier than
``now - startingDeadlineSeconds``; only the latest of them may start, and only while it is still
within the deadline. The others are counted as missed and reported, never started: there is no
burst of catch-up runs, and no "too many missed start times" failure either.

A tick's child is named after the tick (core/schedule_history.py), so deciding the same tick
again finds the child that is there. Unlike CronJob, a tick that Forbid skips is recorded as
handled (``status.lastTickTime``): skipped means skipped, it does not start late when the run
before it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.core.conditions import FINISHED, conditions_for
from controller.core.durations import format_timestamp
from controller.core.schedule_history import (
    ScheduledChild,
    child_labels,
    history_to_delete,
    last_run,
    last_success,
    parse_time,
    tick_child_name,
)
from controller.core.schedule_spec import ChildKind, ScheduleSpec
from controller.vocabulary import (
    SCHEDULED_TIME_ANNOTATION,
    EventType,
    Reason,
    ScheduleState,
    State,
)

_FAILED = (State.FAILED, State.UNKNOWN)


@dataclass(frozen=True)
class ChildCreate:
    name: str
    kind: ChildKind
    tick: datetime
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class ScheduleEvent:
    type: EventType
    reason: Reason
    message: str


@dataclass(frozen=True)
class ScheduleObservation:
    name: str
    spec: ScheduleSpec
    status: Mapping[str, Any]
    generation: int
    created: datetime
    children: Sequence[ScheduledChild]
    now: datetime
    shard: str | None = None


@dataclass(frozen=True)
class ScheduleDecision:
    create: ChildCreate | None
    deletes: tuple[ScheduledChild, ...]  # finished children beyond the history limits
    events: tuple[ScheduleEvent, ...]  # to post once the status is written
    status: dict[str, Any]
    wake_at: datetime | None  # the next tick; None while suspended


@dataclass
class Ticks:
    """The schedule's tick bookkeeping, as read from status and moved on by this look."""

    last_tick: datetime | None
    last_schedule: datetime | None
    missed: int
    skipped: int
    events: list[ScheduleEvent] = field(default_factory=list)
    create: ChildCreate | None = None
    wake_at: datetime | None = None  # the next tick; None while suspended

    @classmethod
    def read(cls, status: Mapping[str, Any]) -> Ticks:
        return cls(
            last_tick=parse_time(status.get("lastTickTime")),
            last_schedule=parse_time(status.get("lastScheduleTime")),
            missed=int(status.get("missedTicks") or 0),
            skipped=int(status.get("skippedTicks") or 0),
        )


def plan_schedule(seen: ScheduleObservation) -> ScheduleDecision:
    spec, status, now = seen.spec, seen.status, seen.now
    active = sorted((c for c in seen.children if not c.finished), key=lambda c: (c.order, c.name))
    ticks = Ticks.read(status)
    if not spec.suspend:
        # Suspended ticks are not handled: on resume the latest may still start within the
        # deadline, as a CronJob's does.
        _latest_tick(seen, active, ticks)
        ticks.wake_at = spec.cron.next_after(max(now, ticks.last_tick or now))
    create, wake_at = ticks.create, ticks.wake_at
    running = [c.name for c in active] + ([create.name] if create is not None else [])
    deletes = history_to_delete(
        seen.children, spec.successful_history_limit, spec.failed_history_limit
    )
    run = last_run(status.get("lastRun"), seen.children)
    state, reason, message = _verdict(spec, run, wake_at, len(running))
    new_status: dict[str, Any] = {
        "observedGeneration": seen.generation,
        "lastScheduleTime": format_timestamp(ticks.last_schedule) if ticks.last_schedule else None,
        "lastTickTime": format_timestamp(ticks.last_tick) if ticks.last_tick else None,
        "lastSuccessfulTime": last_success(status.get("lastSuccessfulTime"), seen.children),
        "nextScheduleTime": format_timestamp(wake_at) if wake_at else None,
        "active": len(running),
        "activeRuns": running,
        "lastRun": run,
        "missedTicks": ticks.missed,
        "skippedTicks": ticks.skipped,
        "state": str(state),
        "reason": str(reason),
        "message": message,
        "conditions": schedule_conditions(state, reason, message, seen.generation, now, status),
    }
    return ScheduleDecision(create, deletes, tuple(ticks.events), new_status, wake_at)


def _latest_tick(seen: ScheduleObservation, active: Sequence[ScheduledChild], ticks: Ticks) -> None:
    """Handle the latest tick not handled yet, if any: create its child, or skip it (Forbid),
    or count it as missed (past startingDeadlineSeconds); the ticks before it are missed."""
    spec, now = seen.spec, seen.now
    handled = max(t for t in (ticks.last_tick, ticks.last_schedule, seen.created) if t is not None)
    tick = spec.cron.latest_at_or_before(now)
    if tick <= handled:
        return
    before = spec.cron.count_between(handled, tick)  # never started, never will
    name = tick_child_name(seen.name, tick)
    exists = any(c.name == name for c in seen.children)
    deadline = spec.starting_deadline_seconds
    too_late = deadline is not None and tick + timedelta(seconds=deadline) < now
    if exists:
        pass  # created by an earlier look whose status write was lost: record it
    elif too_late:
        before += 1
        message = (
            f"missed {before} tick(s) since {format_timestamp(handled)}, the latest at "
            f"{format_timestamp(tick)}: more than startingDeadlineSeconds ({deadline}) ago, so "
            "none starts"
        )
        ticks.events.append(ScheduleEvent(EventType.WARNING, Reason.MISSED_SCHEDULE, message))
    elif spec.forbid and active:
        ticks.skipped += 1
        message = (
            f"skipped the tick of {format_timestamp(tick)}: concurrencyPolicy is Forbid and "
            f"{active[-1].kind} {active[-1].name} has not finished"
        )
        ticks.events.append(ScheduleEvent(EventType.NORMAL, Reason.RUN_ALREADY_ACTIVE, message))
    else:
        ticks.create = ChildCreate(
            name=name,
            kind=spec.child_kind,
            tick=tick,
            labels=child_labels(seen.name, tick, seen.shard),
            annotations={SCHEDULED_TIME_ANNOTATION: format_timestamp(tick)},
            spec=dict(spec.template),
        )
    if before and not too_late:
        message = (
            f"{before} earlier tick(s) since {format_timestamp(handled)} were missed (the "
            "operator was down or the schedule suspended); only the latest, "
            f"{format_timestamp(tick)}, is considered"
        )
        ticks.events.append(ScheduleEvent(EventType.WARNING, Reason.MISSED_SCHEDULE, message))
    ticks.missed += before
    ticks.last_tick = tick
    if ticks.create is not None or exists:
        ticks.last_schedule = tick


def _verdict(
    spec: ScheduleSpec, last: Mapping[str, Any] | None, wake_at: datetime | None, active: int
) -> tuple[str, Reason | str, str]:
    """status.state, reason and message: the last finished run's outcome, and what is next."""
    nxt = f"next run at {format_timestamp(wake_at)}" if wake_at else "no run is scheduled"
    doing = f"; {active} running" if active else ""
    if spec.suspend:
        message = f"spec.suspend is true: no tick starts{doing}"
        return ScheduleState.SUSPENDED, Reason.SUSPENDED, message
    if last is None:
        return ScheduleState.SCHEDULED, Reason.SCHEDULED, f"no run has finished yet{doing}; {nxt}"
    name, state = last.get("name"), str(last.get("state"))
    if state in _FAILED:
        reason = str(last.get("reason") or Reason.COMMAND_FAILED)
        detail = str(last.get("message") or "")
        text = f"the last run, {name}, ended {state}" + (f": {detail}" if detail else "")
        return ScheduleState.FAILED, reason, f"{text}{doing}; {nxt}"
    message = f"the last run, {name}, succeeded{doing}; {nxt}"
    return ScheduleState.SUCCEEDED, Reason.SUCCEEDED, message


def schedule_conditions(
    state: str, reason: str, message: str, generation: int, now: datetime, status: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A schedule is Ready while its last run succeeded (or none has finished yet, or it is
    suspended: nothing is wrong), and Stalled while its last run failed. Never Reconciling: a
    schedule waiting for its next tick is current. A schedule never finishes, so it has no
    Finished condition."""
    as_run = State.FAILED if state == ScheduleState.FAILED else State.SUCCEEDED
    previous = list(status.get("conditions") or [])
    full = conditions_for(as_run, str(reason), message, generation, format_timestamp(now), previous)
    return [c for c in full if c["type"] != FINISHED]


def schedule_problem(
    status: Mapping[str, Any], generation: int, now: datetime, message: str
) -> dict[str, Any]:
    """The status of a schedule whose spec cannot be used (it passed an older CRD): Stalled,
    and no tick starts until it is edited."""
    reason, state = Reason.INVALID_SPEC, ScheduleState.FAILED
    return {
        "observedGeneration": generation,
        "state": str(state),
        "reason": str(reason),
        "message": message,
        "nextScheduleTime": None,
        "conditions": schedule_conditions(state, reason, message, generation, now, status),
    }
