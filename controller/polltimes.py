"""When to poll each run: how long since the last poll (the backoff), and when to poll a run
first, from how long runs like it took (core.durations).

A run sent before any like it has ended in its subscription is "blind": its polls back off from
1 s. Two things spare those polls:
- the first result in the subscription moves the next poll of every blind run there to when it
  should end (a 20 s run polled blind at 1, 3, 7, 15 and 31 s is seen 11 s late);
- in a wave (more than PollSettings.wave blind runs in flight in one subscription, as when
  a set or a pipeline starts hundreds at once) the oldest run has been running all along
  without ending, so a new one is first polled no sooner than that age, and at most
  poll_max_seconds.

While the budget has room, a run in flight is polled at least every poll_interval_seconds
(5 s), as `az` polls; as it fills, the interval stretches (core.pollrate). What the buckets
say comes from the callable this module is handed (`room`: ArmThrottle.poll_room), and how
many runs are in flight per subscription from the runs it times.

Durations are learnt from results, and from each RunCommand's status.history when the runtime
first sees it (kopf's initial listing hands every object over at start-up), so a restart does
not make first polls blind.

This module keeps timings only; the scheduler it is handed moves the polls (`advance`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controller.arm.models import BudgetRoom, ClusterRef
from controller.core import Settings
from controller.core.durations import EndedRun, RunDurations, first_poll_seconds, history_runs
from controller.core.pollrate import poll_cadence

# advance(uid, delay) -> bool: bring a pending poll forward (Scheduler.advance for "poll").
Advance = Callable[[str, float], bool]
# room(subscription) -> what the buckets its polls draw from say now (ArmThrottle.poll_room).
Room = Callable[[str], Sequence[BudgetRoom]]


class PollTimes:
    def __init__(
        self,
        settings: Settings,
        advance: Advance,
        clock: Callable[[], float] | None = None,
        room: Room | None = None,
        *,
        wave: int,
    ) -> None:
        """`clock`: seconds on the scheduler's clock (default: the running loop's time).
        `room`: what the budget says per subscription (default: nothing known, the buckets
        are taken to have room). `wave`: PollSettings.wave (controller/settings.py)."""
        self._settings, self._advance = settings, advance
        self._wave = wave
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._room: Room = room or (lambda _subscription: ())
        self._durations = RunDurations()
        self._polled: dict[str, str] = {}  # uid -> subscription (casefolded) of runs in flight
        self._in_flight: Counter[str] = Counter()  # subscription -> runs in flight
        self._delays: dict[str, float] = {}  # uid -> the delay the next backoff doubles
        # subscription (casefolded) -> uid -> (cluster id, loop time sent), for blind runs
        self._blind: dict[str, dict[str, tuple[str, float]]] = {}
        self._wave_started: dict[str, float] = {}  # subscription -> its first blind run sent

    def previous_delay(self, uid: str) -> float:
        return self._delays.get(uid, self._settings.poll_initial_seconds)

    def polled_in(self, uid: str, delay: float) -> None:
        """The run's next poll is in `delay` seconds, and its backoff doubles from that."""
        self._delays[uid] = delay

    def cadence(self, uid: str, subscription_id: str) -> float:
        """The run is in flight in that subscription: the longest it should wait between
        polls now, from what the budget says and how many runs are polled there."""
        key = subscription_id.casefold()
        if self._polled.get(uid) != key:
            self._drop(uid)
            self._polled[uid] = key
            self._in_flight[key] += 1
        return poll_cadence(self._room(subscription_id), self._in_flight[key], self._settings)

    def read_history(self, status: Mapping[str, Any]) -> None:
        """Learn the runs a RunCommand's status.history records (on the cluster status names).
        Runs already learnt are not counted twice, so reading an object again is harmless."""
        cluster_id = status.get("clusterId")
        if not status.get("history") or not isinstance(cluster_id, str):
            return
        try:
            cluster = ClusterRef.parse(cluster_id)
        except ValueError:
            return
        for run in history_runs(status):
            self._durations.record(cluster.subscription_id, cluster_id, run)

    def submitted(self, uid: str, subscription_id: str, cluster_id: str) -> float | None:
        """ARM accepted the run: how long runs like it take (to wait before its first poll),
        or None when nothing is known: poll from 1 s."""
        expected = self._durations.expected(subscription_id, cluster_id)
        if expected is not None:
            return expected
        key, now = subscription_id.casefold(), self._clock()
        blind = self._blind.setdefault(key, {})
        started = self._wave_started.setdefault(key, now)
        blind[uid] = (cluster_id, now)
        if len(blind) <= self._wave:
            return None
        return min(now - started, self._settings.poll_max_seconds) or None

    def ended(self, subscription_id: str, cluster_id: str, run: EndedRun | float) -> None:
        """A run ended (ARM's own measure, or bare seconds): learn it, and poll the runs sent
        blind in that subscription when runs like them should end."""
        self._durations.record(subscription_id, cluster_id, run)
        key = subscription_id.casefold()
        blind = self._blind.pop(key, {})
        self._wave_started.pop(key, None)
        now = self._clock()
        for uid, (blind_cluster, sent) in blind.items():
            expected = self._durations.expected(subscription_id, blind_cluster)
            if expected is None:
                continue
            due = sent + first_poll_seconds(expected, self.cadence(uid, subscription_id))
            if self._advance(uid, max(0.0, due - now)):
                # Late after that: back off from the start, as after a first poll on time.
                self._delays[uid] = self._settings.poll_initial_seconds / 2

    def forget(self, uid: str) -> None:
        """The run is no longer polled (it ended, or its object is gone)."""
        self._delays.pop(uid, None)
        self._drop(uid)
        for key, blind in list(self._blind.items()):
            if blind.pop(uid, None) is not None and not blind:
                del self._blind[key]
                self._wave_started.pop(key, None)

    def _drop(self, uid: str) -> None:
        key = self._polled.pop(uid, None)
        if key is not None:
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
