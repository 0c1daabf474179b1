"""Timers, a queue, a fixed pool of workers, and one lock per object.

At scale, waiting costs no task: each waiting object is one timer handle on the event loop; when
it fires, its job joins the queue and one of the workers runs it under the object's lock. At
most one job is pending per object: scheduling again supersedes the pending one.

The scheduler knows nothing of RunCommands, ARM or Kubernetes: it runs the callable the runtime
hands it, and asks the runtime's ``on_error`` what to do when that callable raises.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Payload = TypeVar("Payload")


@dataclass(eq=False)
class Job(Generic[Payload]):
    key: str
    work: str
    payload: Payload
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _Lock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders and waiters; the entry goes when the last one leaves


class Scheduler(Generic[Payload]):
    def __init__(
        self,
        run: Callable[[Job[Payload]], Awaitable[None]],
        on_error: Callable[[Job[Payload], Exception], float],
        *,
        workers: int = 16,
    ) -> None:
        """`run` performs a job under its object's lock; when it raises, `on_error` logs what
        happened and says in how many seconds to run the job again."""
        self._run, self._on_error, self._worker_count = run, on_error, workers
        self._pending: dict[str, Job[Payload]] = {}
        self._locks: dict[str, _Lock] = {}
        self._queue: asyncio.Queue[Job[Payload]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._stopped = False

    async def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"scheduler-worker-{i}")
            for i in range(self._worker_count)
        ]

    def stop(self) -> None:
        """Run nothing more: pending jobs are dropped, running ones cancelled, and scheduling
        is a no-op from now on. What the caller must finish it keeps out of the workers."""
        self._stopped = True
        for job in self._pending.values():
            if job.timer:
                job.timer.cancel()
        self._pending.clear()
        for worker in self._workers:
            worker.cancel()

    async def close(self) -> None:
        self.stop()
        await asyncio.gather(*self._workers, return_exceptions=True)

    @property
    def pending(self) -> int:
        """Objects waiting for a timer or a worker."""
        return len(self._pending)

    def is_pending(self, key: str) -> bool:
        return key in self._pending

    @contextlib.asynccontextmanager
    async def locked(self, key: str) -> AsyncIterator[None]:
        """Hold the object's lock. Entries exist only while someone holds or waits for them, so
        forgetting an object can never hand a second caller a fresh lock beside a held one."""
        entry = self._locks.setdefault(key, _Lock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]

    def schedule(self, key: str, work: str, payload: Payload, delay: float) -> None:
        """Run `work` for `key` in `delay` seconds, superseding whatever was pending for it.
        Once stopped, nothing: the object is looked at again after a restart."""
        self.unschedule(key)
        if self._stopped:
            return
        job = Job(key, work, payload)
        job.timer = asyncio.get_running_loop().call_later(
            max(0.0, delay), self._queue.put_nowait, job
        )
        self._pending[key] = job

    def advance(self, key: str, work: str, delay: float) -> bool:
        """Run the `work` job pending for `key` in `delay` seconds if that is sooner than
        planned. False when no such job is pending (another work is left alone) or it is due
        sooner anyway."""
        job = self._pending.get(key)
        loop = asyncio.get_running_loop()
        if job is None or job.work != work or job.timer is None:
            return False
        if job.timer.when() <= loop.time() + delay:
            return False
        self.schedule(key, job.work, job.payload, delay)
        return True

    def unschedule(self, key: str) -> None:
        job = self._pending.pop(key, None)
        if job and job.timer:
            job.timer.cancel()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                async with self.locked(job.key):
                    if self._pending.get(job.key) is not job:
                        continue  # superseded by a newer decision, or forgotten, while queued
                    del self._pending[job.key]
                    await self._run(job)
            except Exception as error:
                delay = self._on_error(job, error)
                if job.key not in self._pending:  # the job may have scheduled its successor
                    self.schedule(job.key, "plan", job.payload, delay)
