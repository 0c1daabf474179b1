"""A RunCommand deleted while one of its polls is at ARM: the answer comes back to an object the
runtime has forgotten, and nothing more is scheduled for it."""

from __future__ import annotations

import asyncio

import httpx

from tests.runtime.fakes import FakeKube, HeldArm, eventually, start_stack


class PollHeldArm(HeldArm):
    """HeldArm whose polls are held too, from the moment a test clears `poll_release`."""

    def __init__(self) -> None:
        super().__init__()
        self.poll_release = asyncio.Event()
        self.poll_release.set()
        self.poll_arrived = asyncio.Event()  # set at every poll's arrival; a test clears it

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.poll_arrived.set()
            await self.poll_release.wait()
        return await super()._handle(request)


async def test_a_poll_in_flight_at_deletion_schedules_nothing_more() -> None:
    arm = PollHeldArm()
    stack = await start_stack(FakeKube(), arm)
    try:
        await stack.runtime.reconcile(stack.kube.create("deleted"))
        # The first poll records Running; the next one will answer "still running" with
        # nothing to write, so no status write can find the object gone.
        await eventually(lambda: stack.kube.status("deleted").get("reason") == "Running")
        arm.poll_release.clear()
        arm.poll_arrived.clear()
        await arm.poll_arrived.wait()  # the second poll is at ARM

        ref = stack.ref("deleted")
        del stack.kube.objects["deleted"]
        stack.runtime.forget(ref.uid)  # what the watch's DELETED event does
        arm.poll_release.set()
        # The poll's job holds the object's lock until it has decided what comes next.
        async with stack.runtime._scheduler.locked(ref.uid):
            pass

        assert len(arm.polls) == 2
        assert stack.runtime.scheduled == 0, "a deleted RunCommand is still being polled"
    finally:
        arm.poll_release.set()
        await stack.close()
