"""Poll timings (controller/polltimes.py) on a hand-turned clock: blind runs, waves, learning."""

from __future__ import annotations

import pytest

from controller.core import Settings
from controller.core.durations import first_poll_seconds
from controller.polltimes import PollTimes
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

    return PollTimes(SETTINGS, advance, clock), clock, advanced


def test_a_run_with_nothing_learnt_is_polled_blind_until_a_wave_forms(
    setup: tuple[PollTimes, FakeClock, dict[str, float]],
) -> None:
    polls, clock, _ = setup
    for i in range(10):  # up to _WAVE blind runs: each polled from 1 s
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
