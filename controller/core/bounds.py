"""Rollout bounds (maxConcurrency, maxFailures): a number, or a percentage of the targets."""

from __future__ import annotations

import math
import re

_BOUND = re.compile(r"^(\d+)(%?)$")


def check_bound(value: object, where: str) -> None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return
    if isinstance(value, str) and _BOUND.match(value):
        return
    raise ValueError(f"{where} must be a number or a percentage like '25%', not {value!r}")


def resolve_bound(value: int | str | None, total: int, *, at_least_one: bool) -> int | None:
    """A number as is; a percentage of `total`, rounded down (at least 1 when `at_least_one`,
    so a percentage of concurrency never stalls a rollout); None for no bound."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    match = _BOUND.match(value)
    assert match is not None  # checked by SetSpec.parse
    number = int(match.group(1))
    if not match.group(2):
        return number
    resolved = math.floor(total * number / 100)
    return max(1, resolved) if at_least_one else resolved
