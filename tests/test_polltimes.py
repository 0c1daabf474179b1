"""Poll timings (controller/polltimes.py) on a hand-turned clock: blind runs, waves, learning."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controller.arm import CommandHandle, CommandRunning
from controller.arm.models import BudgetRoom
from controller.core import Observation, Settings, after_poll, after_submit
from controller.core.durations import EndedRun, first_poll_seconds
from controller.polltimes import PollTimes
from controller.settings import PollSettings
from tests.core import core_helpers
from tests.core.core_helpers import NOW, make_spec, merge, submitting
from tests.helpers import OTHER_SUBSCRIPTION as OTHER
from tests.helpers import SUBSCRIPTION as SUB
from tests.helpers import FakeClock

CLUSTER = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
)
SETTINGS = Settings()


@pytest.fixture
def setup() -> tuple[PollTimes, FakeClock, dict[str, float]]:
    clock, advanced = FakeClock(1000.0), {}

    def advance(uid: str, delay: float) -> bool:
        advanced[uid] = delay
        return True

    return PollTimes(SETTINGS, advance, clock, wave=PollSettings.wave), clock, advanced


def test_a_run_with_nothing_learnt_is_polled_blind_until_a_wave_forms(
    setup: tuple[PollTimes, FakeClock, dict[str, float]],
) -> None:
    polls, clock, _ = setup
    for i in range(10):  # up to PollSettings.wave blind runs: each polled from 1 s
        assert polls.submitted(f"r{i}", SUB, CLUSTER) is None
        clock.now += 1.0
    # The eleventh: the wave's first run has run 10 s without ending, so not sooner than that.
    assert polls.submitted("r10", SUB, CLUSTER) == pytest.approx(10.0)
    clock.now += 100.0  # never more than poll_max_seconds
    assert polls.submitted("r11", SUB, CLUSTER) == SETTINGS.poll_max_seconds
    assert polls.submitted("x0", OTHER, CLUSTER) is None  # another subscription: its own wave


def test_the_first_result_moves_every_blind_run_to_when_it_should_end(
    setup: tuple[PollTimes, FakeClock, dict[str, float]],
) -> None:
    polls, clock, advanced = setup
    polls.submitted("early", SUB, CLUSTER)
    clock.now += 12.0
    polls.submitted("late", SUB, CLUSTER)
    polls.submitted("elsewhere", OTHER, CLUSTER)
    polls.polled_in("early", 8.0)
    clock.now += 8.0  # 20 s after "early" was sent, a run there ends after 20 s
    polls.ended(SUB, CLUSTER, 20.0)
    due = first_poll_seconds(20.0)
    assert advanced == {"early": pytest.approx(due - 20.0), "late": pytest.approx(due - 8.0)}
    # If late after that, their polls back off from the start again.
    assert polls.previous_delay("early") == SETTINGS.poll_initial_seconds / 2
    # Learnt: the next run there is expected to take 20 s; nothing left blind to move.
    assert polls.submitted("next", SUB, CLUSTER) == 20.0
    advanced.clear()
    polls.ended(SUB, CLUSTER, 20.0)
    assert advanced == {}


def test_a_forgotten_run_is_not_moved_and_keeps_no_state(
    setup: tuple[PollTimes, FakeClock, dict[str, float]],
) -> None:
    polls, _, advanced = setup
    polls.submitted("gone", SUB, CLUSTER)
    polls.polled_in("gone", 4.0)
    polls.forget("gone")
    assert polls.previous_delay("gone") == SETTINGS.poll_initial_seconds
    polls.ended(SUB, CLUSTER, 5.0)
    assert advanced == {}


# A run's whole schedule on a hand-turned clock, decided by the core as the runtime does ------

IDLE = (BudgetRoom(249, 25), BudgetRoom(57, 1))  # alone in its subscription, AKS budget
FULL = (BudgetRoom(249, 25), BudgetRoom(-30, 1))  # thirty submissions waiting for tokens


@dataclass
class Schedule:
    polls: int  # GETs of the result, the one that finds it included
    late: float  # ARM's end to the poll that sees it
    delays: list[float]


def run_once(polls: PollTimes, clock: FakeClock, seconds: float) -> Schedule:
    """One run of `seconds` through PollTimes and the core's decisions, as Runtime performs
    them (submitted -> after_submit; each poll: cadence -> after_poll -> polled_in)."""
    uid, spec = f"run-{clock.now}", make_spec()
    status = submitting(spec)
    sent = clock.now
    expected = polls.submitted(uid, core_helpers.SUB, core_helpers.RESOURCE_ID)
    cadence = polls.cadence(uid, core_helpers.SUB)
    handle = CommandHandle(core_helpers.COMMAND_ID, core_helpers.LOCATION, "c")
    decision = after_submit(Observation(spec, status, 1, NOW, SETTINGS), handle, expected, cadence)
    status = merge(status, decision.patch)
    delays, count = [], 0
    while True:
        delays.append(decision.delay)
        polls.polled_in(
            uid, decision.delay if decision.backoff_from is None else decision.backoff_from
        )
        clock.now += decision.delay
        count += 1
        if clock.now - sent >= seconds:
            polls.ended(
                core_helpers.SUB, core_helpers.RESOURCE_ID, EndedRun(seconds, sent + seconds)
            )
            polls.forget(uid)
            return Schedule(count, clock.now - sent - seconds, delays)
        cadence = polls.cadence(uid, core_helpers.SUB)
        answer = CommandRunning(None, None, "Running")
        seen = Observation(spec, status, 1, NOW, SETTINGS)
        decision = after_poll(seen, answer, polls.previous_delay(uid), cadence)


def history_of(seconds: float) -> dict[str, object]:
    """A RunCommand's status after one run of `seconds` ended (as the core records it)."""
    spec = make_spec()
    status = core_helpers.running(spec)
    ended = core_helpers.result(
        started_at="2025-03-01T12:00:00Z",
        finished_at=f"2025-03-01T12:{seconds // 60:02.0f}:{seconds % 60:02.0f}Z",
    )
    return merge(status, after_poll(Observation(spec, status, 1, NOW, SETTINGS), ended, 1.0).patch)


def fresh(room: tuple[BudgetRoom, ...] = IDLE) -> tuple[PollTimes, FakeClock]:
    clock = FakeClock(1000.0)
    return PollTimes(
        SETTINGS, lambda uid, delay: False, clock, lambda _sub: room, wave=PollSettings.wave
    ), clock


@pytest.mark.parametrize("seconds", [5.0, 45.0, 300.0])
def test_alone_in_its_subscription_a_run_is_seen_within_the_interval_of_its_end(
    seconds: float,
) -> None:
    polls, clock = fresh()
    blind = run_once(polls, clock, seconds)  # nothing known of the cluster
    assert blind.late <= SETTINGS.poll_interval_seconds
    assert max(blind.delays) <= SETTINGS.poll_interval_seconds
    learnt = run_once(polls, clock, seconds)  # the same operator, one run learnt
    assert learnt.late <= SETTINGS.poll_interval_seconds
    assert learnt.polls == 1


def test_a_45_s_run_on_a_cluster_with_no_history_takes_at_most_12_polls() -> None:
    polls, clock = fresh()
    blind = run_once(polls, clock, 45.0)
    # 1, 3, 7, 12, 17, ... 47 s: the backoff from 1 s, then every 5 s.
    assert blind.delays == [1.0, 2.0, 4.0] + [5.0] * 8
    assert (blind.polls, blind.late) == (11, 2.0)


def test_after_a_restart_durations_come_back_from_status_history() -> None:
    status = history_of(45.0)
    polls, clock = fresh()  # a new process: nothing in memory
    polls.read_history(status)
    polls.read_history(status)  # the same object seen again: its run counts once
    restarted = run_once(polls, clock, 45.0)
    assert restarted.polls <= 3
    assert restarted.late <= SETTINGS.poll_interval_seconds
    assert restarted.delays == [pytest.approx(first_poll_seconds(45.0, 5.0))]


def test_history_without_a_cluster_or_times_teaches_nothing() -> None:
    polls, _ = fresh()
    status = history_of(45.0)
    polls.read_history({**status, "clusterId": "not a resource id"})
    polls.read_history({"clusterId": status["clusterId"], "history": [{"commandId": "x"}]})
    assert polls.submitted("next", core_helpers.SUB, core_helpers.RESOURCE_ID) is None


def test_when_the_budget_is_full_polls_stretch_as_before() -> None:
    polls, clock = fresh(FULL)
    blind = run_once(polls, clock, 45.0)
    # Submissions wait: the cadence is the longest stretch, the backoff of old.
    assert blind.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert blind.polls == 6


def test_the_cadence_counts_the_runs_in_flight_in_the_subscription() -> None:
    polls, _ = fresh((BudgetRoom(58, 1),))
    for i in range(12):
        polls.cadence(f"r{i}", SUB)
    assert polls.cadence("r0", SUB) == 12.0  # a run asking again is not counted twice
    assert polls.cadence("x", OTHER) == 5.0  # another subscription has its own budget
    for i in range(12):
        polls.forget(f"r{i}")
    assert polls.cadence("r0", SUB) == 5.0
