"""RunCommandSchedule decisions, CronJob's: from a schedule's spec and status, its children and
the time, decide which tick to start (at most one per look), which to skip or count as missed,
which finished children to delete, and what the schedule's status says. No I/O.

The rules are those of the CronJob controller (pkg/controller/cronjob): the ticks to consider
follow the last one handled (or the schedule's creation), and no earlier than
``now - startingDeadlineSeconds``; only the latest of them may start, and only while it is still
within the deadline. The others are counted as missed and reported, never started: there is no
burst of catch-up runs, and no "too many missed start times" failure either.

Each tick's child is named ``<schedule>-<unix minutes of the tick>`` (CronJob's
getTimeHashInMinutes), so a restart, a second replica or a missed watch event that decides the
same tick again finds the child that is there instead of making a twin. Unlike CronJob, a tick
that Forbid skips is recorded as handled (``status.lastTickTime``): skipped means skipped, it
does not start late when the run before it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from controller.core.conditions import FINISHED, conditions_for
from controller.core.cron import Cron, InvalidCron
from controller.core.durations import parse_timestamp
from controller.core.fleet import SetSpec
from controller.core.spec import InvalidSpec, RunSpec
from controller.vocabulary import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    SHARD_LABEL,
    TICK_LABEL,
    EventType,
    Reason,
)

ChildKind = Literal["RunCommand", "RunCommandSet"]
TEMPLATES: Mapping[str, ChildKind] = {
    "runCommandTemplate": "RunCommand",
    "runCommandSetTemplate": "RunCommandSet",
}
_FAILED = ("Failed", "Unknown")
parse_time = parse_timestamp  # the core's one reader of Kubernetes and ARM timestamps


# Spec ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    cron: Cron
    schedule: str
    time_zone: str
    forbid: bool  # concurrencyPolicy Forbid
    starting_deadline_seconds: int | None
    suspend: bool
    successful_history_limit: int
    failed_history_limit: int
    child_kind: ChildKind
    template: Mapping[str, Any]

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> ScheduleSpec:
        try:
            return cls._parse(spec)
        except InvalidCron as error:
            raise InvalidSpec(str(error)) from error
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidSpec(f"invalid spec: {error}") from error

    @classmethod
    def _parse(cls, spec: Mapping[str, Any]) -> ScheduleSpec:
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Replace":
            raise ValueError(
                "spec.concurrencyPolicy Replace is not supported: ARM has no cancel, so a "
                "running command cannot be replaced; use Forbid (skip a tick while one runs) "
                "or Allow"
            )
        if policy not in ("Allow", "Forbid"):
            raise ValueError(f"spec.concurrencyPolicy must be Allow or Forbid, not {policy!r}")
        given = [key for key in TEMPLATES if spec.get(key) is not None]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of spec.runCommandTemplate, spec.runCommandSetTemplate"
            )
        (key,) = given
        template = dict(spec[key])
        kind = TEMPLATES[key]
        if kind == "RunCommand":
            RunSpec.parse(template)
        else:
            SetSpec.parse(template)
        deadline = spec.get("startingDeadlineSeconds")
        return cls(
            cron=Cron.parse(str(spec["schedule"]), spec.get("timeZone")),
            schedule=str(spec["schedule"]),
            time_zone=spec.get("timeZone") or "UTC",
            forbid=policy == "Forbid",
            starting_deadline_seconds=None if deadline is None else max(0, int(deadline)),
            suspend=bool(spec.get("suspend", False)),
            successful_history_limit=max(0, int(spec.get("successfulRunsHistoryLimit", 3))),
            failed_history_limit=max(0, int(spec.get("failedRunsHistoryLimit", 1))),
            child_kind=kind,
            template=template,
        )


# Names and children -------------------------------------------------------------------------


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
            and c.get("status") == "True"
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
            state=str(status.get("state") or "Pending"),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            finished_at=parse_time(status.get("finishedAt")),
        )

    @property
    def succeeded(self) -> bool:
        return self.finished and self.state == "Succeeded"

    @property
    def order(self) -> datetime:
        """When it started, for history order: its tick, or its creation if manual."""
        return self.scheduled or self.created or datetime.min.replace(tzinfo=UTC)


def child_labels(schedule: str, tick: datetime, shard: str | None) -> dict[str, str]:
    labels = {SCHEDULE_LABEL: schedule, TICK_LABEL: str(tick_minutes(tick))}
    if shard is not None:
        labels[SHARD_LABEL] = shard  # the children land on the schedule's shard
    return labels


# Decisions ----------------------------------------------------------------------------------


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


def plan_schedule(seen: ScheduleObservation) -> ScheduleDecision:
    spec, status, now = seen.spec, seen.status, seen.now
    by_name = {c.name: c for c in seen.children}
    active = sorted((c for c in seen.children if not c.finished), key=lambda c: (c.order, c.name))
    events: list[ScheduleEvent] = []
    create: ChildCreate | None = None
    last_tick = parse_time(status.get("lastTickTime"))
    last_schedule = parse_time(status.get("lastScheduleTime"))
    missed = int(status.get("missedTicks") or 0)
    skipped = int(status.get("skippedTicks") or 0)
    wake_at: datetime | None = None

    if not spec.suspend:
        # Suspended ticks are not handled: on resume the latest may still start within the
        # deadline, as a CronJob's does.
        handled = max(t for t in (last_tick, last_schedule, seen.created) if t is not None)
        tick = spec.cron.latest_at_or_before(now)
        if tick > handled:
            before = spec.cron.count_between(handled, tick)  # never started, never will
            name = tick_child_name(seen.name, tick)
            deadline = spec.starting_deadline_seconds
            too_late = deadline is not None and tick + timedelta(seconds=deadline) < now
            if name in by_name:
                pass  # created by an earlier look whose status write was lost: record it
            elif too_late:
                before += 1
                events.append(
                    ScheduleEvent(
                        EventType.WARNING,
                        Reason.MISSED_SCHEDULE,
                        f"missed {before} tick(s) since {iso(handled)}, the latest at "
                        f"{iso(tick)}: more than startingDeadlineSeconds ({deadline}) ago, so "
                        "none starts",
                    )
                )
            elif spec.forbid and active:
                skipped += 1
                events.append(
                    ScheduleEvent(
                        EventType.NORMAL,
                        Reason.RUN_ALREADY_ACTIVE,
                        f"skipped the tick of {iso(tick)}: concurrencyPolicy is Forbid and "
                        f"{active[-1].kind} {active[-1].name} has not finished",
                    )
                )
            else:
                create = ChildCreate(
                    name=name,
                    kind=spec.child_kind,
                    tick=tick,
                    labels=child_labels(seen.name, tick, seen.shard),
                    annotations={SCHEDULED_TIME_ANNOTATION: iso(tick)},
                    spec=dict(spec.template),
                )
            if before and not too_late:
                events.append(
                    ScheduleEvent(
                        EventType.WARNING,
                        Reason.MISSED_SCHEDULE,
                        f"{before} earlier tick(s) since {iso(handled)} were missed (the "
                        "operator was down or the schedule suspended); only the latest, "
                        f"{iso(tick)}, is considered",
                    )
                )
            missed += before
            last_tick = tick
            if create is not None or name in by_name:
                last_schedule = tick
        wake_at = spec.cron.next_after(max(now, last_tick or now))

    running = [c.name for c in active] + ([create.name] if create is not None else [])
    deletes = history_to_delete(
        seen.children, spec.successful_history_limit, spec.failed_history_limit
    )
    last_run = _last_run(status.get("lastRun"), seen.children)
    last_success = _last_success(status.get("lastSuccessfulTime"), seen.children)
    state, reason, message = _verdict(spec, last_run, wake_at, len(running))
    new_status: dict[str, Any] = {
        "observedGeneration": seen.generation,
        "lastScheduleTime": iso(last_schedule) if last_schedule else None,
        "lastTickTime": iso(last_tick) if last_tick else None,
        "lastSuccessfulTime": last_success,
        "nextScheduleTime": iso(wake_at) if wake_at else None,
        "active": len(running),
        "activeRuns": running,
        "lastRun": last_run,
        "missedTicks": missed,
        "skippedTicks": skipped,
        "state": state,
        "reason": str(reason),
        "message": message,
        "conditions": schedule_conditions(state, reason, message, seen.generation, now, status),
    }
    return ScheduleDecision(create, deletes, tuple(events), new_status, wake_at)


def _last_run(recorded: object, children: Sequence[ScheduledChild]) -> dict[str, Any] | None:
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
        "scheduledTime": iso(newest.order),
        "state": newest.state,
        "reason": newest.reason,
        "message": newest.message[:1024],
    }
    if newest.exit_code is not None:
        run["exitCode"] = newest.exit_code
    if newest.finished_at is not None:
        run["finishedAt"] = iso(newest.finished_at)
    return run


def _last_success(recorded: object, children: Sequence[ScheduledChild]) -> str | None:
    times = [parse_time(recorded)] if isinstance(recorded, str) else []
    times += [c.finished_at or c.order for c in children if c.succeeded]
    known = [t for t in times if t is not None]
    return iso(max(known)) if known else None


def _verdict(
    spec: ScheduleSpec, last_run: Mapping[str, Any] | None, wake_at: datetime | None, active: int
) -> tuple[str, Reason | str, str]:
    """status.state, reason and message: the last finished run's outcome, and what is next."""
    nxt = f"next run at {iso(wake_at)}" if wake_at else "no run is scheduled"
    doing = f"; {active} running" if active else ""
    if spec.suspend:
        return "Suspended", Reason.SUSPENDED, f"spec.suspend is true: no tick starts{doing}"
    if last_run is None:
        return "Scheduled", Reason.SCHEDULED, f"no run has finished yet{doing}; {nxt}"
    name, state = last_run.get("name"), str(last_run.get("state"))
    if state in _FAILED:
        reason = str(last_run.get("reason") or Reason.COMMAND_FAILED)
        detail = str(last_run.get("message") or "")
        text = f"the last run, {name}, ended {state}" + (f": {detail}" if detail else "")
        return "Failed", reason, f"{text}{doing}; {nxt}"
    return "Succeeded", Reason.SUCCEEDED, f"the last run, {name}, succeeded{doing}; {nxt}"


def schedule_conditions(
    state: str, reason: str, message: str, generation: int, now: datetime, status: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """A schedule is Ready while its last run succeeded (or none has finished yet, or it is
    suspended: nothing is wrong), and Stalled while its last run failed. Never Reconciling: a
    schedule waiting for its next tick is current. A schedule never finishes, so it has no
    Finished condition."""
    as_run = "Failed" if state == "Failed" else "Succeeded"
    previous = list(status.get("conditions") or [])
    full = conditions_for(as_run, str(reason), message, generation, iso(now), previous)
    return [c for c in full if c["type"] != FINISHED]


def schedule_problem(
    status: Mapping[str, Any], generation: int, now: datetime, message: str
) -> dict[str, Any]:
    """The status of a schedule whose spec cannot be used (it passed an older CRD): Stalled,
    and no tick starts until it is edited."""
    reason = Reason.INVALID_SPEC
    return {
        "observedGeneration": generation,
        "state": "Failed",
        "reason": str(reason),
        "message": message,
        "nextScheduleTime": None,
        "conditions": schedule_conditions("Failed", reason, message, generation, now, status),
    }


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
