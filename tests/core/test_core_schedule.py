"""RunCommandSchedule decisions on a hand-turned clock: one child per tick, missed ticks after
downtime, startingDeadlineSeconds edges, Forbid, suspend, history limits, names, status."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.schedule import ScheduleObservation, plan_schedule, schedule_problem
from controller.core.schedule_history import ScheduledChild, tick_child_name
from controller.core.schedule_spec import ScheduleSpec
from controller.core.spec import InvalidSpec
from controller.vocabulary import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    SHARD_LABEL,
    TICK_LABEL,
    EventType,
    Reason,
)
from tests.helpers import examples

CLUSTER = {
    "resourceId": "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg"
    "/providers/Microsoft.ContainerService/managedClusters/aks"
}
CREATED = datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "schedule": "* * * * *",
        "runCommandTemplate": {"cluster": CLUSTER, "command": "date"},
        **extra,
    }


@dataclass
class World:
    """A schedule, its children and a clock that only moves when the test turns it."""

    spec: dict[str, Any]
    now: datetime = CREATED
    status: dict[str, Any] = field(default_factory=dict)
    children: dict[str, ScheduledChild] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    shard: str | None = None

    def look(self) -> Any:
        decision = plan_schedule(
            ScheduleObservation(
                "nightly",
                ScheduleSpec.parse(self.spec),
                self.status,
                1,
                CREATED,
                list(self.children.values()),
                self.now,
                self.shard,
            )
        )
        if decision.create is not None:
            write = decision.create
            self.created.append(write.name)
            self.children[write.name] = ScheduledChild(
                write.name, write.kind, "uid-" + write.name, write.tick, self.now,
                False, "Pending", None, "", "", None,
            )  # fmt: skip
        for child in decision.deletes:
            del self.children[child.name]
        self.status = decision.status
        self.events += [(str(e.reason), e.message) for e in decision.events]
        return decision

    def at(self, moment: datetime) -> Any:
        self.now = moment
        return self.look()

    def finish(self, name: str, state: str = "Succeeded", exit_code: int = 0) -> None:
        child = self.children[name]
        reason = "Succeeded" if state == "Succeeded" else "CommandFailed"
        self.children[name] = replace(
            child, finished=True, state=state, exit_code=exit_code, reason=reason,
            message=f"exit code {exit_code}", finished_at=self.now,
        )  # fmt: skip


def t(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minute, seconds=second)


def name_at(moment: datetime) -> str:
    return tick_child_name("nightly", moment)


def test_each_tick_creates_one_child_named_from_its_minute_and_looks_between_create_none() -> None:
    world = World(spec())
    assert world.look().create is None  # created 11:59:30: no tick has passed
    assert world.status["nextScheduleTime"] == "2026-03-01T12:00:00Z"
    for second in (0, 1, 30, 59):
        world.at(t(0, second))
    assert world.created == [name_at(t(0))]
    decision = world.at(t(1, 0))
    assert world.created == [name_at(t(0)), name_at(t(1))]
    assert name_at(t(1)) == f"nightly-{int(t(1).timestamp()) // 60}"
    assert decision.create is not None
    assert decision.create.labels == {SCHEDULE_LABEL: "nightly", TICK_LABEL: name_at(t(1))[8:]}
    assert decision.create.annotations == {SCHEDULED_TIME_ANNOTATION: "2026-03-01T12:01:00Z"}
    assert decision.create.spec == spec()["runCommandTemplate"]
    assert decision.wake_at == t(2)
    assert world.status["lastScheduleTime"] == "2026-03-01T12:01:00Z"
    assert world.status["active"] == 2 and world.status["activeRuns"] == world.created


def test_a_child_that_exists_for_the_tick_is_recorded_not_created_again() -> None:
    """A look whose status write was lost (a crash after the create) is decided again: the
    child of that tick is there, so the tick is recorded and nothing is created."""
    world = World(spec())
    world.at(t(0))
    world.status = {}  # the status write of that look never happened
    decision = world.look()
    assert decision.create is None and world.created == [name_at(t(0))]
    assert world.status["lastScheduleTime"] == "2026-03-01T12:00:00Z"
    assert world.status["missedTicks"] == 0


def test_after_downtime_only_the_latest_missed_tick_starts_and_the_rest_are_counted() -> None:
    world = World(spec(startingDeadlineSeconds=120))
    world.at(t(0))
    decision = world.at(t(5, 30))  # down from 12:00:10 to 12:05:30: ticks 1..5 passed
    assert decision.create is not None and decision.create.tick == t(5)
    assert world.created == [name_at(t(0)), name_at(t(5))]
    assert world.status["missedTicks"] == 4
    assert [r for r, _ in world.events] == [str(Reason.MISSED_SCHEDULE)]
    assert "4 earlier tick(s)" in world.events[0][1]
    world.at(t(5, 50))
    assert world.created == [name_at(t(0)), name_at(t(5))]  # never a second catch-up


def test_no_burst_and_no_give_up_after_a_long_outage() -> None:
    world = World(spec())
    world.at(t(0))
    decision = world.at(t(0) + timedelta(days=3, seconds=20))
    assert decision.create is not None and decision.create.tick == t(0) + timedelta(days=3)
    assert world.status["missedTicks"] == 3 * 24 * 60 - 1  # CronJob would stop past 100


@pytest.mark.parametrize(
    ("late", "starts"),
    [
        (timedelta(seconds=0), True),
        (timedelta(seconds=30), True),  # exactly the deadline: still in time (CronJob's rule)
        (timedelta(seconds=30, microseconds=1), False),
        (timedelta(seconds=59), False),
    ],
)
def test_starting_deadline_seconds_edges(late: timedelta, starts: bool) -> None:
    world = World(spec(schedule="0 * * * *", startingDeadlineSeconds=30))
    decision = world.at(t(0) + late)
    assert (decision.create is not None) == starts
    assert world.status["missedTicks"] == (0 if starts else 1)
    assert world.status["lastTickTime"] == "2026-03-01T12:00:00Z"
    if not starts:
        assert world.events[0][0] == str(Reason.MISSED_SCHEDULE)
        assert "startingDeadlineSeconds (30)" in world.events[0][1]
        world.at(t(0) + late + timedelta(seconds=1))
        assert world.created == []  # a missed tick is handled: never started later


def test_a_deadline_of_zero_starts_only_a_look_at_the_very_second() -> None:
    world = World(spec(startingDeadlineSeconds=0))
    assert world.at(t(0)).create is not None
    assert world.at(t(1, 1)).create is None


def test_forbid_skips_a_tick_while_a_run_is_active_says_so_and_never_starts_it_late() -> None:
    world = World(spec(concurrencyPolicy="Forbid"))
    world.at(t(0))
    decision = world.at(t(1))  # the 12:00 run takes 90 s
    assert decision.create is None
    assert world.status["skippedTicks"] == 1
    assert world.events == [
        (
            str(Reason.RUN_ALREADY_ACTIVE),
            "skipped the tick of 2026-03-01T12:01:00Z: concurrencyPolicy is Forbid and "
            f"RunCommand {name_at(t(0))} has not finished",
        )
    ]
    assert decision.events[0].type == EventType.NORMAL
    world.at(t(1, 30))
    world.finish(name_at(t(0)))
    assert world.at(t(1, 31)).create is None  # the skipped tick stays skipped
    assert world.at(t(2)).create is not None
    assert world.created == [name_at(t(0)), name_at(t(2))]
    assert world.status["skippedTicks"] == 1 and world.status["missedTicks"] == 0


def test_allow_runs_ticks_side_by_side() -> None:
    world = World(spec())
    world.at(t(0))
    world.at(t(1))
    assert world.status["active"] == 2


def test_suspend_starts_nothing_and_on_resume_the_latest_tick_may_start_in_the_deadline() -> None:
    world = World(spec(suspend=True, startingDeadlineSeconds=60))
    decision = world.at(t(3, 10))
    assert decision.create is None and decision.wake_at is None
    assert world.status["state"] == "Suspended"
    assert world.status["nextScheduleTime"] is None
    world.spec = spec(startingDeadlineSeconds=60)
    decision = world.at(t(3, 20))
    assert decision.create is not None and decision.create.tick == t(3)
    assert world.status["missedTicks"] == 3  # 12:00, 12:01, 12:02 passed while suspended


def test_history_limits_delete_the_oldest_finished_children_and_never_active_ones() -> None:
    world = World(spec(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1))
    for minute in range(6):
        world.at(t(minute))
        if minute < 5:
            state = "Failed" if minute in (1, 3) else "Succeeded"
            world.finish(name_at(t(minute)), state, 0 if state == "Succeeded" else 1)
    decision = world.at(t(5, 10))
    kept = sorted(world.children)
    assert kept == sorted([name_at(t(2)), name_at(t(3)), name_at(t(4)), name_at(t(5))])
    assert decision.deletes == ()  # settled
    assert world.status["active"] == 1
    assert world.status["lastRun"]["name"] == name_at(t(4))


def test_a_limit_of_zero_keeps_no_finished_child_but_the_status_remembers_the_run() -> None:
    world = World(spec(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0))
    world.at(t(0))
    world.at(t(0, 40))
    world.finish(name_at(t(0)), "Failed", 3)
    world.at(t(0, 50))
    assert world.children == {}
    world.at(t(0, 55))
    assert world.status["lastRun"]["name"] == name_at(t(0))
    assert world.status["lastRun"]["exitCode"] == 3
    assert world.status["state"] == "Failed"


def test_status_says_ready_when_the_last_run_succeeded_and_stalled_when_it_failed() -> None:
    world = World(spec())
    world.at(t(0))
    assert world.status["state"] == "Scheduled"
    assert conditions(world) == {"Ready": "True"}  # nothing wrong: waiting for a run to end
    world.finish(name_at(t(0)), "Failed", 2)
    world.at(t(0, 30))
    assert world.status["state"] == "Failed" and world.status["reason"] == "CommandFailed"
    assert conditions(world) == {"Ready": "False", "Stalled": "True"}
    assert world.status["lastRun"] == {
        "name": name_at(t(0)), "kind": "RunCommand", "scheduledTime": "2026-03-01T12:00:00Z",
        "state": "Failed", "reason": "CommandFailed", "message": "exit code 2", "exitCode": 2,
        "finishedAt": "2026-03-01T12:00:00Z",
    }  # fmt: skip
    assert world.status["lastSuccessfulTime"] is None
    world.at(t(1))
    world.now = t(1, 20)
    world.finish(name_at(t(1)))
    world.look()
    assert world.status["state"] == "Succeeded"
    assert conditions(world) == {"Ready": "True"}
    assert world.status["lastSuccessfulTime"] == "2026-03-01T12:01:20Z"
    assert "next run at 2026-03-01T12:02:00Z" in world.status["message"]


def conditions(world: World) -> dict[str, str]:
    return {c["type"]: c["status"] for c in world.status["conditions"]}


def test_a_manual_run_counts_as_active_for_forbid_and_as_history() -> None:
    world = World(spec(concurrencyPolicy="Forbid"))
    manual = ScheduledChild(
        "nightly-mabc123", "RunCommand", "u", None, t(0, -20), False, "Running", None, "", "", None
    )
    world.children[manual.name] = manual
    assert world.at(t(0)).create is None
    assert world.status["skippedTicks"] == 1


def test_children_inherit_the_schedules_shard() -> None:
    world = World(spec(), shard="blue")
    decision = world.at(t(0))
    assert decision.create is not None and decision.create.labels[SHARD_LABEL] == "blue"


def test_a_set_template_makes_set_children() -> None:
    template = {"template": {"command": "date"}, "clusters": [CLUSTER], "maxConcurrency": 1}
    world = World({"schedule": "@hourly", "runCommandSetTemplate": template})
    decision = world.at(t(0, 5))
    assert decision.create is not None
    assert decision.create.kind == "RunCommandSet" and decision.create.spec == template


def test_a_schedule_in_a_time_zone_ticks_in_it() -> None:
    world = World(spec(schedule="0 13 * * *", timeZone="Europe/Berlin"))  # 12:00 UTC in March
    assert world.at(t(0, 1)).create is not None


def test_a_child_finished_reads_from_its_finished_condition_of_its_generation() -> None:
    body = {
        "metadata": {
            "name": "nightly-1", "uid": "u", "generation": 2,
            "creationTimestamp": "2026-03-01T12:00:01Z",
            "annotations": {SCHEDULED_TIME_ANNOTATION: "2026-03-01T12:00:00Z"},
        },
        "status": {
            "observedGeneration": 2, "state": "Succeeded", "exitCode": 0,
            "conditions": [{"type": "Finished", "status": "True", "observedGeneration": 2}],
        },
    }  # fmt: skip
    child = ScheduledChild.from_body(body, "RunCommand")
    assert child.finished and child.succeeded and child.scheduled == t(0)
    stale = {**body, "metadata": {**body["metadata"], "generation": 3}}
    assert not ScheduledChild.from_body(stale, "RunCommand").finished


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"concurrencyPolicy": "Replace"}, "ARM has no cancel"),
        ({"schedule": "CRON_TZ=UTC * * * * *"}, "CRON_TZ"),
        ({"timeZone": "Nowhere/Land"}, "IANA"),
        ({"runCommandSetTemplate": {"template": {"command": "x"}, "clusters": [CLUSTER]}},
         "exactly one"),
        ({"runCommandTemplate": {"command": "x"}}, "cluster"),
    ],
)  # fmt: skip
def test_specs_the_crd_should_have_refused_are_invalid_with_a_message(
    change: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidSpec, match=says):
        ScheduleSpec.parse(spec(**change))


def test_an_invalid_spec_is_stalled_with_no_next_tick() -> None:
    status = schedule_problem({}, 4, t(0), "spec.schedule is bad")
    assert status["state"] == "Failed" and status["nextScheduleTime"] is None
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False",
        "Stalled": "True",
    }


@settings(max_examples=examples(200), deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 200), st.booleans(), st.booleans()), min_size=1, max_size=30
    ),
    deadline=st.one_of(st.none(), st.integers(0, 120)),
    forbid=st.booleans(),
)
def test_any_sequence_of_looks_lost_writes_and_ends_starts_each_tick_at_most_once(
    steps: list[tuple[int, bool, bool]], deadline: int | None, forbid: bool
) -> None:
    """Looks at any moments, status writes lost at random (a crash after the create), runs
    ending at random: no tick gets two children, every child is of a tick that had passed, at
    most one child is created per look, and Forbid never has two running."""
    extra: dict[str, Any] = {"concurrencyPolicy": "Forbid" if forbid else "Allow"}
    if deadline is not None:
        extra["startingDeadlineSeconds"] = deadline
    world = World(spec(**extra))
    for advance, lose_write, end_runs in steps:
        world.now += timedelta(seconds=advance)
        before, created = dict(world.status), len(world.created)
        decision = world.look()
        assert len(world.created) - created <= 1
        if decision.create is not None:
            assert decision.create.tick <= world.now and decision.create.tick.second == 0
            assert deadline is None or world.now - decision.create.tick <= timedelta(
                seconds=deadline
            )
        if lose_write:
            world.status = before
        if forbid:
            assert sum(1 for c in world.children.values() if not c.finished) <= 1
        if end_runs:
            for name, child in list(world.children.items()):
                if not child.finished:
                    world.finish(name)
    assert len(world.created) == len(set(world.created))
