"""Recent run durations: what the first poll of a run waits for."""

from __future__ import annotations

import pytest

from controller.core.durations import RunDurations, run_seconds

SUB_A = "11111111-2222-3333-4444-555555555555"
SUB_B = "99999999-2222-3333-4444-555555555555"
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
