"""When to poll each run: how long since the last poll (the backoff), and when to poll a run
first, from how long runs like it took (core.durations).

A run sent before any like it has ended in its subscription is "blind": its polls back off from
1 s. Two things spare those polls:
- the first result in the subscription moves the next poll of every blind run there to when it
  should end (a 20 s run polled blind at 1, 3, 7, 15 and 31 s is seen 11 s late);
- in a wave (more than _WAVE blind runs in flight in one subscription, as when a set or a
  pipeline starts hundreds at once) the oldest run has been running all along without ending,
  so a new one is first polled no sooner than that age, and at most poll_max_seconds.

This module keeps timings only; the scheduler it is handed moves the polls (`advance`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from controller.core import Settings
from controller.core.durations import RunDurations, first_poll_seconds

# advance(uid, delay) -> bool: bring a pending poll forward (Scheduler.advance for "poll").
Advance = Callable[[str, float], bool]
_WAVE = 10


class PollTimes:
    def __init__(
        self, settings: Settings, advance: Advance, clock: Callable[[], float] | None = None
    ) -> None:
        """`clock`: seconds on the scheduler's clock (default: the running loop's time)."""
        self._settings, self._advance = settings, advance
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._durations = RunDurations()
        self._delays: dict[str, float] = {}  # uid -> the delay the next backoff doubles
        # subscription (casefolded) -> uid -> (cluster id, loop time sent), for blind runs
        self._blind: dict[str, dict[str, tuple[str, float]]] = {}
        self._wave_started: dict[str, float] = {}  # subscription -> its first blind run sent

    def previous_delay(self, uid: str) -> float:
        return self._delays.get(uid, self._settings.poll_initial_seconds)

    def polled_in(self, uid: str, delay: float) -> None:
        """The run's next poll is in `delay` seconds, and its backoff doubles from that."""
        self._delays[uid] = delay

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
        if len(blind) <= _WAVE:
            return None
        return min(now - started, self._settings.poll_max_seconds) or None

    def ended(self, subscription_id: str, cluster_id: str, seconds: float) -> None:
        """A run ended after `seconds` (ARM's own measure): learn it, and poll the runs sent
        blind in that subscription when runs like them should end."""
        self._durations.record(subscription_id, cluster_id, seconds)
        key = subscription_id.casefold()
        blind = self._blind.pop(key, {})
        self._wave_started.pop(key, None)
        now = self._clock()
        for uid, (blind_cluster, sent) in blind.items():
            expected = self._durations.expected(subscription_id, blind_cluster)
            if expected is not None and self._advance(
                uid, max(0.0, sent + first_poll_seconds(expected) - now)
            ):
                # Late after that: back off from the start, as after a first poll on time.
                self._delays[uid] = self._settings.poll_initial_seconds / 2

    def forget(self, uid: str) -> None:
        """The run is no longer polled (it ended, or its object is gone)."""
        self._delays.pop(uid, None)
        for key, blind in list(self._blind.items()):
            if blind.pop(uid, None) is not None and not blind:
                del self._blind[key]
                self._wave_started.pop(key, None)
