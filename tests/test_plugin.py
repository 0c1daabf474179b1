"""The plugin's pure parts: when a run counts as finished, and how the plugin exits."""

from __future__ import annotations

from typing import Any

import pytest

from controller.plugin.outcome import (
    EXIT_ARM_ERROR,
    EXIT_DEADLINE,
    EXIT_UNKNOWN,
    finished,
    outcome,
)


def body(generation: int, observed: int, finished_status: str, condition_gen: int) -> Any:
    condition = {
        "type": "Finished",
        "status": finished_status,
        "reason": "Succeeded",
        "observedGeneration": condition_gen,
    }
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "state": "Succeeded",
            "conditions": [condition],
        },
    }


def test_a_finished_previous_generation_is_not_finished() -> None:
    """Right after a runToken bump: what `kubectl wait --for=condition=Finished` would accept."""
    assert not finished(body(2, 1, "True", 1))
    assert not finished(body(2, 2, "False", 2))
    assert finished(body(2, 2, "True", 2))


@pytest.mark.parametrize(
    ("status", "code", "has_reason"),
    [
        ({"state": "Succeeded", "exitCode": 0}, 0, False),
        ({"state": "Failed", "reason": "CommandFailed", "exitCode": 3}, 3, False),
        ({"state": "Failed", "reason": "ResourceNotFound", "message": "m"}, EXIT_ARM_ERROR, True),
        ({"state": "Failed", "reason": "ProvisioningFailed"}, EXIT_ARM_ERROR, True),
        ({"state": "Failed", "reason": "DeadlineExceeded"}, EXIT_DEADLINE, True),
        ({"state": "Unknown", "reason": "SubmissionOutcomeUnknown"}, EXIT_UNKNOWN, True),
    ],
)
def test_exit_codes(status: dict[str, Any], code: int, has_reason: bool) -> None:
    result = outcome(status)
    assert result.code == code
    assert (result.reason is not None) == has_reason


def test_the_plugin_imports_nothing_beyond_the_standard_library() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; import controller.plugin.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'kubernetes', 'kopf', 'azure', 'yaml', 'aiohttp') "
        "or m.startswith(('controller.core', 'controller.arm'))]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
