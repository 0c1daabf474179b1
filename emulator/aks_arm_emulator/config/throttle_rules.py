"""The `throttle:` section: the token buckets ARM (and, under the `aks` profile, the AKS
resource provider) answers 429 by."""

from __future__ import annotations

import dataclasses

from .reader import ConfigError, Section


@dataclasses.dataclass(frozen=True)
class BucketRules:
    """One token bucket: a burst of `capacity` requests, refilled at `refill_per_second`."""

    capacity: int
    refill_per_second: float


@dataclasses.dataclass(frozen=True)
class ProviderLimits:
    """The AKS resource provider's documented limits, applied on top of ARM's under the `aks`
    profile (per region; the emulator is one region)."""

    list_per_subscription: BucketRules = BucketRules(capacity=500, refill_per_second=1.0)
    list_per_resource_group: BucketRules = BucketRules(capacity=60, refill_per_second=1.0)
    get_cluster: BucketRules = BucketRules(capacity=60, refill_per_second=1.0)
    # "All other APIs": runCommand POSTs and commandResults GETs together, per subscription.
    other: BucketRules = BucketRules(capacity=60, refill_per_second=1.0)


THROTTLE_PROFILES = ("arm", "aks")


@dataclasses.dataclass(frozen=True)
class ThrottleRules:
    """When the emulator answers 429, per subscription: ARM's buckets, and the profile."""

    # ARM's documented per-subscription limits.
    reads: BucketRules = BucketRules(capacity=250, refill_per_second=25.0)
    writes: BucketRules = BucketRules(capacity=200, refill_per_second=10.0)
    # The AKS resource provider's own limit on managedClusters LISTs: a burst of 500, then 1/s.
    lists: BucketRules = BucketRules(capacity=500, refill_per_second=1.0)
    # `arm`: ARM's buckets only. `aks`: the resource provider's limits on top.
    profile: str = "arm"
    provider: ProviderLimits = ProviderLimits()


def validate_throttle(throttle: ThrottleRules) -> None:
    for kind, bucket in (
        ("reads", throttle.reads),
        ("writes", throttle.writes),
        ("lists", throttle.lists),
    ):
        if bucket.capacity < 1 or bucket.refill_per_second <= 0:
            raise ConfigError(f"throttle.{kind} needs capacity >= 1 and refillPerSecond > 0")
    if throttle.profile not in THROTTLE_PROFILES:
        raise ConfigError(f"throttle.profile must be arm or aks, not {throttle.profile!r}")


def throttle_from_section(section: Section) -> ThrottleRules:
    """The `throttle:` section; keys not given keep ThrottleRules' defaults."""
    defaults = ThrottleRules()
    throttle = ThrottleRules(
        reads=_bucket(section.section("reads"), defaults.reads),
        writes=_bucket(section.section("writes"), defaults.writes),
        lists=_bucket(section.section("lists"), defaults.lists),
        profile=section.string("profile", defaults.profile),
    )
    section.finish()
    return throttle


def _bucket(section: Section, default: BucketRules) -> BucketRules:
    bucket = BucketRules(
        capacity=section.required_integer("capacity", default.capacity),
        refill_per_second=section.number("refillPerSecond", default.refill_per_second),
    )
    section.finish()
    return bucket
