"""Following what was created until it ends: a RunCommand's run, printed as its state changes,
or a RunCommandSet's progress table; then the output, and the exit code of outcome.py."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .errors import PluginError
from .fleet import SET_RESOURCE, progress_table, set_exit
from .kubectl import Kubectl
from .outcome import EXIT_WAIT_TIMEOUT, finished, outcome
from .output import output_of, run_summary, say
from .stages import ask_to_approve

POLL_SECONDS = 1.0


class WaitTimeout(PluginError):
    code = EXIT_WAIT_TIMEOUT


def follow_run(kube: Kubectl, args: argparse.Namespace, name: str, generation: int | None) -> int:
    """Print state changes until the run of `generation` (or of the generation current at each
    look) has ended; then its whole output, and exit as it did."""
    deadline = None if args.wait_timeout is None else time.monotonic() + args.wait_timeout
    last = None
    while True:
        body = kube.get(name)
        status = body.get("status") or {}
        seen = (status.get("state"), status.get("reason"), status.get("observedGeneration"))
        wanted = generation if generation is not None else int(body["metadata"]["generation"])
        current = int(status.get("observedGeneration") or 0) >= wanted
        if seen != last and status.get("state") and current:  # not the previous run's state
            last = seen
            say(f"{status.get('state')}: {status.get('reason', '')}: {status.get('message', '')}")
        at_least = generation is None or int(body["metadata"]["generation"]) >= generation
        if at_least and finished(body):
            break
        pause_until(deadline, args, f"runcommand/{name}", status)
    result = outcome(status)
    text = output_of(kube, status, status.get("logsRef"))
    if args.output == "json":
        print(json.dumps(run_summary(body, text, result.code)))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if result.reason is not None:
        print(f"kubectl-runcommand: {name}: {result.reason}", file=sys.stderr)
    return result.code


def follow_set(kube: Kubectl, args: argparse.Namespace, name: str) -> int:
    """A progress table on stderr whenever it changes, then the final table (or, -o json, the
    set's status); exit 0 when every cluster succeeded, EXIT_SET_FAILED otherwise."""
    deadline = None if args.wait_timeout is None else time.monotonic() + args.wait_timeout
    shown = None
    asked: set[str] = set()  # --approve-each: the stages asked about
    while True:
        current = kube.get(name, SET_RESOURCE)
        status = current.get("status") or {}
        table = progress_table(status)
        if table != shown and status.get("state"):
            shown = table
            say(table)
        if finished(current):
            break
        approve_each = getattr(args, "approve_each", False)  # wait and logs follow sets too
        if approve_each and (left := ask_to_approve(kube, name, current, asked=asked)):
            return left
        pause_until(deadline, args, f"runcommandset/{name}", status)
    code, summary = set_exit(status)
    if args.output == "json":
        namespace = current["metadata"]["namespace"]
        print(json.dumps({"name": name, "namespace": namespace, "status": status,
                          "pluginExitCode": code}))  # fmt: skip
    else:
        sys.stdout.write(table)
    if summary is not None:
        print(f"kubectl-runcommand: runcommandset/{name}: {summary}", file=sys.stderr)
    return code


def pause_until(
    deadline: float | None, args: argparse.Namespace, what: str, status: dict[str, Any]
) -> None:
    """Wait one poll interval, or raise WaitTimeout once --wait-timeout has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise WaitTimeout(
            f"{what} had not finished after {args.wait_timeout}s (state {status.get('state')})"
        )
    time.sleep(POLL_SECONDS)
