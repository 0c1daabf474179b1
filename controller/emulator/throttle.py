"""ARM-style token buckets, one per (subscription, kind)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .config import BucketConfig, ThrottleConfig

Kind = Literal["reads", "writes", "lists"]


@dataclass
class Decision:
    allowed: bool
    remaining: int
    retry_after_seconds: int


class TokenBucket:
    def __init__(self, config: BucketConfig, clock: Callable[[], float]) -> None:
        self._capacity = float(config.capacity)
        self._refill = config.refill_per_second
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def take(self) -> Decision:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._refill)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Decision(True, int(self._tokens), 0)
        wait = math.ceil((1.0 - self._tokens) / self._refill)
        return Decision(False, 0, max(1, wait))


class Throttle:
    def __init__(self, config: ThrottleConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[tuple[str, Kind], TokenBucket] = {}

    def take(self, subscription_id: str, kind: Kind) -> Decision:
        key = (subscription_id.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket_config = {
                "reads": self._config.reads,
                "writes": self._config.writes,
                "lists": self._config.lists,
            }[kind]
            bucket = self._buckets[key] = TokenBucket(bucket_config, self._clock)
        return bucket.take()


def remaining_header(kind: Kind) -> str:
    return f"x-ms-ratelimit-remaining-subscription-{kind}"
