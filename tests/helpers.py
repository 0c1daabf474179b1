"""Helpers every tier shares, one of each: the test IDs, the API server's JSON merge patch, a
fake clock (an event loop whose clock skips, and a settle that turns the loop without time),
the property tests' example counts, and a poll-until that says what it waited for when it gives
up."""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# --- one set of IDs -----------------------------------------------------------------------------
# The subscription the examples and the README name, another one for "not this subscription",
# the operator's tenant and client at the emulator's sign-in (which accepts any client).
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
OTHER_SUBSCRIPTION = "99999999-2222-3333-4444-555555555555"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "4f1c0d5e-5b7a-4a55-9a43-0c6a3a9d1e01"
# The AKS AAD server application: the audience of clusterToken in every cloud.
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"


# --- the API server's JSON merge patch ----------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies `--type=merge` and status merge patches: a null
    deletes, an object merges into an object (into an empty one when the target holds
    anything else, so a null inside a new object is dropped too), everything else replaces.
    tests/test_helpers.py checks it against a real API server."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- a fake clock -------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock (call it for the time) that moves only when the code under test sleeps
    on it (``await clock.sleep(s)``, which records ``s``) or a test moves it (``advance``)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class SkippingLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock a test moves forward (``skipped += s``): sockets do not notice,
    timers do, so "45 s" of a server's hold pass at once while every timeout armed on the loop
    sees them pass."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def time(self) -> float:
        return super().time() + self.skipped


async def settle(turns: int = 100) -> None:
    """Let the event loop turn `turns` times, taking no time: what the code under test would
    do next on in-memory fakes (nothing waits on a socket) is done by then, unless it waits on
    a timer still to fire or on an event the test holds. What a negative check waits for."""
    for _ in range(turns):
        await asyncio.sleep(0)


# --- how many examples a property test draws ----------------------------------------------------
# The fast tier (`pytest -m "not e2e"`) loads the "fast" hypothesis profile (tests/conftest.py);
# a full run (`make test`, `pytest tests`) the thorough one. HYPOTHESIS_PROFILE chooses either.
FAST_EXAMPLES = 20


def examples(thorough: int) -> int:
    """A property's example count: ``thorough`` in a full run, at most FAST_EXAMPLES in the fast
    tier (read when the test is decorated, after conftest chose the profile)."""
    if os.environ.get("HYPOTHESIS_PROFILE") == "fast":
        return min(thorough, FAST_EXAMPLES)
    return thorough


# --- poll until ---------------------------------------------------------------------------------


def poll_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float,
    interval: float = 0.25,
    describe: Callable[[T], str] = repr,
) -> T:
    """Call ``probe`` every ``interval`` seconds until ``done`` holds for its answer, and return
    that answer; after ``timeout`` seconds, fail naming ``what`` was awaited and the last answer
    (through ``describe``)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if done(seen):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not so after {timeout:g}s; last seen {describe(seen)}")
        time.sleep(interval)
