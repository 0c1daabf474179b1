"""Small helpers for tests that drive real clusters with the real kubectl."""

from __future__ import annotations

import json
import subprocess
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
