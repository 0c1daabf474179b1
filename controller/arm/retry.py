"""Capped exponential backoff with full jitter, and Retry-After parsing.

Only reads are retried with this policy. The runCommand POST is not idempotent; the client
resends it only when ARM certainly did not accept it (see ``client.py``).
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    ``max_attempts`` counts every try of a read, the first included. ``submit_max_attempts``
    bounds resends of a POST that ARM certainly refused (429, connection never established).
    A Retry-After longer than ``max_retry_after`` is not slept through inside the client: the
    error is raised with ``retry_after`` set so the caller can reschedule instead of blocking.
    """

    max_attempts: int = 5
    submit_max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.submit_max_attempts < 1:
            raise ValueError("attempt counts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def delay(
        self,
        retry_number: int,
        retry_after: float | None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry).

        The server's Retry-After wins when present; otherwise full jitter:
        uniform(0, min(max_delay, base_delay * 2**retry_number)).
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_delay, self.base_delay * math.pow(2, retry_number))
        return rand() * ceiling


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``x-ms-retry-after-ms`` or ``Retry-After``.

    Retry-After may be delta-seconds or an HTTP date; garbage is ignored (None), past dates
    give 0. Header lookup is case-insensitive when ``headers`` is an ``httpx.Headers``.
    """
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value is not None:
            try:
                milliseconds = float(value)
            except ValueError:
                continue
            if math.isfinite(milliseconds):
                return max(0.0, milliseconds / 1000.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT anyway
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now())
