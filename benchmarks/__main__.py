"""`make bench` (python -m benchmarks): prints measured figures.

1. The pure core: microseconds per decision.
2. Scale: RunCommands through the real operator, a real management API server and the emulator
   in scripted mode, under the emulator's `aks` throttle profile (ARM's buckets plus the AKS
   resource provider's) and its `arm` profile (see main). Measures the makespan against the
   profile's floor, ARM requests and 429s per command, operator CPU-seconds and memory (RSS).
3. Peer: the official SDK used the way `az aks command invoke` uses it, on the aks scenario's
   emulator configuration; see peer.py.
4. Fleet: one RunCommandSet over BENCH_FLEET scripted clusters (default 500); see fleet.py.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.fleet import bench_fleet
from benchmarks.peer import Figures, bench_peer
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


@contextmanager
def py_spy(pid: int, name: str) -> Iterator[subprocess.Popen[bytes] | None]:
    """With BENCH_PROFILE=DIR, py-spy samples the operator (all threads, 100 Hz) and writes
    collapsed stacks to DIR/NAME.txt, for `python -m benchmarks.profile DIR/NAME.txt`."""
    directory = os.environ.get("BENCH_PROFILE")
    if not directory:
        yield None
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    output = Path(directory) / f"{name}.txt"
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "100", "--format", "raw"]
    process = subprocess.Popen([*command, "--threads", "--output", str(output)])
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        print(f"  py-spy profile: {output}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def probes(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return dict(json.loads(response.read()))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def subscription_ids(count: int) -> list[str]:
    return [SUBSCRIPTION_ID] + [f"{i:08x}-0000-4000-8000-00000000b0b0" for i in range(1, count)]


def floor_seconds(profile: str, per_subscription: int, seconds: float) -> float:
    """The least makespan the profile's budget allows, per subscription (they run in parallel).

    arm: the POSTs need ARM's write bucket (200, then 10/s), and the last run takes `seconds`.
    aks: every command needs at least one POST and one poll from the provider's "all other
    APIs" bucket (60, then 1/s), and the last POST's run must end before its poll.
    """
    if profile == "aks":
        return max(2 * per_subscription - 60.0, per_subscription - 60.0 + seconds, seconds)
    return max(0.0, per_subscription - 200) / 10 + seconds


def bench_scale(
    count: int, seconds: float, *, subscriptions: int = 1, profile: str = "arm"
) -> Figures:
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    subs = subscription_ids(subscriptions)
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
            [cluster_entry("aks-bench", target.kubeconfig, subscriptionId=sub) for sub in subs],
            mode="scripted",
            scripted={"exitCode": 0, "logs": "ok\n", "durationSeconds": seconds},
            throttle={"profile": profile},
        )
        emulator = stack.enter_context(running_emulator(config, work / "emulator"))
        # The operator keeps to the budget the emulator enforces.
        operator = stack.enter_context(
            running_operator(
                mgmt,
                emulator,
                work / "operator",
                "--namespace",
                "bench",
                "--arm-budget",
                profile,
                verbose=False,
            )
        )
        assert operator.process is not None
        pid = operator.process.pid
        kubectl(kubectl_path, mgmt, "create", "namespace", "bench")
        idle_rss = rss_kib(pid)
        idle_tasks = probes(operator.liveness_port)["tasks"]

        items = [
            {
                "apiVersion": "aks.gitops.dev/v1alpha1",
                "kind": "RunCommand",
                "metadata": {"name": f"bench-{i:05d}", "namespace": "bench"},
                "spec": {
                    "cluster": {
                        "subscriptionId": subs[i % len(subs)],
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
                            rss_kib(pid),
                            int(probe["tasks"]),
                            int(probe["scheduled"]),
                            emulator.stats(),
                        )
                    )
                except OSError:
                    pass
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        profiler = stack.enter_context(py_spy(pid, f"scale-{profile}-{count}"))
        cpu_before = cpu_seconds(pid)
        start = time.monotonic()
        # In chunks: one kubectl per 100 objects stays within its timeout on a loaded machine.
        for first in range(0, count, 100):
            chunk = items[first : first + 100]
            kubectl(
                kubectl_path,
                mgmt,
                "apply",
                "-f",
                "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": chunk}),
            )
        applied = time.monotonic()
        sampler.start()
        final = 0
        while time.monotonic() - start < 3600:
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
        cpu = cpu_seconds(pid) - cpu_before
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(60)
        stop.set()
        sampler.join()
        stats = emulator.stats()
        succeeded = sum(state == "Succeeded" for state in states)

    elapsed = done - start
    requests = sum(stats.values())
    reads = sum(v for k, v in stats.items() if k.startswith("GET"))
    writes = sum(v for k, v in stats.items() if k.startswith("POST"))
    throttled = sum(v for k, v in stats.items() if k.endswith(" 429"))
    peak_read_rate = 0.0
    for (t0, *_, s0), (t1, *_, s1) in itertools.pairwise(samples):
        r0 = sum(v for k, v in s0.items() if k.startswith("GET"))
        r1 = sum(v for k, v in s1.items() if k.startswith("GET"))
        peak_read_rate = max(peak_read_rate, (r1 - r0) / (t1 - t0))
    floor = floor_seconds(profile, -(-count // subscriptions), seconds)
    print(
        f"scale, profile {profile}: {count} RunCommands over {subscriptions} subscription(s), "
        f"each running {seconds:.0f}s in the emulator (scripted)"
    )
    peak_rss = max((s[1] for s in samples), default=idle_rss) / 1024
    peak_tasks = max((s[2] for s in samples), default=idle_tasks)
    rows = [
        ("kubectl apply of all objects", f"{applied - start:.1f} s"),
        (
            "makespan / profile floor",
            f"{elapsed:.1f} s / {floor:.0f} s = {elapsed / floor:.2f}x",
        ),
        ("  of which after the last object was created", f"{done - applied:.1f} s"),
        ("runs Succeeded / not", f"{succeeded} / {count - succeeded} ({final} final)"),
        ("ARM requests per command", f"{requests / max(count, 1):.2f}"),
        ("  POSTs / GETs", f"{writes} / {reads}"),
        ("429 answers (share of requests)", f"{throttled} ({throttled / max(requests, 1):.2%})"),
        ("ARM reads/s mean / peak window", f"{reads / elapsed:.1f} / {peak_read_rate:.1f}"),
        ("operator CPU-seconds per 1,000 commands", f"{cpu * 1000 / max(count, 1):.1f}"),
        ("operator RSS idle / peak", f"{idle_rss / 1024:.1f} / {peak_rss:.1f} MiB"),
        ("asyncio tasks idle / peak", f"{idle_tasks} / {peak_tasks}"),
    ]
    for label, value in rows:
        print(f"  {label:<40} {value}")
    print(
        f"  {'RunCommands waiting on timers, peak':<40} {max((s[3] for s in samples), default=0)}"
    )
    print("  (probe samples are cached by kopf for up to 10 s)")
    return Figures.from_stats(count, elapsed, count - succeeded, stats)


def main() -> int:
    """BENCH_SCENARIOS picks the runs (default "aks,peer,arm,fleet"):
    - aks: BENCH_AKS_COUNT (default 200) commands of BENCH_AKS_SECONDS (10) in one subscription
      under the AKS profile. Its floor is about 2 s per command (1/s for submits and polls
      together), so 1,000 would take over half an hour; the figures scale linearly.
    - peer: BENCH_PEER_COUNT (default 60) commands of BENCH_AKS_SECONDS (10) through the
      official SDK, as `az aks command invoke` does, with 16 threads and with all at once. With
      aks in the same run and BENCH_AKS_COUNT equal to BENCH_PEER_COUNT, the operator's figures
      are printed next to the SDK's.
    - arm: BENCH_COUNT (1,000) commands of BENCH_SECONDS (20) over BENCH_SUBSCRIPTIONS (10)
      under ARM's buckets only.
    """
    env = os.environ
    bench_core()
    scenarios = [s.strip() for s in env.get("BENCH_SCENARIOS", "aks,peer,arm,fleet").split(",")]
    operator: Figures | None = None
    if "aks" in scenarios:
        operator = bench_scale(
            int(env.get("BENCH_AKS_COUNT", "200")),
            float(env.get("BENCH_AKS_SECONDS", "10")),
            profile="aks",
        )
    if "peer" in scenarios:
        peer_count = int(env.get("BENCH_PEER_COUNT", "60"))
        bench_peer(
            peer_count,
            float(env.get("BENCH_AKS_SECONDS", "10")),
            operator if operator is not None and operator.count == peer_count else None,
        )
    if "arm" in scenarios:
        bench_scale(
            int(env.get("BENCH_COUNT", "1000")),
            float(env.get("BENCH_SECONDS", "20")),
            subscriptions=int(env.get("BENCH_SUBSCRIPTIONS", "10")),
            profile="arm",
        )
    if "fleet" in scenarios:
        bench_fleet(int(env.get("BENCH_FLEET", "500")), float(env.get("BENCH_SECONDS", "20")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
