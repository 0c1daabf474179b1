"""A pipeline never waits longer than `az` would (issue 23): one 45 s command alone in its
subscription, under the AKS budget, is recorded within 5 s of its end in ARM.

Counted, not timed: polls are what the emulator answered for that command, and the lateness is
status' own record (the Ready condition's transition, to the second) against ARM's finishedAt.
The stack is its own (API server, scripted emulator, operator), since the operator is
restarted on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import running
from tests.kube import kubectl
from tests.operator.conftest import CRD
from tests.operator.rc import RunCommands
from tests.stack import Emulator, Operator, cluster_entry, emulator_config, running_emulator

SECONDS = 45
SUBSCRIPTION = "00000000-0000-0000-0000-0000000000f5"  # alone in it


@dataclass
class Stack:
    runcommands: RunCommands
    emulator: Emulator
    operator: Operator

    def run(self, name: str) -> tuple[int, float]:
        """Apply one RunCommand and wait for its result: (polls it took, seconds from ARM's
        end to the record in status)."""
        entry = cluster_entry("aks-polls", Path("/nonexistent"), subscriptionId=SUBSCRIPTION)
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {"name": name, "namespace": "polls"},
            "spec": {
                "cluster": {key: entry[key] for key in ("subscriptionId", "resourceGroup", "name")},
                "command": f"echo {name}",
            },
        }
        self.runcommands.apply(json.dumps(body))
        done = self.runcommands.wait("polls", name, timeout=SECONDS + 90)
        status = done["status"]
        assert status["state"] == "Succeeded", status
        (submission,) = [
            s for s in self.emulator.submissions() if s["commandId"] == status["commandId"]
        ]
        (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
        recorded = epoch(ready["lastTransitionTime"])  # to the second, rounded down
        return int(submission["polls"]), recorded - epoch(status["finishedAt"])


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def stack(tmp_path: Path, kubectl_path: str) -> Iterator[Stack]:
    with running("polls", tmp_path / "plane") as plane:
        kubeconfig = plane.kubeconfig
        kubectl(kubectl_path, kubeconfig, "apply", "--server-side", "-f", str(CRD))
        kubectl(kubectl_path, kubeconfig, "wait", "--for=condition=Established",
                "crd/runcommands.aks.gitops.dev")  # fmt: skip
        kubectl(kubectl_path, kubeconfig, "create", "namespace", "polls")
        config = emulator_config(
            [cluster_entry("aks-polls", Path("/nonexistent"), subscriptionId=SUBSCRIPTION)],
            mode="scripted",
            scripted={"exitCode": 0, "logs": "done\n", "durationSeconds": SECONDS},
            throttle={"profile": "aks"},
        )
        with running_emulator(config, tmp_path / "emulator") as emulator:
            operator = Operator(
                kubeconfig, emulator, tmp_path / "operator",
                ("--namespace", "polls", "--arm-budget", "aks"),
            )  # fmt: skip
            operator.start()
            try:
                yield Stack(RunCommands(kubectl_path, kubeconfig), emulator, operator)
            finally:
                operator.stop()


def test_a_45_s_command_is_recorded_within_5_s_of_its_end_before_and_after_a_restart(
    stack: Stack,
) -> None:
    # A cluster with no history: polled from 1 s, then every 5 s while the budget has room.
    polls, late = stack.run("fresh")
    assert polls <= 12
    assert late <= 5
    # A new process: the duration comes back from the first run's status.history.
    stack.operator.stop()
    stack.operator.start()
    polls, late = stack.run("after-restart")
    assert polls <= 3
    assert late <= 5
    stats: dict[str, Any] = stack.emulator.stats()
    assert not any(key.endswith(" 429") for key in stats), stats
