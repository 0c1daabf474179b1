"""`make demo` keeps working: the demo runs end to end and every example ends as it expects."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.controlplane.launcher import REPO_ROOT

pytestmark = pytest.mark.e2e  # the emulator (and the operator) as processes


def test_demo_runs_every_example_to_its_expected_exit_code() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "examples.demo"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert "every example ended with the exit code it expects" in out
    for name, state, exit_code in (
        ("create-team-a-namespace", "Succeeded", "0"),
        ("check-missing-deployment", "Failed", "3"),
        ("install-greeting", "Succeeded", "0"),
    ):
        assert f"--- {name}\n    state        {state}   exit code {exit_code}" in out
    assert "namespace/team-a created" in out
    assert "hello from a RunCommand" in out  # the helm release rendered its value
