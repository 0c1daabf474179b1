"""The scheduler's races, with events instead of sleeps: supersession, forgetting, errors, locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from controller.scheduler import Job, Scheduler
from tests.helpers import settle


class Recorder:
    """The runtime's side: records what ran, can block a job until released, can raise."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.fail_once: set[str] = set()
        self.done = asyncio.Queue[tuple[str, str]]()

    async def run(self, job: Job[str]) -> None:
        self.started.set()
        await self.release.wait()
        if job.work in self.fail_once:
            self.fail_once.discard(job.work)
            raise RuntimeError(f"{job.work} broke")
        self.ran.append((job.key, job.work))
        await self.done.put((job.key, job.work))

    def on_error(self, job: Job[str], error: Exception) -> float:
        self.errors.append((job.key, str(error)))
        return 0.0


@pytest.fixture
async def setup() -> AsyncIterator[tuple[Scheduler[str], Recorder]]:
    recorder = Recorder()
    scheduler = Scheduler(recorder.run, recorder.on_error, workers=2)
    await scheduler.start()
    yield scheduler, recorder
    await scheduler.close()


async def test_a_newer_decision_supersedes_the_pending_one(
    setup: tuple[Scheduler[str], Recorder],
) -> None:
    scheduler, recorder = setup
    scheduler.schedule("a", "poll", "a", 0.0)
    scheduler.schedule("a", "plan", "a", 0.0)  # before the first timer fired
    assert await asyncio.wait_for(recorder.done.get(), 5) == ("a", "plan")
    await asyncio.sleep(0)  # give a stale job every chance to run
    assert recorder.ran == [("a", "plan")]
    assert scheduler.pending == 0


async def test_advance_only_ever_brings_a_pending_job_forward(
    setup: tuple[Scheduler[str], Recorder],
) -> None:
    scheduler, recorder = setup
    assert not scheduler.advance("none", "poll", 0.0)  # nothing pending: nothing to do
    scheduler.schedule("late", "poll", "late", 3600.0)
    scheduler.schedule("soon", "poll", "soon", 0.0)
    scheduler.schedule("ttl", "delete", "ttl", 3600.0)
    assert not scheduler.advance("soon", "poll", 3600.0)  # later than planned: left as it is
    assert not scheduler.advance("ttl", "poll", 0.0)  # another work: never brought forward
    assert scheduler.advance("late", "poll", 0.0)
    results = {await asyncio.wait_for(recorder.done.get(), 5) for _ in range(2)}
    assert results == {("late", "poll"), ("soon", "poll")}  # same work, now
    assert scheduler.pending == 1 and scheduler.is_pending("ttl")


async def test_a_job_superseded_while_queued_does_not_run(
    setup: tuple[Scheduler[str], Recorder],
) -> None:
    scheduler, recorder = setup
    recorder.release.clear()
    scheduler.schedule("busy", "plan", "busy", 0.0)
    await asyncio.wait_for(recorder.started.wait(), 5)  # a worker holds "busy"'s lock
    scheduler.schedule("busy", "poll", "busy", 0.0)
    await settle()  # the poll's timer fires: it waits in the queue for the lock
    scheduler.schedule("busy", "delete", "busy", 0.0)  # supersedes the queued poll
    recorder.release.set()
    results = [await asyncio.wait_for(recorder.done.get(), 5) for _ in range(2)]
    assert results == [("busy", "plan"), ("busy", "delete")]
    assert ("busy", "poll") not in recorder.ran


async def test_forget_while_queued_drops_the_job(setup: tuple[Scheduler[str], Recorder]) -> None:
    scheduler, recorder = setup
    recorder.release.clear()
    scheduler.schedule("other", "plan", "other", 0.0)
    await asyncio.wait_for(recorder.started.wait(), 5)
    scheduler.schedule("gone", "poll", "gone", 0.0)
    scheduler.schedule("x", "plan", "x", 0.0)
    await settle()  # both timers fire: the jobs wait in the queue
    scheduler.unschedule("gone")  # the object was deleted while its job waited
    recorder.release.set()
    seen = {await asyncio.wait_for(recorder.done.get(), 5) for _ in range(2)}
    assert seen == {("other", "plan"), ("x", "plan")}
    assert scheduler.pending == 0


async def test_an_exception_is_reported_and_the_object_planned_again(
    setup: tuple[Scheduler[str], Recorder],
) -> None:
    scheduler, recorder = setup
    recorder.fail_once.add("poll")
    scheduler.schedule("a", "poll", "a", 0.0)
    assert await asyncio.wait_for(recorder.done.get(), 5) == ("a", "plan")
    assert recorder.errors == [("a", "poll broke")]


async def test_a_lock_is_never_replaced_while_it_is_held(
    setup: tuple[Scheduler[str], Recorder],
) -> None:
    scheduler, _ = setup
    inside = asyncio.Event()
    leave = asyncio.Event()
    order: list[str] = []

    async def holder() -> None:
        async with scheduler.locked("a"):
            inside.set()
            order.append("first in")
            await leave.wait()
            order.append("first out")

    async def second() -> None:
        async with scheduler.locked("a"):
            order.append("second in")

    first_task = asyncio.create_task(holder())
    await inside.wait()
    scheduler.unschedule("a")  # forgetting the object must not hand out a fresh lock
    second_task = asyncio.create_task(second())
    await settle()  # all the second could do while the first holds the lock
    assert order == ["first in"]
    leave.set()
    await asyncio.gather(first_task, second_task)
    assert order == ["first in", "first out", "second in"]
    assert scheduler._locks == {}  # entries go with their last user


async def test_a_stopped_scheduler_drops_what_was_pending_and_schedules_nothing_more(
    setup: tuple[Scheduler[str], Recorder],
) -> None:
    scheduler, recorder = setup
    scheduler.schedule("a", "poll", "a", 0.0)  # due at once: only the stop keeps it from running
    (timer,) = [job.timer for job in scheduler._pending.values()]
    scheduler.stop()
    scheduler.schedule("b", "plan", "b", 0.0)
    assert scheduler.pending == 0
    assert timer is not None and timer.cancelled()  # a cancelled timer never fires
    await scheduler.close()  # the workers have ended: nothing can run from here on
    assert recorder.ran == []
