"""Ctrl-C while the plugin creates objects: the creation finishes first, so the plugin can say
what exists; Ctrl-C twice stops at once.

A terminal's Ctrl-C goes to the whole foreground process group. The kubectl processes that
create objects run in a process group of their own (Kubectl.run, `shielded`), so a Ctrl-C does
not kill one half-way, when nobody could tell whether the object exists."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def deferred_interrupt(doing: str) -> Iterator[None]:
    """Inside: a first SIGINT is held until the block ends, then raised as KeyboardInterrupt;
    a second one raises at once (`doing` names the work in the line the first one prints)."""
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:
            raise KeyboardInterrupt
        held.append(signum)
        print(
            f"kubectl-runcommand: interrupted: finishing {doing} first (Ctrl-C again to stop now)",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
