"""Ctrl-C: never lost, and never half-way through a creation.

CPython drops a KeyboardInterrupt raised while a finaliser or a weakref callback runs (it prints
"Exception ignored" and goes on); importlib runs such callbacks on every import. So from start-up
on every SIGINT is latched as well as raised (latch_interrupts), and the plugin looks at the latch
before each kubectl call and each creation (raise_if_interrupted).

While the plugin creates objects, the creation finishes first, so the plugin can say what
exists; Ctrl-C twice stops at once.

A terminal's Ctrl-C goes to the whole foreground process group. The kubectl processes that
create objects run in a process group of their own (Kubectl.run, `shielded`), so a Ctrl-C does
not kill one half-way, when nobody could tell whether the object exists."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130  # Ctrl-C; the line on stderr says what was created and how to follow it

_latched: list[int] = []  # the SIGINTs received since latch_interrupts()


def _latch_then_raise(signum: int, frame: FrameType | None) -> None:
    _latched.append(signum)
    raise KeyboardInterrupt


def latch_interrupts() -> None:
    """From now on a SIGINT is remembered as well as raised; what was latched before is
    forgotten (main() calls this once per command line)."""
    _latched.clear()
    signal.signal(signal.SIGINT, _latch_then_raise)


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt of a SIGINT that was latched, in case CPython dropped it."""
    if _latched:
        raise KeyboardInterrupt


@contextmanager
def deferred_interrupt(doing: str) -> Iterator[None]:
    """Inside: a first SIGINT is held until the block ends, then raised as KeyboardInterrupt;
    a second one raises at once (`doing` names the work in the line the first one prints).
    A SIGINT latched before it starts stops it before the block runs."""
    raise_if_interrupted()
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
