"""Recent run durations, so the first poll of a run lands when runs like it usually end.

Under the AKS resource provider's budget (60 requests, then one per second per subscription, for
submits and polls together) a poll that finds the command still running is a request taken from
another run's submission. The first poll of a run is therefore scheduled at the median duration
of recent runs on the same cluster (or, before any ended there, the same subscription); polls
after it back off from the initial interval.
"""

from __future__ import annotations

import statistics
from collections import deque
from datetime import UTC, datetime

__all__ = ["RunDurations", "first_poll_seconds", "parse_timestamp", "run_seconds"]


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes and ARM write them, or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A timestamp without offset (ARM's are UTC) must not crash arithmetic with an aware `now`.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def first_poll_seconds(expected: float) -> float:
    """When to poll a run first, given how long runs like it take: a little after (5 %, plus
    half a second). At the median itself half of them are still running, and under the AKS
    budget each such poll is a request taken from another run."""
    return expected * 1.05 + 0.5


def run_seconds(started_at: str | None, finished_at: str | None) -> float | None:
    """ARM's own measure of a run (startedAt to finishedAt), or None when it lacks either."""
    started, finished = parse_timestamp(started_at), parse_timestamp(finished_at)
    if started is None or finished is None:
        return None
    seconds = (finished - started).total_seconds()
    return seconds if seconds >= 0 else None


class RunDurations:
    """The last ``window`` durations per cluster and per subscription (keys casefolded)."""

    def __init__(self, window: int = 20, *, ceiling_seconds: float = 3600.0) -> None:
        self._window = window
        self._ceiling = ceiling_seconds
        self._by_key: dict[str, deque[float]] = {}

    def record(self, subscription_id: str, cluster_id: str, seconds: float) -> None:
        for key in (f"sub:{subscription_id.casefold()}", f"cluster:{cluster_id.casefold()}"):
            self._by_key.setdefault(key, deque(maxlen=self._window)).append(seconds)

    def expected(self, subscription_id: str, cluster_id: str) -> float | None:
        """The median of the cluster's recent runs, else the subscription's, else None;
        bounded so one very long run cannot postpone a first poll for hours."""
        for key in (f"cluster:{cluster_id.casefold()}", f"sub:{subscription_id.casefold()}"):
            recent = self._by_key.get(key)
            if recent:
                return min(self._ceiling, statistics.median(recent))
        return None
