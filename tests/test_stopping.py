"""The stop: the first SIGTERM begins it once (listeners told, kopf's flag raised); a second is a
crash. Signals are delivered to the process for real, through the event loop's handlers."""

from __future__ import annotations

import asyncio
import os
import signal

from controller.stopping import Stop


async def test_the_first_sigterm_begins_the_stop_once_and_a_second_exits_at_once() -> None:
    exits: list[int] = []
    stop = Stop(exit_now=exits.append)
    heard: list[str] = []
    stop.on_begin(lambda: heard.append("runtime"))
    loop = asyncio.get_running_loop()
    stop.install(loop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.flag.wait(), timeout=5)
        assert (stop.begun, heard, exits) == (True, ["runtime"], [])

        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            if exits:
                break
            await asyncio.sleep(0.01)
        assert exits == [128 + signal.SIGTERM]
        assert heard == ["runtime"]
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def test_a_listener_that_comes_after_the_stop_began_is_told_at_once() -> None:
    stop = Stop()
    stop.begin()
    stop.begin()
    heard: list[str] = []
    stop.on_begin(lambda: heard.append("late"))
    assert heard == ["late"]
