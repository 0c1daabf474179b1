"""Small helpers for tests that drive real clusters with the real kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def kubectl(
    kubectl_path: str, kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [kubectl_path, f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        )
    return result


def kubectl_json(kubectl_path: str, kubeconfig: Path, *args: str) -> Any:
    return json.loads(kubectl(kubectl_path, kubeconfig, *args, "-o", "json").stdout)


def eventually(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    """Wait for `check` to hold; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout:.0f} s")


def absent(kubectl_path: str, kubeconfig: Path, *what: str) -> Callable[[], bool]:
    """A check that `kubectl get WHAT` finds nothing (NotFound)."""

    def check() -> bool:
        found = kubectl(kubectl_path, kubeconfig, "get", *what, check=False)
        if found.returncode and "NotFound" not in found.stderr:
            raise AssertionError(found.stderr)
        return found.returncode != 0

    return check
