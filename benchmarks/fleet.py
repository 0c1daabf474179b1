"""One RunCommandSet over N scripted clusters (BENCH_FLEET, default 500), through the real
operator, a real management API server and the emulator: the makespan against ARM's floor
(the write budget: a burst of 200 POSTs, then 10/s), and ARM requests per cluster, discovery
(the paged managedClusters lists) included."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks import plots
from tests.controlplane import running
from tests.kube import kubectl, kubectl_json
from tests.stack import SUBSCRIPTION_ID, emulator_config, running_emulator, running_operator

# The benchmarks measure the operator against kube-apiserver and etcd, as their recorded figures
# were measured: no kube-controller-manager competing for the same cores (its garbage collector
# would watch every RunCommand). The tests run it; nothing here needs collection.
BENCH_CONTROLLER_MANAGER = False

CRDS = Path(__file__).resolve().parents[1] / "crds"
GROUP = "rg-bench-fleet"


def management_plane(stack: ExitStack, prefix: str, kubectl_path: str) -> tuple[Path, Path]:
    """A work directory and a management API server with the CRDs established, both ended
    with `stack`: (work directory, kubeconfig)."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    management = running(
        "management", work / "management", controller_manager=BENCH_CONTROLLER_MANAGER
    )
    mgmt = stack.enter_context(management).kubeconfig
    kubectl(kubectl_path, mgmt, "apply", "--server-side", "-f", str(CRDS))
    kubectl(kubectl_path, mgmt, "wait", "--for=condition=Established",
            "crd/runcommands.aks.gitops.dev", "crd/runcommandsets.aks.gitops.dev")  # fmt: skip
    return work, mgmt


def bench_fleet(count: int, seconds: float) -> None:
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    with ExitStack() as stack:
        work, mgmt = management_plane(stack, "aks-fleet-bench-", kubectl_path)
        clusters = [
            {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": GROUP, "name": f"aks-{i:04d}"}
            for i in range(count)
        ]
        config = emulator_config(
            clusters,
            mode="scripted",
            scripted={"exitCode": 0, "logs": "ok\n", "durationSeconds": seconds},
            throttle={"profile": "arm"},
        )
        emulator = stack.enter_context(running_emulator(config, work / "emulator"))
        # ARM's own buckets on both sides: this measures a set's rollout, not the AKS budget
        # (500 clusters in one subscription would take 16 minutes at 1 request per second).
        stack.enter_context(
            running_operator(
                mgmt,
                emulator,
                work / "operator",
                "--namespace",
                "bench",
                "--arm-budget",
                "arm",
                verbose=False,
            )
        )
        kubectl(kubectl_path, mgmt, "create", "namespace", "bench")
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommandSet",
            "metadata": {"name": "bench", "namespace": "bench"},
            "spec": {
                "template": {"command": "echo fleet"},
                "clusterSelector": {"subscriptions": [SUBSCRIPTION_ID], "resourceGroups": [GROUP]},
            },
        }
        start, start_epoch = time.monotonic(), time.time()
        kubectl(kubectl_path, mgmt, "apply", "-f", "-", stdin=json.dumps(body))
        status: dict[str, object] = {}
        while time.monotonic() - start < 1800:
            got = kubectl_json(kubectl_path, mgmt, "-n", "bench", "get", "runcommandset", "bench")
            status = got.get("status") or {}
            if status.get("state") in ("Succeeded", "Failed"):
                break
            time.sleep(1)
        makespan = time.monotonic() - start
        stats = emulator.stats()
        started = emulator.started_posts()
        posts = len(started)

    requests = sum(stats.values())
    floor = max(0, count - 200) / 10 + seconds
    print(f"fleet: one RunCommandSet over {count} clusters, each command running {seconds:.0f}s")
    rows = [
        ("round ended", f"{status.get('state')} ({status.get('succeeded')} succeeded)"),
        ("makespan (apply to round end)", f"{makespan:.1f} s"),
        ("ARM floor (200 POSTs, then 10/s, + run)", f"{floor:.1f} s"),
        ("POSTs that started a command", f"{posts}"),
        ("ARM requests, total / per cluster", f"{requests} / {requests / max(count, 1):.1f}"),
        ("ARM answers by method and status", json.dumps(stats, sort_keys=True)),
    ]
    for label, value in rows:
        print(f"  {label:<40} {value}")
    accepted = [p for p in started if p["outcome"] == "accepted"]
    plots.timeline(
        "fleet",
        f"fleet: one RunCommandSet over {count} clusters, {seconds:.0f} s each, profile arm",
        {
            "started (ARM accepted the POST)": [plots.epoch(p["receivedAt"]) for p in accepted],
            "finished in ARM": [plots.epoch(p["answeredAt"]) + seconds for p in accepted],
        },
        start=start_epoch,
        floor_seconds=floor,
    )
