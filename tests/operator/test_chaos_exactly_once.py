"""Chaos for submitPolicy ExactlyOnce: SIGKILLs of the operator and dropped connections, with
commands executed for real (the emulator's execute mode) on a real target API server.

Every command leaves one uniquely named object in the target per execution (kubectl create with
generateName), so a command that ran twice is seen there, whatever status says. Runs whose
submission is in doubt are submitted again; the fence makes the later submission replay the
first one's result. The figures are printed, as test_chaos.py prints its own.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane
from tests.kube import kubectl, kubectl_json
from tests.operator.test_chaos import Chaos, chaos_stack, report
from tests.stack import RESOURCE_GROUP, SUBSCRIPTION_ID, cluster_entry, emulator_config

CLUSTER = "aks-chaos-target"
PROBES = "chaos-exactly-once"  # in the target: one object per execution of a command


@pytest.fixture
def chaos(tmp_path: Path, kubectl_path: str, target_cluster: ControlPlane) -> Iterator[Chaos]:
    for name in (PROBES, "aks-command"):
        kubectl(kubectl_path, target_cluster.kubeconfig, "create", "namespace", name, check=False)
    config = emulator_config([cluster_entry(CLUSTER, target_cluster.kubeconfig)])  # execute
    with chaos_stack(tmp_path, kubectl_path, "chaos-exactly-once", config) as harness:
        yield harness


def probe(mark: str) -> str:
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "generateName": f"{mark}-", "namespace": PROBES, "labels": {"mark": mark}}})  # fmt: skip
    return f"kubectl create -f - -o name <<'EOF'\n{manifest}\nEOF\n"


def apply_runs(chaos: Chaos, names: list[str], marks: dict[str, str]) -> None:
    items = [
        {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {"name": name, "namespace": "chaos"},
            "spec": {
                "cluster": {
                    "subscriptionId": SUBSCRIPTION_ID,
                    "resourceGroup": RESOURCE_GROUP,
                    "name": CLUSTER,
                },
                "command": probe(marks[name]),
                "submitPolicy": "ExactlyOnce",
                "retries": 8,  # bounds the resubmissions of one run, each after a backoff
                "timeoutSeconds": 600,
            },
        }
        for name in names
    ]
    chaos.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                        "items": items}))  # fmt: skip


def test_sigkills_and_dropped_connections_with_exactly_once_run_each_command_once(
    chaos: Chaos, target_cluster: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261201)
    started = time.monotonic()
    chaos.emulator.set_faults(
        seed=11, dropConnectionAfterSubmitRate=0.1, submitLatencySeconds=0.5, latencySeconds=0.02
    )
    operator = chaos.operator("exactly-once-op")
    run_id = f"{int(time.time())}"
    names = [f"eo-{i:02d}" for i in range(30)]
    marks = {name: f"{name}-{run_id}" for name in names}
    kills = 0
    for batch, batch_kills in enumerate((4, 3, 3)):
        apply_runs(chaos, names[batch * 10 : (batch + 1) * 10], marks)
        for _ in range(batch_kills):  # while runs are claimed, submitted and polled
            time.sleep(rng.uniform(0.3, 2.0))
            operator.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 0.5))
            operator.start()

    statuses = chaos.wait_all_final(len(names), timeout=400)

    probes = kubectl_json(chaos.kubectl_path, target_cluster.kubeconfig, "-n", PROBES, "get",
                          "configmaps", "-l", "mark")  # fmt: skip
    executed = Counter(item["metadata"]["labels"]["mark"] for item in probes["items"])
    fences = kubectl_json(chaos.kubectl_path, target_cluster.kubeconfig, "-n", "aks-command",
                          "get", "configmaps", "-l", "aks.gitops.dev/fence=true")  # fmt: skip
    recorded = {item["metadata"]["name"]: item.get("data") or {} for item in fences["items"]}
    not_succeeded = {
        name: (s.get("state"), s.get("reason"), s.get("message"))
        for name, s in statuses.items()
        if (s.get("state"), s.get("exitCode")) != ("Succeeded", 0)
    }
    assert not_succeeded == {}, not_succeeded
    assert {name: executed[marks[name]] for name in names} == dict.fromkeys(names, 1)
    for name, status in statuses.items():
        assert status["logs"].startswith(f"configmap/{marks[name]}-"), (name, status["logs"])
        fence = recorded[status["fence"]]
        assert (fence["state"], fence["exitCode"], fence["output"]) == (
            "done", "0", status["logs"]
        ), name  # fmt: skip
    for each in chaos.operators:
        assert "Traceback" not in each.log.read_text(), each.log
    resubmitted = sum(1 for s in statuses.values() if int(s.get("attempts") or 1) > 1)
    started_posts = len(chaos.emulator.started_posts())
    outcomes = Counter(post["outcome"] for post in chaos.emulator.posts())
    report(capsys, "chaos, ExactlyOnce", {
        "SIGKILLs": kills, "runs": len(names),
        "succeeded exit 0": sum(1 for s in statuses.values() if s["state"] == "Succeeded"),
        "executed in the target": sum(executed[marks[n]] for n in names),
        "executed twice": sum(1 for n in names if executed[marks[n]] > 1),
        "unknown": sum(1 for s in statuses.values() if s["state"] == "Unknown"),
        "runs resubmitted": resubmitted,
        "most submissions of one run": max(int(s.get("attempts") or 1) for s in statuses.values()),
        "submissions started in ARM": started_posts,
        **{f"POSTs {outcome}": count for outcome, count in sorted(outcomes.items())},
        "seconds": round(time.monotonic() - started),
    })  # fmt: skip
    assert kills == 10
    assert resubmitted >= 1 and started_posts > len(names)
