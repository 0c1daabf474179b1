"""Recent run durations: what the first poll of a run waits for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.core.durations import (
    EndedRun,
    RunDurations,
    ended_run,
    first_poll_seconds,
    history_runs,
    run_seconds,
)
from tests.helpers import OTHER_SUBSCRIPTION as SUB_B
from tests.helpers import SUBSCRIPTION as SUB_A

CLUSTER_1 = f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/x/managedClusters/one"
CLUSTER_2 = f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/x/managedClusters/two"


def test_nothing_known_before_a_run_ends() -> None:
    assert RunDurations().expected(SUB_A, CLUSTER_1) is None


def test_median_of_the_cluster_then_of_the_subscription() -> None:
    durations = RunDurations()
    for seconds in (10.0, 30.0, 12.0):
        durations.record(SUB_A, CLUSTER_1, seconds)
    assert durations.expected(SUB_A, CLUSTER_1.upper()) == 12.0
    durations.record(SUB_A.upper(), CLUSTER_2, 40.0)
    assert durations.expected(SUB_A, CLUSTER_2) == 40.0
    # A cluster with no run yet gets its subscription's median; other subscriptions nothing.
    assert durations.expected(SUB_A, CLUSTER_2 + "x") == 21.0
    assert durations.expected(SUB_B, CLUSTER_1.replace(SUB_A, SUB_B)) is None


def test_only_the_recent_window_counts_and_the_ceiling_bounds_it() -> None:
    durations = RunDurations(window=3, ceiling_seconds=100.0)
    for seconds in (1.0, 1.0, 1.0, 500.0, 500.0):
        durations.record(SUB_A, CLUSTER_1, seconds)
    assert durations.expected(SUB_A, CLUSTER_1) == 100.0


@pytest.mark.parametrize(
    ("started", "finished", "seconds"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:20.5Z", 20.5),
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00", 60.0),
        (None, "2026-01-01T00:00:20Z", None),
        ("2026-01-01T00:00:20Z", "2026-01-01T00:00:00Z", None),
        ("yesterday", "2026-01-01T00:00:00Z", None),
    ],
)
def test_run_seconds_from_arm_times(
    started: str | None, finished: str | None, seconds: float | None
) -> None:
    assert run_seconds(started, finished) == seconds


def test_history_runs_are_read_from_status_with_both_of_arms_times() -> None:
    status = {
        "history": [
            {"commandId": "a", "startedAt": "2026-01-01T00:00:00Z",
             "finishedAt": "2026-01-01T00:00:45.5Z"},
            {"commandId": "b", "startedAt": "2026-01-01T00:01:00Z"},  # never finished in ARM
            {"state": "Failed", "reason": "InvalidSpec"},  # nothing was sent
            "not an entry",
        ]
    }  # fmt: skip
    (run,) = history_runs(status)
    assert (run.seconds, run.command_id) == (45.5, "a")
    assert run.finished == datetime(2026, 1, 1, 0, 0, 45, 500000, tzinfo=UTC).timestamp()
    assert ended_run("yesterday", "2026-01-01T00:00:45.5Z") is None
    assert list(history_runs({})) == []


def test_a_run_counts_once_and_the_window_keeps_those_that_finished_last() -> None:
    durations = RunDurations(window=3)
    # Read in any order (objects arrive from a listing), the three latest finishes count.
    for finished, seconds in ((40.0, 9.0), (10.0, 100.0), (30.0, 8.0), (20.0, 7.0)):
        durations.record(SUB_A, CLUSTER_1, EndedRun(seconds, finished, f"c{finished}"))
    assert durations.expected(SUB_A, CLUSTER_1) == 8.0
    # The same runs read again (the object seen again, or its result then its history).
    for _ in range(3):
        durations.record(SUB_A, CLUSTER_1, EndedRun(500.0, 40.0, "c40.0"))
    assert durations.expected(SUB_A, CLUSTER_1) == 8.0
    durations.record(SUB_A, CLUSTER_1, 60.0)  # no finish time: the latest
    assert durations.expected(SUB_A, CLUSTER_1) == 9.0  # median of 8, 9, 60


def test_first_poll_is_no_later_than_half_a_cadence_past_the_expected_end() -> None:
    assert first_poll_seconds(20.0) == pytest.approx(21.5)
    assert first_poll_seconds(20.0, 5.0) == pytest.approx(21.5)
    assert first_poll_seconds(45.0, 5.0) == pytest.approx(47.5)
    assert first_poll_seconds(300.0) == pytest.approx(315.5)
    assert first_poll_seconds(300.0, 5.0) == 302.5
