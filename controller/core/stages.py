"""Staged rollouts of a RunCommandSet round (spec.stages): which stage a cluster belongs to, and
which stage may start clusters now. No I/O.

A round runs its stages in order. A stage starts only once the stage before it ended within its
maxFailures and its soak elapsed, and, with `approval: Required`, once spec.approvals names it
for this round (its round key): an approval never carries over to a later round, because a later
round has another key. A stage past its maxFailures ends the round: later stages never start.

Everything is derived from the children (their stage label and state) and the set's status (a
stage's start and end times, kept per round), so a restart neither restarts a soak nor skips a
gate: a stage whose end was not recorded yet is given the end time of the look that sees it, which
can only make a soak longer. An empty stage succeeds at once, without soak or approval: it has
nothing to gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.core.bounds import check_bound, resolve_bound
from controller.core.decide import Event
from controller.core.durations import format_timestamp
from controller.vocabulary import EventType, Reason, SetState, StageState

PENDING, WAITING, SOAKING = StageState.PENDING, StageState.WAITING_FOR_APPROVAL, StageState.SOAKING
PROGRESSING, SUCCEEDED, FAILED = StageState.PROGRESSING, StageState.SUCCEEDED, StageState.FAILED
_STARTED = (PROGRESSING, SOAKING, SUCCEEDED, FAILED)
_REQUIRED = "Required"  # a stage's spec.approval that gates it


@dataclass(frozen=True)
class Stage:
    name: str
    match_tags: Mapping[str, str]
    match_expressions: tuple[tuple[str, frozenset[str]], ...]
    max_concurrency: int | str | None  # None: the set's own
    max_failures: int | str
    soak_seconds: int
    approval_required: bool

    @property
    def selects_all(self) -> bool:
        return not self.match_tags and not self.match_expressions

    def matches(self, tags: Mapping[str, str]) -> bool:
        if any(tags.get(key) != value for key, value in self.match_tags.items()):
            return False
        return all(tags.get(key) in values for key, values in self.match_expressions)


def parse_stages(raw: Sequence[Mapping[str, Any]] | None) -> tuple[Stage, ...]:
    """spec.stages, checked as the CRD checks them (for objects applied past the schema)."""
    stages: list[Stage] = []
    for index, entry in enumerate(raw or ()):
        where = f"spec.stages[{index}]"
        name = str(entry["name"])
        if any(s.name == name for s in stages):
            raise ValueError(f"{where}: stage name {name!r} is used twice")
        for bound in ("maxConcurrency", "maxFailures"):
            check_bound(entry.get(bound), f"{where}.{bound}")
        stage = Stage(
            name=name,
            match_tags=dict(entry.get("matchTags") or {}),
            match_expressions=tuple(
                (e["key"], frozenset(e["values"])) for e in entry.get("matchTagExpressions") or ()
            ),
            max_concurrency=entry.get("maxConcurrency"),
            max_failures=entry.get("maxFailures", 0),
            soak_seconds=int(entry.get("soakSeconds", 0)),
            approval_required=entry.get("approval") == _REQUIRED,
        )
        if stage.selects_all and index != len(raw or ()) - 1:
            raise ValueError(f"{where}: only the last stage may omit matchTags/matchTagExpressions")
        stages.append(stage)
    return tuple(stages)


def parse_approvals(
    raw: Sequence[Mapping[str, Any]] | None, stages: Sequence[Stage]
) -> frozenset[tuple[str, str]]:
    """spec.approvals as (stage, roundKey) pairs; naming a stage that does not exist is refused."""
    names = {s.name for s in stages}
    approvals: set[tuple[str, str]] = set()
    for index, entry in enumerate(raw or ()):
        if entry["stage"] not in names:
            raise ValueError(
                f"spec.approvals[{index}] approves stage {entry['stage']!r}, which spec.stages "
                f"does not have (stages: {', '.join(sorted(names)) or 'none'})"
            )
        approvals.add((str(entry["stage"]), str(entry["roundKey"])))
    return frozenset(approvals)


def stage_of(stages: Sequence[Stage], tags: Mapping[str, str]) -> str | None:
    """The first stage that matches the cluster's tags; None when none does."""
    return next((s.name for s in stages if s.matches(tags)), None)


@dataclass(frozen=True)
class Target:
    """What staging knows of one target of the round."""

    key: str  # the cluster's case-folded id
    resource_id: str
    label: str | None  # the stage label of its child in this round, if any
    tags: Mapping[str, str]  # as discovered now; empty when not discovered


def assign(
    stages: Sequence[Stage], targets: Sequence[Target], kept: Sequence[Mapping[str, Any]]
) -> tuple[list[str | None], list[dict[str, Any]]]:
    """Each target's stage: its child's label once it has one this round, else the first stage
    its tags match. Targets of no stage are not run; they are listed (with `kept`, the list of
    this round's status, since no discovery tells their tags again later in the round)."""
    known = {s.name for s in stages}
    unmatched = {str(e.get("clusterId", "")).casefold(): dict(e) for e in kept}
    assigned: list[str | None] = []
    for target in targets:
        stage = target.label if target.label in known else stage_of(stages, target.tags)
        assigned.append(stage)
        if stage is None:
            unmatched[target.key] = {
                "clusterId": target.resource_id,
                "reason": str(Reason.NO_MATCHING_STAGE),
            }
        else:
            unmatched.pop(target.key, None)
    return assigned, [unmatched[key] for key in sorted(unmatched)]


@dataclass
class StageCounts:
    """A stage's members as read, before this decision starts any."""

    total: int = 0
    waiting: int = 0  # not started
    in_flight: int = 0  # started, not final
    failures: int = 0  # Failed or Unknown


@dataclass(frozen=True)
class StageLook:
    stages: Sequence[Stage]
    counts: Mapping[str, StageCounts]
    previous: Mapping[str, Mapping[str, Any]]  # status.stages of this round, by name
    approved: frozenset[str]  # stages approved for this round
    set_concurrency: int | str | None
    now: datetime


@dataclass
class StageOutcome:
    name: str
    state: str
    room: int = 0  # clusters of this stage that may start now
    started_at: str | None = None
    finished_at: str | None = None
    soak_ends_at: str | None = None


@dataclass
class StagePlan:
    stages: list[StageOutcome] = field(default_factory=list)
    failed: str | None = None  # the stage that failed past its maxFailures (the round ends)
    waiting: str | None = None  # the stage waiting for approval
    soaking: str | None = None  # the stage whose soak gates the next
    wake_at: datetime | None = None  # when a soak ends: look again then

    @property
    def room(self) -> dict[str, int]:
        return {s.name: s.room for s in self.stages}

    @property
    def current(self) -> str | None:
        """The stage the round is at: the first not Succeeded, else the last."""
        return next((s.name for s in self.stages if s.state != SUCCEEDED), None) or (
            self.stages[-1].name if self.stages else None
        )


def plan_stages(look: StageLook) -> StagePlan:
    plan = StagePlan()
    gate_open = True  # every stage before this one ended within its failures and soaked
    for stage in look.stages:
        counts = look.counts.get(stage.name, StageCounts())
        before = look.previous.get(stage.name, {})
        outcome = StageOutcome(stage.name, PENDING)
        plan.stages.append(outcome)
        started = counts.total - counts.waiting
        if not gate_open and started == 0:
            continue
        if counts.total == 0:
            outcome.state = SUCCEEDED
            outcome.started_at = outcome.finished_at = _kept(before, "startedAt", look.now)
            continue
        approved = not stage.approval_required or stage.name in look.approved or started > 0
        if not approved:
            outcome.state = WAITING
            plan.waiting = plan.waiting or stage.name
            gate_open = False
            continue
        outcome.started_at = _kept(before, "startedAt", look.now)
        allowed = resolve_bound(stage.max_failures, counts.total, at_least_one=False) or 0
        failed = counts.failures > allowed
        done = counts.in_flight == 0 and (counts.waiting == 0 or failed)
        if failed:
            outcome.state = FAILED if done else PROGRESSING  # in flight: they finish first
            if done:
                ended_before = before.get("state") == FAILED
                outcome.finished_at = _kept(before if ended_before else {}, "finishedAt", look.now)
            plan.failed = plan.failed or stage.name
            gate_open = False
        elif done:
            ended_before = before.get("state") in (SOAKING, SUCCEEDED)
            finished = _kept(before if ended_before else {}, "finishedAt", look.now)
            soak_ends = parse_time(finished) + timedelta(seconds=stage.soak_seconds)
            outcome.finished_at, outcome.soak_ends_at = finished, format_timestamp(soak_ends)
            if look.now < soak_ends:
                outcome.state = SOAKING
                plan.soaking = plan.soaking or stage.name
                plan.wake_at = soak_ends if plan.wake_at is None else min(plan.wake_at, soak_ends)
                gate_open = False
            else:
                outcome.state = SUCCEEDED
        else:
            outcome.state = PROGRESSING
            if gate_open:
                bound = stage.max_concurrency or look.set_concurrency
                concurrency = resolve_bound(bound, counts.total, at_least_one=True) or counts.total
                outcome.room = max(0, concurrency - counts.in_flight)
            gate_open = False
    return plan


def stage_entries(
    stages: Sequence[Stage], plan: StagePlan, counts: Mapping[str, Mapping[str, int]]
) -> list[dict[str, Any]]:
    """status.stages: each stage's state, counts (after this decision's starts) and times."""
    required = {s.name for s in stages if s.approval_required}
    entries = []
    for outcome in plan.stages:
        entry: dict[str, Any] = {"name": outcome.name, "state": str(outcome.state),
                                 **counts.get(outcome.name, {})}  # fmt: skip
        if outcome.name in required:
            entry["approval"] = _REQUIRED
        times = {"startedAt": outcome.started_at, "finishedAt": outcome.finished_at,
                 "soakEndsAt": outcome.soak_ends_at}  # fmt: skip
        entry.update({key: value for key, value in times.items() if value is not None})
        entries.append(entry)
    return entries


def round_verdict(
    plan: StagePlan, *, finished: bool, round_number: int, round_key: str, set_name: str
) -> tuple[str, Reason, str] | None:
    """The set's state, reason and message when a stage decides them: a stage failed (once
    nothing is in flight), one waits for approval, or one soaks. None: the round's own."""
    if finished and plan.failed is not None:
        later = [s.name for s in plan.stages if s.state == PENDING]
        message = (
            f"round {round_number}: stage {plan.failed} failed: more of its clusters failed "
            "than its maxFailures"
            + (f"; later stages never started: {', '.join(later)}" if later else "")
            + "; change spec.retryFailedToken to retry its failed clusters"
        )
        return SetState.FAILED, Reason.STAGE_FAILED, message
    if plan.waiting is not None:
        message = (
            f"round {round_number}: stage {plan.waiting} waits for approval for round "
            f"{round_key}: run `kubectl runcommand approve {set_name} --stage {plan.waiting}`, "
            f"or add {{stage: {plan.waiting}, roundKey: {round_key}}} to spec.approvals"
        )
        return SetState.WAITING_FOR_APPROVAL, Reason.WAITING_FOR_APPROVAL, message
    soaking = next((s for s in plan.stages if s.name == plan.soaking), None)
    if soaking is not None:
        message = (
            f"round {round_number}: stage {soaking.name} succeeded; soaking until "
            f"{soaking.soak_ends_at} before the next stage starts"
        )
        return SetState.PROGRESSING, Reason.SOAKING, message
    return None


def stage_events(
    stages: Sequence[Stage],
    before: Mapping[str, Mapping[str, Any]],
    plan: StagePlan,
    round_key: str,
) -> list[Event]:
    """One event per stage change: started (approved), waiting for approval, ended."""
    required = {s.name for s in stages if s.approval_required}
    events: list[Event] = []

    def say(type_: str, reason: str, message: str) -> None:
        events.append(Event(type_, reason, message))

    for outcome in plan.stages:
        old = str(before.get(outcome.name, {}).get("state", PENDING))
        new, name = outcome.state, outcome.name
        if old == new:
            continue
        if new == WAITING:
            say(EventType.NORMAL, Reason.STAGE_WAITING_FOR_APPROVAL,
                f"stage {name} waits for approval for round {round_key}")  # fmt: skip
            continue
        if old in (PENDING, WAITING) and new in _STARTED:
            if name in required:
                say(EventType.NORMAL, Reason.STAGE_APPROVED,
                    f"stage {name} approved for round {round_key}")  # fmt: skip
            say(EventType.NORMAL, Reason.STAGE_STARTED, f"stage {name} started")
        if new == FAILED:
            say(EventType.WARNING, Reason.STAGE_FAILED, f"stage {name} failed past its maxFailures")
        elif new in (SOAKING, SUCCEEDED) and old not in (SOAKING, SUCCEEDED):
            soak = f"; soaking until {outcome.soak_ends_at}" if new == SOAKING else ""
            say(EventType.NORMAL, Reason.STAGE_SUCCEEDED, f"stage {name} succeeded{soak}")
    return events


def _kept(before: Mapping[str, Any], key: str, now: datetime) -> str:
    value = before.get(key)
    return value if isinstance(value, str) and value else format_timestamp(now)


def parse_time(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))
