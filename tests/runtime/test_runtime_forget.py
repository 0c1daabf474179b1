"""A RunCommand deleted while one of its polls is at ARM: the answer comes back to an object the
runtime has forgotten, and nothing more is scheduled for it."""

from __future__ import annotations

import asyncio

import httpx

from tests.runtime.fakes import FakeKube, HeldArm, start_stack


class PollHeldArm(HeldArm):
    """HeldArm whose polls each wait at ARM until the test lets them through, and are asked again
    at once (Retry-After: 0), so no test waits for the poll backoff."""

    def __init__(self) -> None:
        super().__init__()
        self.retry_after = "0"
        self._gate = asyncio.Event()
        self.poll_arrived = asyncio.Event()  # set at every poll's arrival; a test clears it

    def let_through(self) -> None:
        """Answer the polls waiting now; later ones wait again (set() wakes the waiters)."""
        self._gate.set()
        self._gate.clear()

    def open(self) -> None:
        self._gate.set()

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await super()._handle(request)
        self.poll_arrived.set()
        await self._gate.wait()
        answer = await super()._handle(request)
        answer.headers["Retry-After"] = "0"
        return answer


async def test_a_poll_in_flight_at_deletion_schedules_nothing_more() -> None:
    arm = PollHeldArm()
    stack = await start_stack(FakeKube(), arm)
    try:
        await stack.runtime.reconcile(stack.kube.create("deleted"))
        await arm.poll_arrived.wait()
        arm.poll_arrived.clear()
        arm.let_through()  # the first poll records Running
        # The second answers "still running" with nothing to write, so no status write can find
        # the object gone.
        await arm.poll_arrived.wait()
        assert stack.kube.status("deleted")["reason"] == "Running"

        ref = stack.ref("deleted")
        del stack.kube.objects["deleted"]
        stack.runtime.forget(ref.uid)  # what the watch's DELETED event does
        arm.open()
        # The poll's job holds the object's lock until it has decided what comes next.
        async with stack.runtime._scheduler.locked(ref.uid):
            pass

        assert len(arm.polls) == 2
        assert stack.runtime.scheduled == 0, "a deleted RunCommand is still being polled"
    finally:
        arm.open()
        await stack.close()
