"""Retry-After parsing and capped exponential backoff with full jitter."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from controller.arm import RetryPolicy
from controller.arm.retry import parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": " 2.5 "}, 2.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"x-ms-retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "bad", "Retry-After": "9"}, 9.0),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), now=lambda: NOW) == expected


def test_full_jitter_is_capped_exponential() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert [policy.delay(n, None, lambda: 1.0) for n in range(6)] == [1, 2, 4, 8, 10, 10]
    assert policy.delay(3, None, lambda: 0.25) == 2.0
    assert policy.delay(3, None, lambda: 0.0) == 0.0


def test_retry_after_wins_over_backoff() -> None:
    assert RetryPolicy().delay(0, 42.0, lambda: 1.0) == 42.0


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)
