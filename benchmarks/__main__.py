"""`make bench` (python -m benchmarks): prints measured figures.

1. The pure core: microseconds per decision.
2. Scale: N RunCommands (BENCH_COUNT, default 500) through the real operator, a real management
   API server and the emulator in scripted mode (each command "runs" BENCH_SECONDS, default 20 s).
   Measures wall time, operator memory (RSS) and asyncio tasks over time, and ARM requests
   against ARM's per-subscription budget (reads 25/s, writes 10/s after a burst).
3. Fleet: one RunCommandSet over BENCH_FLEET scripted clusters (default 500); see fleet.py.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.fleet import bench_fleet
from controller.arm import CommandHandle, CommandResult, CommandRunning
from controller.core import Observation, RunSpec, Settings, after_poll, after_submit, plan
from tests.controlplane import running
from tests.kube import kubectl
from tests.stack import (
    RESOURCE_GROUP,
    SUBSCRIPTION_ID,
    cluster_entry,
    emulator_config,
    running_emulator,
    running_operator,
)

CRD = Path(__file__).resolve().parents[1] / "crds" / "aks.gitops.dev_runcommands.yaml"


def bench_core() -> None:
    spec_body = {
        "cluster": {
            "subscriptionId": SUBSCRIPTION_ID,
            "resourceGroup": RESOURCE_GROUP,
            "name": "aks",
        },
        "command": "kubectl apply -f ns.yaml",
        "files": {"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"},
    }
    spec, settings, now = RunSpec.parse(spec_body), Settings(), datetime(2026, 1, 1, tzinfo=UTC)
    submitting = plan(Observation(spec, {}, 1, now, settings)).patch
    handle = CommandHandle("0" * 32, "https://arm/x/commandResults/" + "0" * 32, "c")
    running_status = {
        **submitting,
        **after_submit(Observation(spec, submitting, 1, now, settings), handle).patch,
    }
    result = CommandResult(
        "Succeeded", 0, "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "ok\n" * 100, None
    )
    cases = {
        "RunSpec.parse": lambda: RunSpec.parse(spec_body),
        "plan (new run)": lambda: plan(Observation(spec, {}, 1, now, settings)),
        "plan (finished, re-applied)": lambda: plan(
            Observation(spec, {**running_status, "state": "Succeeded"}, 1, now, settings)
        ),
        "after_poll (still running)": lambda: after_poll(
            Observation(spec, running_status, 1, now, settings),
            CommandRunning(None, None, "Running"),
            1.0,
        ),
        "after_poll (result)": lambda: after_poll(
            Observation(spec, running_status, 1, now, settings), result, 1.0
        ),
    }
    print("core decisions (pure, no I/O)")
    for name, call in cases.items():
        number, total = timeit.Timer(call).autorange()
        print(f"  {name:<30} {total / number * 1e6:8.1f} us/call")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def probes(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return dict(json.loads(response.read()))


def bench_scale(count: int, seconds: float) -> None:
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    with ExitStack() as stack:
        work = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="aks-runcommand-bench-"))
        )
        management = stack.enter_context(running("management", work / "management"))
        target = stack.enter_context(running("target", work / "target"))
        mgmt = management.kubeconfig
        kubectl(kubectl_path, mgmt, "apply", "--server-side", "-f", str(CRD))
        kubectl(
            kubectl_path,
            mgmt,
            "wait",
            "--for=condition=Established",
            "crd/runcommands.aks.gitops.dev",
        )
        config = emulator_config(
            [cluster_entry("aks-bench", target.kubeconfig)],
            mode="scripted",
            scripted={"exitCode": 0, "logs": "ok\n", "durationSeconds": seconds},
        )
        emulator = stack.enter_context(running_emulator(config, work / "emulator"))
        operator = stack.enter_context(
            running_operator(mgmt, emulator, work / "operator", "--namespace", "bench")
        )
        assert operator.process is not None
        kubectl(kubectl_path, mgmt, "create", "namespace", "bench")
        idle_rss = rss_kib(operator.process.pid)
        idle_tasks = probes(operator.liveness_port)["tasks"]

        items = [
            {
                "apiVersion": "aks.gitops.dev/v1alpha1",
                "kind": "RunCommand",
                "metadata": {"name": f"bench-{i:05d}", "namespace": "bench"},
                "spec": {
                    "cluster": {
                        "subscriptionId": SUBSCRIPTION_ID,
                        "resourceGroup": RESOURCE_GROUP,
                        "name": "aks-bench",
                    },
                    "command": f"echo {i}",
                },
            }
            for i in range(count)
        ]
        samples: list[tuple[float, int, int, int, dict[str, int]]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    probe = probes(operator.liveness_port)
                    samples.append(
                        (
                            time.monotonic(),
                            rss_kib(operator.process.pid),  # type: ignore[union-attr]
                            int(probe["tasks"]),
                            int(probe["scheduled"]),
                            emulator.stats(),
                        )
                    )
                except OSError:
                    pass
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        start = time.monotonic()
        kubectl(
            kubectl_path,
            mgmt,
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        applied = time.monotonic()
        sampler.start()
        final = 0
        while time.monotonic() - start < 1800:
            listed = json.loads(
                kubectl(
                    kubectl_path, mgmt, "-n", "bench", "get", "runcommands", "-o", "json"
                ).stdout
            )
            states = [(i.get("status") or {}).get("state") for i in listed["items"]]
            final = sum(state in ("Succeeded", "Failed", "Unknown") for state in states)
            if final == count:
                break
            time.sleep(2)
        done = time.monotonic()
        stop.set()
        sampler.join()
        stats = emulator.stats()
        succeeded = sum(state == "Succeeded" for state in states)

    elapsed = done - start
    reads = sum(v for k, v in stats.items() if k.startswith("GET"))
    writes = sum(v for k, v in stats.items() if k.startswith("POST"))
    throttled = sum(v for k, v in stats.items() if k.endswith(" 429"))
    peak_read_rate = 0.0
    for (t0, *_, s0), (t1, *_, s1) in itertools.pairwise(samples):
        r0 = sum(v for k, v in s0.items() if k.startswith("GET"))
        r1 = sum(v for k, v in s1.items() if k.startswith("GET"))
        peak_read_rate = max(peak_read_rate, (r1 - r0) / (t1 - t0))
    print(f"scale: {count} RunCommands, each running {seconds:.0f}s in the emulator (scripted)")
    peak_rss = max(s[1] for s in samples) / 1024
    peak_tasks = max(s[2] for s in samples)
    write_floor = max(0, count - 200) / 10
    rows = [
        ("kubectl apply of all objects", f"{applied - start:.1f} s"),
        ("all finished after", f"{elapsed:.1f} s ({succeeded} Succeeded, {final} final)"),
        (
            "ARM writes (POST runCommand)",
            f"{writes} (ARM floor: {write_floor:.0f} s at 10/s after 200)",
        ),
        ("ARM reads (GET), total / per run", f"{reads} / {reads / max(count, 1):.1f}"),
        ("ARM reads/s mean / peak window", f"{reads / elapsed:.1f} / {peak_read_rate:.1f}"),
        ("  (ARM's read budget: a 250 burst, then 25/s sustained)", ""),
        ("ARM 429 answers", f"{throttled}"),
        ("operator RSS idle / peak", f"{idle_rss / 1024:.1f} / {peak_rss:.1f} MiB"),
        ("asyncio tasks idle / peak", f"{idle_tasks} / {peak_tasks}"),
    ]
    for label, value in rows:
        print(f"  {label:<36} {value}")
    print(f"  {'RunCommands waiting on timers, peak':<36} {max(s[3] for s in samples)}")
    print("  (probe samples are cached by kopf for up to 10 s)")


def main() -> int:
    bench_core()
    bench_scale(
        int(os.environ.get("BENCH_COUNT", "500")), float(os.environ.get("BENCH_SECONDS", "20"))
    )
    bench_fleet(
        int(os.environ.get("BENCH_FLEET", "500")), float(os.environ.get("BENCH_SECONDS", "20"))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
