"""From a RunCommand's status to what the plugin says and how it exits.

The remote command's own exit code passes through (0-255). Failures that are not the command's
own get codes of their own, 120-125, chosen below the 126-255 that shells give to commands not
found or killed by signals. A remote command that itself exits 120-125 is told apart by the
one-line reason on stderr, which only the plugin's own codes print, and by `-o json`. The
plugin's own usage errors exit 2 and a Ctrl-C 130, as shells and argparse do, with one line too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .interrupt import EXIT_INTERRUPTED

EXIT_ARM_ERROR = 120  # ARM or the operator refused or failed the run (not the command's exit)
EXIT_DEADLINE = 121  # spec.timeoutSeconds passed; the command may still run (ARM cannot cancel)
EXIT_UNKNOWN = 122  # the operator cannot know whether ARM accepted the command
EXIT_SET_FAILED = 123  # a RunCommandSet's round ended with at least one cluster not succeeded
EXIT_WAIT_TIMEOUT = 124  # the plugin's own --wait-timeout passed before the run ended
EXIT_KUBECTL = 125  # kubectl or the API server failed, or what was asked for is not there
EXIT_USAGE = 2  # the command line cannot be used as given; nothing was created
# What each of the plugin's own exit codes means: the docs' reference renders it.
EXIT_CODES = {
    EXIT_USAGE: "The command line cannot be used as given (a bad flag, file or value); nothing "
    "was created.",
    EXIT_ARM_ERROR: "ARM or the operator failed the run: an ARM error (ResourceNotFound, "
    "AuthorizationFailed, ...), ProvisioningFailed, bad inputs or spec.",
    EXIT_DEADLINE: "DeadlineExceeded: spec.timeoutSeconds passed. The command may still run "
    "(ARM has no cancel).",
    EXIT_UNKNOWN: "Unknown: the operator cannot tell whether ARM accepted the command; it was "
    "not sent again.",
    EXIT_SET_FAILED: "invoke --selector: at least one cluster of the set failed or ended Unknown.",
    EXIT_WAIT_TIMEOUT: "The plugin's own --wait-timeout passed, or --approve-each left a stage "
    "waiting; the run goes on.",
    EXIT_KUBECTL: "kubectl or the API server failed (unreachable, RBAC), or what was asked for "
    "is not there.",
    EXIT_INTERRUPTED: "Ctrl-C: the line on stderr says what was created and how to follow it.",
}
FINAL = ("Succeeded", "Failed", "Unknown")


def finished(body: dict[str, Any]) -> bool:
    """The current generation's run has ended: status describes this generation and its
    Finished condition is True for it. `kubectl wait` checks only the latter."""
    generation = body.get("metadata", {}).get("generation")
    status = body.get("status") or {}
    if status.get("observedGeneration") != generation:
        return False
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Finished":
            return bool(
                condition.get("status") == "True"
                and condition.get("observedGeneration") == generation
            )
    return status.get("state") in FINAL  # an operator from before the Finished condition


@dataclass(frozen=True)
class Outcome:
    code: int
    reason: str | None  # the one-line reason on stderr when the failure is not the command's


def outcome(status: dict[str, Any]) -> Outcome:
    state, reason = status.get("state"), status.get("reason", "")
    where = f"{reason}: {status.get('message', '')}".strip()
    if state == "Succeeded" or (state == "Failed" and reason == "CommandFailed"):
        return Outcome(int(status.get("exitCode") or 0), None)
    if state == "Unknown":
        return Outcome(EXIT_UNKNOWN, where)
    if reason == "DeadlineExceeded":
        return Outcome(EXIT_DEADLINE, where)
    return Outcome(EXIT_ARM_ERROR, where)
