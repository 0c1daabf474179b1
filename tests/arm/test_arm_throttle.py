"""Client-side token buckets, driven by a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio

import pytest
from arm_doubles import FakeClock

from controller.arm import ArmThrottle, BucketConfig, BudgetRoom, ThrottleConfig
from tests.helpers import SUBSCRIPTION as SUB


async def test_250_reads_pass_at_once_and_the_251st_waits_one_refill() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)

    for _ in range(250):
        await throttle.acquire(SUB, "read")
    assert clock.sleeps == []

    await throttle.acquire(SUB, "read")
    assert clock.sleeps == [pytest.approx(1 / 25)]


async def test_writes_have_their_own_smaller_bucket() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(200):
        await throttle.acquire(SUB, "write")
    await throttle.acquire(SUB, "read")  # reads are unaffected
    assert clock.sleeps == []

    await throttle.acquire(SUB, "write")
    assert clock.sleeps == [pytest.approx(1 / 10)]


async def test_buckets_are_per_subscription_case_insensitive() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(ThrottleConfig(reads=BucketConfig(1, 1)), clock=clock, sleep=clock.sleep)
    await throttle.acquire("AAAAAAAA-1111-2222-3333-444444444444", "read")
    await throttle.acquire("bbbbbbbb-1111-2222-3333-444444444444", "read")
    assert clock.sleeps == []
    await throttle.acquire("aaaaaaaa-1111-2222-3333-444444444444", "read")
    assert clock.sleeps == [pytest.approx(1.0)]


async def test_refill_is_capped_at_capacity() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(ThrottleConfig(reads=BucketConfig(2, 1)), clock=clock, sleep=clock.sleep)
    bucket = throttle.bucket(SUB, "read")
    await bucket.acquire()
    clock.now += 100
    assert bucket.tokens == 2


async def test_observe_lowers_the_bucket_to_the_server_count_but_never_raises_it() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    throttle.observe(SUB, "read", 2)
    assert throttle.bucket(SUB, "read").tokens == 2
    throttle.observe(SUB, "read", 200)
    assert throttle.bucket(SUB, "read").tokens == 2

    await throttle.acquire(SUB, "read")
    await throttle.acquire(SUB, "read")
    assert clock.sleeps == []
    await throttle.acquire(SUB, "read")
    assert clock.sleeps == [pytest.approx(1 / 25)]


async def test_block_for_holds_acquires_until_retry_after_passes() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    throttle.block_for(SUB, "write", 30)
    await throttle.acquire(SUB, "write")
    assert clock.sleeps == [pytest.approx(30)]
    await throttle.acquire(SUB, "write")  # block over, tokens left
    assert len(clock.sleeps) == 1


async def test_concurrent_waiters_are_served_in_order_one_refill_apart() -> None:
    clock = FakeClock()
    woke_at: list[tuple[int, float]] = []

    async def sleep(seconds: float) -> None:
        # Virtual time: yield so the waiters interleave, then wake at the requested instant.
        wake_at = clock.now + seconds
        await asyncio.sleep(0)
        clock.now = max(clock.now, wake_at)

    throttle = ArmThrottle(ThrottleConfig(reads=BucketConfig(1, 10)), clock=clock, sleep=sleep)
    await throttle.acquire(SUB, "read")

    async def waiter(number: int) -> None:
        await throttle.acquire(SUB, "read")
        woke_at.append((number, clock.now))

    await asyncio.gather(*(waiter(n) for n in range(3)))
    assert [number for number, _ in woke_at] == [0, 1, 2]
    # Three reservations on an empty bucket refilling 10/s: ready at 0.1, 0.2, 0.3 s.
    assert woke_at[-1][1] == pytest.approx(0.3)


def test_bucket_config_is_validated() -> None:
    with pytest.raises(ValueError, match="capacity"):
        BucketConfig(0, 1)
    with pytest.raises(ValueError, match="refill"):
        BucketConfig(10, 0)


# The AKS resource provider's "all other APIs" budget ------------------------------------------


async def test_submits_and_polls_share_58_then_one_per_second() -> None:
    """The documented 60, less two tokens of headroom for requests still on their way."""
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(29):
        await throttle.acquire_provider(SUB, submit=True)
        await throttle.acquire_provider(SUB, submit=False)
    assert clock.sleeps == []
    await throttle.acquire_provider(SUB.upper(), submit=False)
    assert clock.sleeps == [pytest.approx(1.0)]
    # ARM's own buckets are separate.
    await throttle.acquire(SUB, "write")
    assert len(clock.sleeps) == 1


async def test_a_waiting_poll_lets_every_submission_go_first() -> None:
    clock = FakeClock()

    async def sleep(seconds: float) -> None:  # wakes only when the test moves the clock
        wake_at = clock.now + seconds
        while clock.now < wake_at:  # noqa: ASYNC110 - virtual time, moved by the test
            await asyncio.sleep(0)

    throttle = ArmThrottle(ThrottleConfig(provider=BucketConfig(1, 1)), clock=clock, sleep=sleep)
    await throttle.acquire_provider(SUB, submit=True)  # the bucket is now empty
    order: list[tuple[str, float]] = []

    async def take(name: str, submit: bool) -> None:
        await throttle.acquire_provider(SUB, submit=submit)
        order.append((name, clock.now))

    tasks = [asyncio.create_task(take("poll", False))]
    await asyncio.sleep(0)  # the poll waits first
    clock.now = 0.5
    tasks += [asyncio.create_task(take(f"submit-{n}", True)) for n in (1, 2)]
    while not all(task.done() for task in tasks):
        await asyncio.sleep(0)
        clock.now += 0.25
    assert [name for name, _ in order] == ["submit-1", "submit-2", "poll"]
    assert order[-1][1] == pytest.approx(3.0)


async def test_block_provider_holds_polls_and_submits_but_not_arm_reads() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(clock=clock, sleep=clock.sleep)
    throttle.block_provider(SUB, 5)
    await throttle.acquire(SUB, "read")
    assert clock.sleeps == []
    await throttle.acquire_provider(SUB, submit=False)
    await throttle.acquire_provider(SUB, submit=True)
    assert clock.now == pytest.approx(5.0)


async def test_no_provider_budget_when_configured_off() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(ThrottleConfig(provider=None), clock=clock, sleep=clock.sleep)
    for _ in range(500):
        await throttle.acquire_provider(SUB, submit=False)
    throttle.block_provider(SUB, 5)
    await throttle.acquire_provider(SUB, submit=True)
    assert clock.sleeps == [] and throttle.provider_bucket(SUB) is None


async def test_poll_room_reports_what_the_buckets_polls_draw_from_say_and_changes_nothing() -> None:
    clock, parked = FakeClock(), asyncio.Event()

    async def park(_seconds: float) -> None:  # a waiter stays waiting until the test ends
        await parked.wait()

    throttle = ArmThrottle(clock=clock, sleep=park)
    # Nothing used yet: both buckets are full.
    assert throttle.poll_room(SUB) == (BudgetRoom(250, 25), BudgetRoom(58, 1))
    assert throttle.poll_room(SUB) == (BudgetRoom(250, 25), BudgetRoom(58, 1))
    for _ in range(58):
        await throttle.acquire_provider(SUB, submit=True)
    waiting = asyncio.create_task(throttle.acquire_provider(SUB, submit=True))
    await asyncio.sleep(0)  # a submission holds a reservation: polls see it as a debt
    reads, provider = throttle.poll_room(SUB.upper())
    assert reads == BudgetRoom(250, 25)
    assert provider == BudgetRoom(pytest.approx(-1.0), 1)
    clock.now += 2.0
    throttle.block_provider(SUB, 7.0)
    assert throttle.poll_room(SUB)[1] == BudgetRoom(pytest.approx(1.0), 1, pytest.approx(7.0))
    waiting.cancel()


async def test_poll_room_without_the_provider_budget_is_arm_reads_only() -> None:
    clock = FakeClock()
    throttle = ArmThrottle(ThrottleConfig(provider=None), clock=clock, sleep=clock.sleep)
    await throttle.acquire(SUB, "read")
    assert throttle.poll_room(SUB) == (BudgetRoom(249, 25),)
