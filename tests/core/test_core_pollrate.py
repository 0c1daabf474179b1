"""core.pollrate: how often a run in flight may be polled, from what the buckets say."""

from __future__ import annotations

import pytest

from controller.arm.models import BudgetRoom
from controller.core import Settings
from controller.core.pollrate import poll_cadence

SETTINGS = Settings()
AKS_IDLE = (BudgetRoom(249, 25), BudgetRoom(57, 1))  # ARM's reads, the provider's budget


def test_a_run_alone_in_an_idle_subscription_is_polled_every_interval() -> None:
    assert poll_cadence(AKS_IDLE, 1, SETTINGS) == SETTINGS.poll_interval_seconds == 5.0
    assert poll_cadence((), 1, SETTINGS) == 5.0  # nothing known: as if the buckets had room
    assert poll_cadence(AKS_IDLE, 1, Settings(poll_interval_seconds=2.0)) == 2.0


@pytest.mark.parametrize(
    ("in_flight", "cadence"),
    # Up to 5 runs polled every 5 s fit in the provider's 1/s; beyond, each gets its share.
    [(1, 5.0), (5, 5.0), (6, 6.0), (12, 12.0), (30, 30.0), (500, 30.0)],
)
def test_as_runs_in_flight_outgrow_the_refill_each_gets_its_share(
    in_flight: int, cadence: float
) -> None:
    assert poll_cadence(AKS_IDLE, in_flight, SETTINGS) == pytest.approx(cadence)


def test_the_burst_is_left_to_submissions_and_their_reservations_come_first() -> None:
    full = (BudgetRoom(58, 1),)
    assert poll_cadence(full, 10, SETTINGS) == 10.0  # stored tokens buy polls no speed
    waiting = (BudgetRoom(-8, 1),)  # eight submissions wait for tokens
    assert poll_cadence(waiting, 2, SETTINGS) == 10.0


def test_the_tightest_bucket_sets_the_pace_and_a_429_block_stretches_it() -> None:
    reads_only = (BudgetRoom(250, 25),)  # the arm profile: 125 runs polled every 5 s fit
    assert poll_cadence(reads_only, 125, SETTINGS) == 5.0
    assert poll_cadence(reads_only, 250, SETTINGS) == 10.0
    blocked = (BudgetRoom(250, 25), BudgetRoom(0, 1, blocked_seconds=12.0))
    assert poll_cadence(blocked, 1, SETTINGS) == 12.0
    assert poll_cadence((BudgetRoom(0, 1, blocked_seconds=90.0),), 1, SETTINGS) == 30.0
