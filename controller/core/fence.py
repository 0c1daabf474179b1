"""The fence of ``submitPolicy: ExactlyOnce``: what the operator ships, and what its answers mean.

ARM has no idempotency key, so a run whose submission is in doubt can only be submitted again
if the second submission can find the first. It does so inside the target cluster: the command
sent to ARM is a small wrapper (``fence.sh``, next to this module) that first creates the run's
fence, an object in namespace ``aks-command`` whose name every submission of the run shares.
``kubectl create`` is an atomic test-and-set: the submission that creates it runs the user's
command and records the exit code and output there; a later one finds it and replays them.

The fence is named once, at the run's first attempt, from the RunCommand's uid, the run hash
and that attempt's correlation id (status.fence keeps it), so every resubmission of the run
finds the same fence, and a later run of the same spec (A, then B, then A again) does not.

Deadlines are absolute Unix times, computed here from the run's first submission and its
timeout, so every submission of the run agrees on them: the command is stopped a margin before
the run's deadline and a waiting submission gives up a little later, both before the operator
stops polling, so the operator always reads the wrapper's own answer. A submission that reaches
the cluster after the run's deadline claims nothing. Fences expire a day after their run's
deadline (a label the wrapper reads when it cleans up); by then no submission of that run can
claim anything, so a fence cleaned away can never let a command run twice.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from controller.arm.models import CommandResult
from controller.vocabulary import Reason

NAMESPACE = "aks-command"
WRAPPER_DIR = ".aks-runcommand"
WRAPPER_COMMAND = f"bash {WRAPPER_DIR}/fence.sh"
KEPT_AFTER_DEADLINE = timedelta(days=1)
# The wrapper's exit codes when the user's command did not run in this submission; its last
# line then starts with the marker and the word for why (fence.sh's header). Two words are the
# reasons they become; DeadlinePassed is the wrapper's own (the run records DeadlineExceeded).
MARKER = "aks-runcommand-fence:"
DEADLINE_PASSED = "DeadlinePassed"
EXIT_CODES = {
    211: str(Reason.FENCE_UNAVAILABLE),
    212: str(Reason.FENCE_RESULT_MISSING),
    213: DEADLINE_PASSED,
}

FenceKind = Literal["ConfigMap", "Secret"]


def wrapper_script() -> bytes:
    return _wrapper()


@functools.cache
def _wrapper() -> bytes:
    return importlib.resources.files(__package__).joinpath("fence.sh").read_bytes()


def fence_name(uid: str, run_hash: str, correlation_id: str) -> str:
    """`rc-<uid>-<run hash>-<8 hex of the first attempt's correlation id>`: a DNS subdomain."""
    nonce = correlation_id.replace("-", "")[:8]
    return f"rc-{uid}-{run_hash}-{nonce}".lower()


def margin_seconds(timeout_seconds: int) -> int:
    """How long before the run's deadline the wrapper stops the command: a tenth of the
    timeout, between 5 s and 60 s (the time to record the result and for the operator to poll
    it)."""
    return int(min(60, max(5, timeout_seconds // 10)))


@dataclass(frozen=True)
class Fence:
    """One run's fence, as one submission ships it."""

    name: str
    kind: FenceKind
    run_until: datetime  # the command is stopped here (exit 124)
    wait_until: datetime  # a submission that found the fence waits for its result until here
    expires: datetime  # the wrapper deletes the fence after this

    @classmethod
    def for_run(cls, name: str, kind: FenceKind, deadline: datetime, timeout_seconds: int) -> Fence:
        margin = margin_seconds(timeout_seconds)
        return cls(
            name=name,
            kind=kind,
            run_until=deadline - timedelta(seconds=margin),
            wait_until=deadline - timedelta(seconds=margin / 2),
            expires=deadline + KEPT_AFTER_DEADLINE,
        )

    def files(self, command: str) -> tuple[tuple[str, bytes], ...]:
        """The wrapper's files, to add to the run's context: the command becomes command.sh."""
        config = "".join(
            f"{key}={value}\n"
            for key, value in (
                ("kind", self.kind),
                ("name", self.name),
                ("runUntil", _epoch(self.run_until)),
                ("waitUntil", _epoch(self.wait_until)),
                ("expires", _epoch(self.expires)),
            )
        )
        text = command if command.endswith("\n") else f"{command}\n"
        return (
            (f"{WRAPPER_DIR}/fence.sh", wrapper_script()),
            (f"{WRAPPER_DIR}/fence.conf", config.encode()),
            (f"{WRAPPER_DIR}/command.sh", text.encode()),
        )


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True)
class FenceVerdict:
    """The wrapper said the user's command did not run in this submission, and why."""

    reason: str  # a Reason
    detail: str  # what the wrapper said after the reason


_REASONS: dict[str, Reason] = {
    Reason.FENCE_UNAVAILABLE: Reason.FENCE_UNAVAILABLE,
    Reason.FENCE_RESULT_MISSING: Reason.FENCE_RESULT_MISSING,
    DEADLINE_PASSED: Reason.DEADLINE_EXCEEDED,
}


def verdict(result: CommandResult) -> FenceVerdict | None:
    """The wrapper's own answer, when this result is one: its exit code and its last line
    agree. Anything else is the user's command's result (run here or replayed)."""
    said = EXIT_CODES.get(result.exit_code) if result.exit_code is not None else None
    if said is None or result.platform_failed:
        return None
    lines = result.logs.rstrip("\n").rsplit("\n", 1)
    last = lines[-1]
    prefix = f"{MARKER} {said}:"
    if not last.startswith(prefix):
        return None
    return FenceVerdict(_REASONS[said], last[len(prefix) :].strip())


def unavailable_message(where: str, fence: str, kind: FenceKind, detail: str) -> str:
    resource = "configmaps" if kind == "ConfigMap" else "secrets"
    return (
        f"{where}: submitPolicy ExactlyOnce could not claim its fence ({kind} {NAMESPACE}/"
        f"{fence}), so the command did not run: {detail}. Grant the identity the command runs "
        f"as (on Entra ID clusters, the one whose clusterToken is sent) create, get and update "
        f"on {resource} in namespace {NAMESPACE} (and list and delete, so that expired fences "
        "are cleaned), or use another submitPolicy"
    )


def missing_message(where: str, detail: str) -> str:
    """`detail` (the wrapper's) names the fence."""
    return (
        f"{where}: {detail}. Check the cluster, then change spec.runToken to run the command "
        "again; the fence stays until a day after the run's deadline"
    )
