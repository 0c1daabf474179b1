"""Client-side token buckets mirroring ARM's throttling, so the operator slows itself down
before ARM answers 429.

ARM keeps a bucket per region, subscription and principal: reads 250 tokens refilled at 25/s,
writes 200 at 10/s. One :class:`ArmThrottle` belongs to one principal (one credential); it keeps
one bucket per (subscription, kind). On top, the AKS resource provider documents "all other
APIs" at 60 requests then 1/s per subscription, which runCommand POSTs and commandResults GETs
share: one more bucket per subscription, where submissions come before polls. Sovereign clouds
with hourly limits can pass their own :class:`BucketConfig`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from .models import BudgetRoom
from .observe import NO_OBSERVER, ArmObserver, BucketName

__all__ = ["ArmThrottle", "BucketConfig", "RequestKind", "ThrottleConfig", "TokenBucket"]

RequestKind = Literal["read", "write"]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class BucketConfig:
    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")


@dataclass(frozen=True)
class ThrottleConfig:
    reads: BucketConfig = field(default_factory=lambda: BucketConfig(250, 25))
    writes: BucketConfig = field(default_factory=lambda: BucketConfig(200, 10))
    # The AKS resource provider's "all other APIs" limit (60, then 1/s per subscription), on
    # top of ARM's: runCommand POSTs and commandResults GETs draw from it together. Two tokens
    # are kept back because the provider counts a request when it arrives, a moment after we
    # took its token (after a claim write, for a POST). None: ARM's buckets only.
    provider: BucketConfig | None = field(default_factory=lambda: BucketConfig(58, 1))


class TokenBucket:
    """A token bucket where waiters reserve their token up front.

    Reserving (letting the balance go negative) serves waiters in arrival order and wakes each
    exactly when its token has refilled, instead of all waiters polling for the next token.
    """

    def __init__(self, config: BucketConfig, clock: Clock, sleep: Sleep) -> None:
        self._capacity = config.capacity
        self._rate = config.refill_per_second
        self._clock = clock
        self._sleep = sleep
        self._tokens = config.capacity
        self._updated = clock()
        self._blocked_until = float("-inf")
        self._spare_lock = asyncio.Lock()

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while waiters hold reservations)."""
        self._refill()
        return self._tokens

    def room(self) -> BudgetRoom:
        """What the bucket says now, for whoever paces its callers (read-only)."""
        self._refill()
        blocked = max(0.0, self._blocked_until - self._clock())
        return BudgetRoom(self._tokens, self._rate, blocked)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = now

    async def acquire(self) -> None:
        """Wait until a token is available (and no Retry-After block is active), then take it."""
        self._refill()
        self._tokens -= 1.0
        ready_at = self._updated + max(0.0, -self._tokens) / self._rate
        # Loop because a 429 may extend the block while this waiter sleeps.
        while (wait := max(ready_at, self._blocked_until) - self._clock()) > 0:
            await self._sleep(wait)

    async def acquire_spare(self) -> None:
        """Take a token only when no reservation is waiting: a low-priority caller (a poll)
        yields to every :meth:`acquire` (a submission), before and while it waits. Spare
        takers queue behind one another, so only one of them watches the bucket."""
        async with self._spare_lock:
            while True:
                self._refill()
                wait = max((1.0 - self._tokens) / self._rate, self._blocked_until - self._clock())
                if wait <= 0:
                    self._tokens -= 1.0
                    return
                await self._sleep(wait)

    def observe(self, remaining: int) -> None:
        """Adopt ARM's count of remaining requests when it is lower than ours."""
        self._refill()
        self._tokens = min(self._tokens, float(remaining))

    def block_for(self, seconds: float) -> None:
        """Hold every acquire for ``seconds`` (a 429's Retry-After)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class ArmThrottle:
    """The buckets of one principal, keyed by (subscription, read|write)."""

    def __init__(
        self,
        config: ThrottleConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        observer: ArmObserver = NO_OBSERVER,
    ) -> None:
        self._config = config or ThrottleConfig()
        self.observer = observer
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, RequestKind], TokenBucket] = {}
        self._provider: dict[str, TokenBucket] = {}

    def bucket(self, subscription_id: str, kind: RequestKind) -> TokenBucket:
        key = (subscription_id.casefold(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            config = self._config.reads if kind == "read" else self._config.writes
            bucket = self._buckets[key] = TokenBucket(config, self._clock, self._sleep)
        return bucket

    async def acquire(self, subscription_id: str, kind: RequestKind) -> None:
        started = self._clock()
        await self.bucket(subscription_id, kind).acquire()
        self.observer.budget_wait(subscription_id, kind, self._clock() - started)

    def provider_bucket(self, subscription_id: str) -> TokenBucket | None:
        """The subscription's share of the resource provider's "all other APIs" budget."""
        config = self._config.provider
        if config is None:
            return None
        key = subscription_id.casefold()
        bucket = self._provider.get(key)
        if bucket is None:
            bucket = self._provider[key] = TokenBucket(config, self._clock, self._sleep)
        return bucket

    async def acquire_provider(self, subscription_id: str, *, submit: bool) -> None:
        """A token of the provider budget: submissions queue in order, polls take spare tokens
        only, so a poll never delays a submission."""
        bucket = self.provider_bucket(subscription_id)
        if bucket is None:
            return
        started = self._clock()
        await (bucket.acquire() if submit else bucket.acquire_spare())
        self.observer.budget_wait(subscription_id, "provider", self._clock() - started)

    def block_provider(self, subscription_id: str, seconds: float) -> None:
        """The provider answered 429 Throttled: hold its budget for Retry-After."""
        bucket = self.provider_bucket(subscription_id)
        if bucket is not None:
            bucket.block_for(seconds)

    def poll_room(self, subscription_id: str) -> tuple[BudgetRoom, ...]:
        """What the buckets a poll draws from say now: ARM's reads, and the provider's budget
        when kept. Read-only: a bucket not used yet is reported full, and is not created."""
        key = subscription_id.casefold()
        rooms = []
        buckets = ((self._buckets.get((key, "read")), self._config.reads),
                   (self._provider.get(key), self._config.provider))  # fmt: skip
        for bucket, config in buckets:
            if bucket is not None:
                rooms.append(bucket.room())
            elif config is not None:
                rooms.append(BudgetRoom(config.capacity, config.refill_per_second))
        return tuple(rooms)

    def observe(self, subscription_id: str, kind: RequestKind, remaining: int) -> None:
        self.bucket(subscription_id, kind).observe(remaining)

    def block_for(self, subscription_id: str, kind: RequestKind, seconds: float) -> None:
        self.bucket(subscription_id, kind).block_for(seconds)

    def levels(self) -> list[tuple[str, BucketName, float]]:
        """(subscription, bucket, tokens left now) of every bucket in use, for the metrics:
        negative while requests wait for their reserved token."""
        levels: list[tuple[str, BucketName, float]] = [
            (sub, kind, bucket.tokens) for (sub, kind), bucket in self._buckets.items()
        ]
        levels.extend((sub, "provider", bucket.tokens) for sub, bucket in self._provider.items())
        return levels
