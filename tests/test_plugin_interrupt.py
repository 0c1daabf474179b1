"""A Ctrl-C that CPython drops: a KeyboardInterrupt raised while a finaliser or a weakref callback
runs (an import's module lock, for one) is printed as "Exception ignored" and lost. The plugin
latches every SIGINT, so it still stops before it creates anything and says so.

Each case runs in a Python of its own: the signal handlers are the process's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# A SIGINT handled while __del__ runs, as the lost one in CI was handled inside importlib's
# `_get_module_lock.<locals>.cb`.
DROPPED = textwrap.dedent(
    """
    import os, signal

    class Dropped:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
    """
)


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": ""}  # no kubectl: whatever reaches it fails loudly
    return subprocess.run(
        [sys.executable, "-c", DROPPED + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_dropped_ctrl_c_at_start_up_creates_nothing_and_exits_130() -> None:
    done = run_python(
        """
        import sys
        from kubectl_runcommand import __main__ as plugin, interrupt

        def latch_then_drop() -> None:
            interrupt.latch_interrupts()
            Dropped()  # collected at once: the SIGINT is handled inside __del__ and dropped

        plugin.latch_interrupts = latch_then_drop
        sys.exit(plugin.main(["invoke", "--cluster", "s/rg/aks", "--", "true"]))
        """
    )
    assert "Exception ignored" in done.stderr, done.stderr  # CPython did drop it
    said = [line for line in done.stderr.splitlines() if line.startswith("kubectl-runcommand")]
    assert (done.returncode, said) == (130, ["kubectl-runcommand: interrupted"]), done.stderr
    assert "kubectl is not on PATH" not in done.stderr  # kubectl was never reached


def test_a_dropped_ctrl_c_stops_the_next_kubectl_call_and_any_creation() -> None:
    done = run_python(
        """
        from kubectl_runcommand.interrupt import deferred_interrupt, latch_interrupts
        from kubectl_runcommand.kubectl import Kubectl

        latch_interrupts()
        Dropped()
        try:
            Kubectl().run("get", "runcommands")
        except KeyboardInterrupt:
            print("kubectl call stopped")
        try:
            with deferred_interrupt("creating runcommand/x"):
                print("created")
        except KeyboardInterrupt:
            print("creation stopped")
        latch_interrupts()  # a new start forgets it
        with deferred_interrupt("creating runcommand/y"):
            print("created y")
        """
    )
    assert "Exception ignored" in done.stderr, done.stderr
    assert done.stdout.splitlines() == ["kubectl call stopped", "creation stopped", "created y"], (
        done.stderr
    )
