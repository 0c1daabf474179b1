"""The operator's stop, as Kubernetes asks for it: SIGTERM, then SIGKILL after the pod's grace.

The first SIGTERM (or SIGINT) begins the stop, once: the listeners hear of it at once (the
runtime stops claiming runs), and kopf's stop flag is raised, so kopf stops watching and runs
its cleanup handler, which waits for what the listeners must finish (the submissions in flight).
These handlers replace kopf's own, which only raise its flag: kopf would begin its stop without
telling anyone, and a second signal would do nothing.

A second signal while stopping is a crash: the process exits at once, as if SIGKILLed. So is
the grace running out (Kubernetes' SIGKILL). Either leaves claims without an answer, which is
what the claim protocol is for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

logger = logging.getLogger("controller.stopping")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop:
    def __init__(self, exit_now: Callable[[int], None] = os._exit) -> None:
        """`exit_now(code)`: how a second signal ends the process (a test seam)."""
        self.flag = asyncio.Event()  # kopf's stop_flag
        self._listeners: list[Callable[[], None]] = []
        self._exit_now = exit_now

    @property
    def begun(self) -> bool:
        return self.flag.is_set()

    def on_begin(self, listener: Callable[[], None]) -> None:
        """Call `listener` when the stop begins (at once if it has)."""
        self._listeners.append(listener)
        if self.begun:
            listener()

    def begin(self) -> None:
        if self.begun:
            return
        self.flag.set()
        for listener in self._listeners:
            listener()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle SIGTERM and SIGINT on `loop` (in place of kopf's handlers: call this after
        kopf.spawn_tasks has installed them)."""
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self.signalled, signum)

    def signalled(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self.begun:
            logger.info("%s received: the operator is stopping", name)
            self.begin()
            return
        logger.warning("%s received again while stopping: exiting now, as a crash", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit_now(128 + signum)
