"""Recent run durations, so the first poll of a run lands when runs like it usually end.

Under the AKS resource provider's budget (60 requests, then one per second per subscription, for
submits and polls together) a poll that finds the command still running is a request taken from
another run's submission. The first poll of a run is therefore scheduled at the median duration
of recent runs on the same cluster (or, before any ended there, the same subscription); polls
after it back off from the initial interval.

Durations are learnt from results as they come, and at start-up from the runs each RunCommand's
``status.history`` records (ARM's startedAt and finishedAt, kept in etcd), so a restart does not
make first polls blind. Each run counts once, however often it is read (keyed by command id),
and the window keeps the runs that finished last.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "EndedRun",
    "RunDurations",
    "ended_run",
    "first_poll_seconds",
    "format_timestamp",
    "history_runs",
    "parse_timestamp",
    "run_seconds",
    "seconds_after",
]


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


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes timestamps; a naive moment is taken
    to be UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_after(moment: datetime, seconds: float) -> datetime:
    """`moment + seconds`, saturating instead of overflowing past year 9999."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def first_poll_seconds(expected: float, cadence: float = math.inf) -> float:
    """When to poll a run first, given how long runs like it take: a little after (5 %, plus
    half a second), and no more than half a ``cadence`` (the interval the budget allows between
    polls, core.pollrate) after it, so a run that ends on time is seen well within one cadence.
    At the median itself half of them are still running, and under the AKS budget each such
    poll is a request taken from another run."""
    return min(expected * 1.05 + 0.5, expected + cadence / 2)


def _epoch(text: object) -> float | None:
    moment = parse_timestamp(text)
    return moment.timestamp() if moment is not None else None


def run_seconds(started_at: object, finished_at: object) -> float | None:
    """ARM's own measure of a run (startedAt to finishedAt), or None when it lacks either."""
    started, finished = _epoch(started_at), _epoch(finished_at)
    if started is None or finished is None:
        return None
    seconds = finished - started
    return seconds if seconds >= 0 else None


@dataclass(frozen=True)
class EndedRun:
    """One run that ended, as ARM measured it."""

    seconds: float
    finished: float  # ARM's finishedAt, seconds since the epoch
    command_id: str | None = None


def ended_run(
    started_at: object, finished_at: object, command_id: str | None = None
) -> EndedRun | None:
    """A run from ARM's startedAt and finishedAt, or None when it lacks either."""
    seconds, finished = run_seconds(started_at, finished_at), _epoch(finished_at)
    if seconds is None or finished is None:
        return None
    return EndedRun(seconds, finished, command_id or None)


def history_runs(status: Mapping[str, Any]) -> Iterator[EndedRun]:
    """The runs a RunCommand's status.history records with both of ARM's times."""
    for entry in status.get("history") or ():
        if isinstance(entry, Mapping):
            command_id = entry.get("commandId")
            command = str(command_id) if command_id else None
            run = ended_run(entry.get("startedAt"), entry.get("finishedAt"), command)
            if run is not None:
                yield run


class RunDurations:
    """The ``window`` runs that finished last, per cluster and per subscription (keys
    casefolded)."""

    def __init__(self, window: int = 20, *, ceiling_seconds: float = 3600.0) -> None:
        self._window = window
        self._ceiling = ceiling_seconds
        # key -> runs ordered by finish time (ties: in the order they were learnt)
        self._by_key: dict[str, list[tuple[float, int, EndedRun]]] = {}
        self._learnt = 0

    def record(self, subscription_id: str, cluster_id: str, run: EndedRun | float) -> None:
        """Learn a run (bare seconds: one that ended just now). A command id already learnt is
        not counted again."""
        run = run if isinstance(run, EndedRun) else EndedRun(run, math.inf)
        self._learnt += 1
        for key in (f"sub:{subscription_id.casefold()}", f"cluster:{cluster_id.casefold()}"):
            runs = self._by_key.setdefault(key, [])
            if run.command_id is not None and any(
                known.command_id == run.command_id for _, _, known in runs
            ):
                continue  # already learnt, from its result or from another read of history
            bisect.insort(runs, (run.finished, self._learnt, run))
            del runs[: max(0, len(runs) - self._window)]

    def expected(self, subscription_id: str, cluster_id: str) -> float | None:
        """The median of the cluster's recent runs, else the subscription's, else None;
        bounded so one very long run cannot postpone a first poll for hours."""
        for key in (f"cluster:{cluster_id.casefold()}", f"sub:{subscription_id.casefold()}"):
            recent = self._by_key.get(key)
            if recent:
                return min(self._ceiling, statistics.median(run.seconds for _, _, run in recent))
        return None
