"""Token buckets: ARM's, one per (subscription, kind), and under the `aks` profile the AKS
resource provider's own limits on top (see ProviderLimits)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .config import BucketRules, ProviderLimits, ThrottleRules

Kind = Literal["reads", "writes", "lists"]


@dataclass
class Decision:
    allowed: bool
    remaining: int
    retry_after_seconds: int


class TokenBucket:
    def __init__(self, config: BucketRules, clock: Callable[[], float]) -> None:
        self._capacity = float(config.capacity)
        self._refill = config.refill_per_second
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def refusal(self) -> Decision | None:
        """The refusal a take would get now, without taking anything."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._refill)
        self._updated = now
        if self._tokens >= 1.0:
            return None
        wait = math.ceil((1.0 - self._tokens) / self._refill)
        return Decision(False, 0, max(1, wait))

    def take(self) -> Decision:
        refused = self.refusal()
        if refused is not None:
            return refused
        self._tokens -= 1.0
        return Decision(True, int(self._tokens), 0)


class Throttle:
    def __init__(self, config: ThrottleRules, clock: Callable[[], float] = time.monotonic) -> None:
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


_PROVIDER_PATH_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourcegroups/(?P<rg>[^/]+))?"
    r"/providers/microsoft\.containerservice/managedclusters(?:/(?P<name>[^/]+)(?P<rest>/.*)?)?/?$",
    re.IGNORECASE,
)


class ProviderThrottle:
    """The AKS resource provider's buckets. Which bucket a request draws from follows the
    documented table: LIST (per subscription, and per resource group when scoped to one), GET of
    one cluster (per cluster), and "all other APIs" per subscription, which is where runCommand
    POSTs and commandResults GETs land, together."""

    def __init__(self, limits: ProviderLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}

    def take(self, method: str, path: str) -> Decision | None:
        """A refusal when any of the request's buckets is empty (then none is drawn from), else
        the grant of its last bucket; None when the request is not the provider's (it then only
        meets ARM's buckets)."""
        match = _PROVIDER_PATH_RE.match(path.rstrip("/"))
        if match is None:
            return None
        buckets = [self._bucket(key, c) for key, c in self._buckets_for(method.upper(), match)]
        for bucket in buckets:
            refused = bucket.refusal()
            if refused is not None:
                return refused
        return [bucket.take() for bucket in buckets][-1]

    def _buckets_for(
        self, method: str, match: re.Match[str]
    ) -> list[tuple[tuple[str, ...], BucketRules]]:
        sub = match.group("sub").lower()
        rg = (match.group("rg") or "").lower()
        name = match.group("name")
        limits = self._limits
        if name is None and method == "GET":
            keys: list[tuple[tuple[str, ...], BucketRules]] = [
                (("list", sub), limits.list_per_subscription)
            ]
            if rg:
                keys.append((("list", sub, rg), limits.list_per_resource_group))
            return keys
        if name is not None and match.group("rest") is None and method == "GET":
            return [(("get", sub, rg, name.lower()), limits.get_cluster)]
        return [(("other", sub), limits.other)]

    def _bucket(self, key: tuple[str, ...], config: BucketRules) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(config, self._clock)
        return bucket
