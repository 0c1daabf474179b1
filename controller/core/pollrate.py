"""How often each run in flight may be polled: as often as the budget allows, and less often
only when it does not.

`az aks command invoke` polls every 5 s, so it sees a result at most 5 s late. The operator
polls each run at least that often (``Settings.poll_interval_seconds``) while the buckets its
polls draw from can pay for it: every run in flight in the subscription polled once per
interval must fit in what the buckets refill over that interval. When it does not, the interval
stretches to the share of the refill each run gets, and further while submissions hold
reservations (they come first: each waiting one is a token polls leave to it), up to
``Settings.poll_max_seconds``. A 429's Retry-After still holding a bucket stretches it to that.

Stored tokens (the burst) are not counted as room for polls: they are what the next wave of
submissions spends, and a poll rate that is sustainable from the refill alone never needs them.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.arm.models import BudgetRoom

from .run_settings import Settings

__all__ = ["poll_cadence"]


def poll_cadence(rooms: Iterable[BudgetRoom], in_flight: int, settings: Settings) -> float:
    """The longest a run in flight should wait between polls now, given what the buckets its
    polls draw from say (``rooms``) and how many runs are polled in the same subscription."""
    fastest = settings.poll_interval_seconds
    cadence = fastest
    for room in rooms:
        waiting = max(0.0, -room.tokens)  # submissions' reservations, served first
        cadence = max(
            cadence, (max(in_flight, 1) + waiting) / room.refill_per_second, room.blocked_seconds
        )
    return min(cadence, max(fastest, settings.poll_max_seconds))
