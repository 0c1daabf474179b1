"""Chaos: exactly once under SIGKILLs, API server restarts, and an ARM that fails, throttles,
drops and dawdles — checked against the emulator's log of every POST it saw.

Each scenario runs on its own management API server (it is restarted on purpose) and its own
scripted emulator, so nothing here disturbs the rest of the suite.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane, running
from tests.helpers import poll_until
from tests.kube import established, kubectl, kubectl_json
from tests.operator.conftest import CRD
from tests.stack import (
    Emulator,
    Operator,
    cluster_entry,
    emulator_config,
    running_emulator,
)

# Unknown is allowed only where the outcome truly cannot be known; the message names which.
OPERATOR_DIED = "stopped before recording ARM's answer"
FINAL = ("Succeeded", "Failed", "Unknown")
POST_IN_DOUBT = "may have been accepted"


@dataclass
class Chaos:
    plane: ControlPlane
    emulator: Emulator
    kubectl_path: str
    directory: Path
    operators: list[Operator] = field(default_factory=list)

    def kubectl(self, *args: str, stdin: str | None = None) -> Any:
        return kubectl(self.kubectl_path, self.plane.kubeconfig, *args, stdin=stdin)

    def operator(self, name: str, *args: str) -> Operator:
        operator = Operator(
            self.plane.kubeconfig,
            self.emulator,
            self.directory / name,
            ("--namespace", "chaos", "--instance-name", name, *args),
        )
        operator.start()
        self.operators.append(operator)
        return operator

    def apply_runs(self, names: list[str], run_token: str = "1") -> None:
        items = [
            {
                "apiVersion": "aks.gitops.dev/v1alpha1",
                "kind": "RunCommand",
                "metadata": {"name": name, "namespace": "chaos"},
                "spec": {
                    "cluster": cluster_ref(),
                    "command": f"echo {name} {run_token}",
                    "runToken": run_token,
                },
            }
            for name in names
        ]
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                           "items": items}))  # fmt: skip

    def statuses(self) -> dict[str, dict[str, Any]]:
        listed = kubectl_json(self.kubectl_path, self.plane.kubeconfig, "-n", "chaos", "get",
                              "runcommands")  # fmt: skip
        return {item["metadata"]["name"]: item.get("status") or {} for item in listed["items"]}

    def statuses_while_restarting(self) -> dict[str, dict[str, Any]]:
        """statuses(), or none while the API server is restarting."""
        with contextlib.suppress(AssertionError):
            return self.statuses()
        return {}

    def wait_all_final(self, count: int, timeout: float) -> dict[str, dict[str, Any]]:
        return poll_until(
            self.statuses_while_restarting,
            lambda statuses: count == sum(1 for s in statuses.values() if s.get("state") in FINAL),
            what=f"all {count} runs end",
            timeout=timeout,
            interval=1,
            describe=lambda statuses: str(
                dict(Counter((s.get("state"), s.get("reason")) for s in statuses.values()))
            ),
        )


def cluster_ref() -> dict[str, str]:
    entry = cluster_entry("aks-chaos", Path("/nonexistent"))
    return {key: entry[key] for key in ("subscriptionId", "resourceGroup", "name")}


@contextlib.contextmanager
def chaos_stack(
    tmp_path: Path, kubectl_path: str, name: str, emulator: dict[str, Any]
) -> Iterator[Chaos]:
    """A management API server of its own (namespace chaos, the CRD) and an emulator
    configured with `emulator`; operators started through the harness stop with it."""
    with running(name, tmp_path / "plane") as plane:
        kubectl(kubectl_path, plane.kubeconfig, "apply", "--server-side", "-f", str(CRD))
        established(kubectl_path, plane.kubeconfig, "crd/runcommands.aks.gitops.dev")
        kubectl(kubectl_path, plane.kubeconfig, "create", "namespace", "chaos")
        with running_emulator(emulator, tmp_path / "emulator") as running_one:
            harness = Chaos(plane, running_one, kubectl_path, tmp_path)
            try:
                yield harness
            finally:
                for operator in harness.operators:
                    operator.stop()


@pytest.fixture
def chaos(tmp_path: Path, kubectl_path: str) -> Iterator[Chaos]:
    config = emulator_config(
        [cluster_entry("aks-chaos", Path("/nonexistent"))],
        mode="scripted",
        scripted={"exitCode": 0, "logs": "done\n", "durationSeconds": 3},
    )
    with chaos_stack(tmp_path, kubectl_path, "chaos", config) as harness:
        yield harness


def runs_posted(emulator: Emulator) -> Counter[str]:
    """How many POSTs started a command (accepted, dropped after accepting, or abandoned by the
    client after ARM accepted it), per command."""
    commands = {s["commandId"]: s["command"] for s in emulator.submissions()}
    return Counter(commands[post["commandId"]] for post in emulator.started_posts())


def check_exactly_once(
    chaos: Chaos, statuses: dict[str, dict[str, Any]], runs: list[tuple[str, str]]
) -> dict[str, int]:
    """0 duplicates, 0 lost, Unknown only where the outcome cannot be known. Returns figures."""
    posted = runs_posted(chaos.emulator)
    duplicates = {command: n for command, n in posted.items() if n > 1}
    assert duplicates == {}, f"duplicate submissions: {duplicates}"
    commands = {s["commandId"]: s["command"] for s in chaos.emulator.submissions()}
    ran = {post["correlationId"] for post in chaos.emulator.started_posts()}
    lost, unknown, unknown_ran = [], Counter[str](), 0
    for name, token in runs:
        status, command = statuses[name], f"echo {name} {token}"
        if status["state"] == "Succeeded":
            assert commands.get(status["commandId"]) == command, (name, status)
            continue
        assert status["state"] == "Unknown", (name, status)
        cause = next((c for c in (OPERATOR_DIED, POST_IN_DOUBT) if c in status["message"]), None)
        if cause is None:
            lost.append((name, status["message"]))
        unknown[cause or "unexplained"] += 1
        unknown_ran += status.get("correlationId") in ran
    assert lost == [], f"runs lost or Unknown without cause: {lost}"
    for operator in chaos.operators:
        assert "Traceback" not in operator.log.read_text(), operator.log
    outcomes = Counter(post["outcome"] for post in chaos.emulator.posts())
    return {
        "runs": len(runs),
        "succeeded": sum(1 for n, _ in runs if statuses[n]["state"] == "Succeeded"),
        "unknown (operator died between claim and answer)": unknown[OPERATOR_DIED],
        "unknown (ARM answered 5xx or dropped the POST)": unknown[POST_IN_DOUBT],
        "unknown whose command did run": unknown_ran,
        "duplicate submissions": len(duplicates),
        "lost runs": len(lost),
        **{f"POSTs {outcome}": count for outcome, count in sorted(outcomes.items())},
    }


def report(capsys: pytest.CaptureFixture[str], title: str, figures: dict[str, object]) -> None:
    with capsys.disabled():
        print(f"\n{title}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))


def wait_for_new_accepted_post(emulator: Emulator, seen: int, timeout: float = 30) -> None:
    poll_until(
        lambda: sum(1 for p in emulator.posts() if p["outcome"] == "accepted"),
        lambda accepted: accepted > seen,
        what=f"a POST accepted after the first {seen}",
        timeout=timeout,
        interval=0.05,
    )


def test_chaos_sigkills_api_server_restarts_and_arm_faults_lose_and_duplicate_nothing(
    chaos: Chaos, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261126)
    started = time.monotonic()
    chaos.emulator.set_faults(
        seed=7, serverErrorRate=0.03, throttleRate=0.15, dropConnectionAfterSubmitRate=0.03,
        latencySeconds=0.05, submitLatencySeconds=0.3,
    )  # fmt: skip
    operator = chaos.operator("chaos-op")
    names = [f"run-{i:03d}" for i in range(100)]
    kills = restarts = 0
    for batch in range(5):
        accepted = sum(1 for p in chaos.emulator.posts() if p["outcome"] == "accepted")
        chaos.apply_runs(names[batch * 20 : (batch + 1) * 20])
        if batch in (1, 3):
            # The worst moment: ARM has just accepted a POST whose answer is not recorded yet.
            wait_for_new_accepted_post(chaos.emulator, accepted)
            chaos.plane.restart(downtime=rng.uniform(1.0, 3.0))
            restarts += 1
        for _ in range(4):  # SIGKILLs at random moments while runs are claimed and polled
            time.sleep(rng.uniform(0.2, 2.0))
            operator.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.5))
            operator.start()

    statuses = chaos.wait_all_final(len(names), timeout=150)
    figures = check_exactly_once(chaos, statuses, [(name, "1") for name in names])
    report(capsys, "chaos", {"SIGKILLs": kills, "API server restarts": restarts, **figures,
                             "seconds": round(time.monotonic() - started)})  # fmt: skip
    assert kills >= 20 and restarts >= 2


@pytest.mark.parametrize("peering", [False, True], ids=["standalone", "peering"])
def test_two_operators_on_one_namespace_post_each_run_exactly_once(
    chaos: Chaos, capsys: pytest.CaptureFixture[str], peering: bool
) -> None:
    started = time.monotonic()
    if peering:
        chaos.kubectl("apply", "--server-side", "-f",
                      str(CRD.parent / ".." / "charts" / "aks-runcommand-operator" / "crds"
                          / "kopf.dev_peerings.yaml"))  # fmt: skip
        chaos.kubectl("-n", "chaos", "apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
            "metadata": {"name": "chaos", "namespace": "chaos"}}))  # fmt: skip
        args: tuple[str, ...] = ("--peering", "chaos")
        chaos.operator("op-a", *args, "--priority", "2")
        chaos.operator("op-b", *args, "--priority", "1")
    else:
        chaos.operator("op-a")
        chaos.operator("op-b")
    names = [f"pair-{i:02d}" for i in range(50)]
    chaos.apply_runs(names, "1")
    chaos.wait_all_final(len(names), timeout=120)
    bumped = names[:20]
    chaos.apply_runs(bumped, "2")
    statuses = poll_until(
        chaos.statuses,
        lambda statuses: all(
            statuses[name].get("runToken") == "2" and statuses[name].get("state") in FINAL
            for name in bumped
        ),
        what="the bumped runs end their second run",
        timeout=120,
        interval=1,
    )
    runs = [(name, "1") for name in names[20:]] + [(name, "2") for name in bumped]
    figures = check_exactly_once(chaos, statuses, runs)
    first_runs = runs_posted(chaos.emulator)
    assert all(first_runs[f"echo {name} 1"] == 1 for name in names)
    mode = "peering" if peering else "standalone"
    seconds = round(time.monotonic() - started)
    report(capsys, f"two operators ({mode})", {**figures, "seconds": seconds})
    assert figures["succeeded"] == len(runs)
