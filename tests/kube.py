"""Small helpers for tests that drive real clusters with the real kubectl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import poll_until


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
    """Wait for `check` to hold; fail naming `what` after `timeout` seconds (poll_until, for a
    yes-or-no check)."""
    poll_until(check, bool, what=what, timeout=timeout, interval=0.5)


def established_status(crd: dict[str, Any]) -> str | None:
    """The status of a CRD's Established condition; None while it has none (its status has
    `conditions: null` right after the CRD is created)."""
    for condition in (crd.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Established":
            return str(condition.get("status"))
    return None


def established(kubectl_path: str, kubeconfig: Path, crd: str, timeout: float = 60) -> None:
    """Wait for `crd` (crd/NAME) to be Established, reading the whole object: a jsonpath filter
    over conditions that are not there yet makes kubectl fail instead of print nothing."""
    poll_until(
        lambda: established_status(kubectl_json(kubectl_path, kubeconfig, "get", crd)),
        lambda status: status == "True",
        what=f"{crd} Established",
        timeout=timeout,
        interval=0.2,
    )


def absent(kubectl_path: str, kubeconfig: Path, *what: str) -> Callable[[], bool]:
    """A check that `kubectl get WHAT` finds nothing (NotFound)."""

    def check() -> bool:
        found = kubectl(kubectl_path, kubeconfig, "get", *what, check=False)
        if found.returncode and "NotFound" not in found.stderr:
            raise AssertionError(found.stderr)
        return found.returncode != 0

    return check
