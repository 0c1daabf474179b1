"""The tutorial (docs/getting-started/tutorial.md) works as written: its shell blocks run, in
order, in one bash, on the embedded stack (examples/demo.py --keep)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess

import pytest

from tests.controlplane.launcher import REPO_ROOT

pytestmark = pytest.mark.e2e  # the control planes, the emulator and the operator as processes

TUTORIAL = REPO_ROOT / "docs" / "getting-started" / "tutorial.md"


def tutorial_script() -> str:
    blocks = re.findall(r"^```sh\n(.*?)^```$", TUTORIAL.read_text(), flags=re.M | re.S)
    assert len(blocks) >= 5
    return "set -euo pipefail\n" + "\n".join(blocks)


def test_the_tutorial_runs_as_written() -> None:
    shell = subprocess.Popen(
        ["bash", "-c", tutorial_script()],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: the demo in the background with it
    )  # fmt: skip
    try:
        out, _ = shell.communicate(timeout=900)
    finally:  # whatever failed, the demo it started stops (SIGTERM: it tears its stack down)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGTERM)
    assert shell.returncode == 0, out[-6000:]
    # Step 1: the demo's three examples, as the text says.
    assert re.search(r"check-missing-deployment\s+aks-demo\s+Failed\s+3\b", out), out[-6000:]
    assert len(re.findall(r"\s+aks-demo\s+Succeeded\s+0\b", out)) >= 2
    assert "Succeeded 0" in out  # the RunCommand's state and exit code
    assert "namespace/demo-target" in out or "demo-target " in out
    assert "Failed: CommandFailed:" in out and "the plugin exited 3" in out
    assert "CommandFailed\n" in out
    assert re.search(r"fleet-hello\s+2\s+2\s+0\s+0", out), out[-3000:]
