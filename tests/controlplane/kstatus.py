"""kstatus verdicts from the real library: `status.Compute` of sigs.k8s.io/cli-utils (what Flux's
health checks and `wait` use), run by the helper built from gobuild/kstatus (`make binaries`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .launcher import find_binary


@dataclass(frozen=True)
class Verdict:
    status: str  # InProgress, Failed, Current, Terminating
    message: str


def compute(*objects: Mapping[str, Any]) -> list[Verdict]:
    """One verdict per object, in order, from one run of the helper."""
    done = subprocess.run(
        [find_binary("kstatus")],
        input="".join(json.dumps(obj) + "\n" for obj in objects),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kstatus failed ({done.returncode}): {done.stderr.strip()}")
    verdicts = [Verdict(**json.loads(line)) for line in done.stdout.splitlines()]
    if len(verdicts) != len(objects):
        raise RuntimeError(f"kstatus judged {len(verdicts)} of {len(objects)} objects")
    return verdicts
