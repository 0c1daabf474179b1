"""The bench's watcher outlives its `kubectl get --watch`: a watch the API server times out, or a
kubectl that dies on a loaded machine, left `make bench` waiting an hour for final states it
would never see. A stand-in kubectl prints one state per start and exits."""

from __future__ import annotations

import stat
from pathlib import Path

from benchmarks.__main__ import Watcher
from tests.helpers import poll_until

# Each start prints what a fresh list shows by then: first Running, then the final state.
FAKE_KUBECTL = """#!/bin/sh
count=$(cat "{counter}" 2>/dev/null || echo 0)
echo $((count + 1)) > "{counter}"
if [ "$count" = 0 ]; then echo "bench-00000   Running"; else echo "bench-00000   Succeeded"; fi
"""


def test_a_watch_that_ends_is_started_again_and_sees_the_final_state(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(counter=tmp_path / "starts"))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    watcher = Watcher(str(kubectl), tmp_path / "kubeconfig")
    try:
        poll_until(
            lambda: dict(watcher.final), lambda final: "bench-00000" in final,
            what="bench-00000 seen final", timeout=20,
        )  # fmt: skip
        assert watcher.restarts >= 1
        assert watcher.created["bench-00000"] <= watcher.final["bench-00000"]
    finally:
        watcher.stop()
