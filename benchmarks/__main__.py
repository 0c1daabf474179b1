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

import asyncio
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
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes

from benchmarks import plots
from benchmarks.fleet import BENCH_CONTROLLER_MANAGER, bench_fleet
from benchmarks.latency import bench_latency
from benchmarks.peer import Figures, bench_peer
from controller.arm import CommandHandle, CommandResult, CommandRunning
from controller.core import (
    Decision,
    Observation,
    RunSpec,
    Settings,
    after_poll,
    after_submit,
    plan,
)
from controller.kube import KubeApi, ObjectRef
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
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--gil"]
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


class Watcher:
    """`kubectl get --watch` over the bench namespace, one line per event: when each
    RunCommand was first seen (its creation, as a client sees it) and first seen final.

    A watch ends when the API server times it out, or when kubectl dies on a loaded machine;
    it is started again, and its first list shows every object's state as it is by then, so no
    final state is missed (only seen later)."""

    def __init__(self, kubectl_path: str, kubeconfig: Path) -> None:
        columns = "N:.metadata.name,S:.status.state"
        self._command = [
            kubectl_path, "--kubeconfig", str(kubeconfig), "-n", "bench", "get", "runcommands",
            "--watch", "--no-headers", "-o", f"custom-columns={columns}",
        ]  # fmt: skip
        self.created: dict[str, float] = {}
        self.final: dict[str, float] = {}
        self.restarts = 0
        self._stopped = threading.Event()
        self._process = self._start()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )

    def _read(self) -> None:
        while True:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                now = time.time()
                name, _, state = line.strip().partition(" ")
                self.created.setdefault(name, now)
                if state.strip() in ("Succeeded", "Failed", "Unknown"):
                    self.final.setdefault(name, now)
            self._process.wait()
            if self._stopped.wait(1.0):
                return
            self.restarts += 1
            self._process = self._start()
            if self._stopped.is_set():  # stop() ran between the check and the start
                self._process.terminate()

    def stop(self) -> None:
        self._stopped.set()
        self._process.terminate()
        self._process.wait(10)


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {p50:.1f} s, p95 {p95:.1f} s"


def bench_scale(
    scenario: str,
    count: int,
    seconds: float,
    *,
    subscriptions: int = 1,
    profile: str = "arm",
    shards: int = 1,
) -> Figures:
    """`count` RunCommands of `seconds` each, spread over `subscriptions`, through `shards`
    operators (a subscription's RunCommands all in one shard, as the README advises)."""
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    subs = subscription_ids(subscriptions)
    with ExitStack() as stack:
        work = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="aks-runcommand-bench-"))
        )
        management = stack.enter_context(
            running("management", work / "management", controller_manager=BENCH_CONTROLLER_MANAGER)
        )
        target = stack.enter_context(
            running("target", work / "target", controller_manager=BENCH_CONTROLLER_MANAGER)
        )
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
        shard_args = [["--shard-key", f"s{i}"] for i in range(shards)] if shards > 1 else [[]]
        operators = [
            stack.enter_context(
                running_operator(
                    mgmt,
                    emulator,
                    work / f"operator-{i}",
                    "--namespace",
                    "bench",
                    "--arm-budget",
                    profile,
                    *args,
                    verbose=False,
                )
            )
            for i, args in enumerate(shard_args)
        ]
        pids = [operator.process.pid for operator in operators if operator.process is not None]
        kubectl(kubectl_path, mgmt, "create", "namespace", "bench")
        idle_rss = sum(rss_kib(pid) for pid in pids)
        idle_tasks = probes(operators[0].liveness_port)["tasks"]

        def labels(i: int) -> dict[str, str]:
            shard = (i % len(subs)) % shards
            return {"sharding.aks.gitops.dev/key": f"s{shard}"} if shards > 1 else {}

        items = [
            {
                "apiVersion": "aks.gitops.dev/v1alpha1",
                "kind": "RunCommand",
                "metadata": {"name": f"bench-{i:05d}", "namespace": "bench", "labels": labels(i)},
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
                    probe = probes(operators[0].liveness_port)
                    samples.append(
                        (
                            time.monotonic(),
                            sum(rss_kib(pid) for pid in pids),
                            int(probe["tasks"]),
                            int(probe["scheduled"]),
                            emulator.stats(),
                        )
                    )
                except OSError:
                    pass
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        profiler = stack.enter_context(py_spy(pids[0], f"scale-{profile}-{count}-{shards}"))
        watcher = Watcher(kubectl_path, mgmt)
        stack.callback(watcher.stop)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        start, start_epoch = time.monotonic(), time.time()
        sampler.start()
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
        while time.monotonic() - start < 3600 and len(watcher.final) < count:
            time.sleep(1)
        if watcher.restarts:  # final states were seen late by up to a re-list each time
            print(f"  the kubectl watch ended and was started again {watcher.restarts} time(s)")
        done = time.monotonic()
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(60)
        stop.set()
        sampler.join()
        stats = emulator.stats()
        listed = json.loads(
            kubectl(kubectl_path, mgmt, "-n", "bench", "get", "runcommands", "-o", "json").stdout
        )["items"]
        posts = {p["correlationId"]: p for p in emulator.posts() if p["outcome"] == "accepted"}

    statuses = [item.get("status") or {} for item in listed]
    succeeded = sum(status.get("state") == "Succeeded" for status in statuses)
    to_submission, to_status = [], []
    for item, status in zip(listed, statuses, strict=True):
        name, post = item["metadata"]["name"], posts.get(status.get("correlationId", ""))
        if post is None or name not in watcher.created or name not in watcher.final:
            continue
        to_submission.append(plots.epoch(post["receivedAt"]) - watcher.created[name])
        to_status.append(watcher.final[name] - (plots.epoch(post["answeredAt"]) + seconds))
    last_created = max(watcher.created.values(), default=time.time())
    last_final = max(watcher.final.values(), default=last_created)
    elapsed = done - start
    requests = sum(stats.values())
    reads = sum(v for k, v in stats.items() if k.startswith("GET"))
    writes = sum(v for k, v in stats.items() if k.startswith("POST"))
    throttled = sum(v for k, v in stats.items() if k.endswith(" 429"))
    per_subscription = -(-count // subscriptions)
    floor = floor_seconds(profile, per_subscription, seconds)
    print(
        f"scale, profile {profile}: {count} RunCommands over {subscriptions} subscription(s), "
        f"{shards} operator shard(s), each running {seconds:.0f}s in the emulator (scripted)"
    )
    peak_rss = max((s[1] for s in samples), default=idle_rss) / 1024
    peak_tasks = max((s[2] for s in samples), default=idle_tasks)
    after_last = last_final - last_created
    rows = [
        ("kubectl apply of all objects", f"{applied - start:.1f} s"),
        ("makespan, first apply to last final status", f"{elapsed:.1f} s"),
        (
            "  from the last object's creation",
            f"{after_last:.1f} s"
            + (f" (floor: the last run's own {seconds:.0f} s)" if profile == "arm" else ""),
        ),
        (
            "  whole run / budget floor",
            f"{elapsed:.1f} s / {floor:.0f} s = {elapsed / floor:.2f}x",
        ),
        ("creation -> submission (ARM received)", percentiles(to_submission)),
        ("run's end in ARM -> final status", percentiles(to_status)),
        ("runs Succeeded / not", f"{succeeded} / {count - succeeded}"),
        ("ARM requests per command", f"{requests / max(count, 1):.2f}"),
        ("  POSTs / GETs", f"{writes} / {reads}"),
        ("429 answers (share of requests)", f"{throttled} ({throttled / max(requests, 1):.2%})"),
        ("operator CPU-seconds per 1,000 commands", f"{cpu * 1000 / max(count, 1):.1f}"),
        ("  per command", f"{cpu * 1000 / max(count, 1):.1f} ms"),
        ("operator RSS idle / peak (all shards)", f"{idle_rss / 1024:.1f} / {peak_rss:.1f} MiB"),
        ("asyncio tasks idle / peak (first shard)", f"{idle_tasks} / {peak_tasks}"),
    ]
    for label, value in rows:
        print(f"  {label:<44} {value}")
    accepted = list(posts.values())
    plots.timeline(
        scenario,
        f"{scenario}: {count} runs of {seconds:.0f} s over {subscriptions} subscription(s), "
        f"profile {profile}, {shards} shard(s)",
        {
            "started (ARM accepted the POST)": [plots.epoch(p["receivedAt"]) for p in accepted],
            "finished in ARM": [plots.epoch(p["answeredAt"]) + seconds for p in accepted],
            "recorded in status": list(watcher.final.values()),
        },
        start=start_epoch,
        floor_seconds=floor,
    )
    return Figures.from_stats(count, elapsed, count - succeeded, stats)


def finished_status(spec_body: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """The status the operator itself writes for a run that Succeeded, built by the core."""
    spec = RunSpec.parse(spec_body)
    status: dict[str, Any] = {}
    command_id = uuid.uuid4().hex
    handle = CommandHandle(command_id, f"https://arm/x/commandResults/{command_id}", "c")
    result = CommandResult("Succeeded", 0, _ISO_START, _ISO_END, "ok\n", None)
    steps: list[Callable[[], Decision]] = [
        lambda: plan(Observation(spec, status, 1, now, settings)),
        lambda: after_submit(Observation(spec, status, 1, now, settings), handle),
        lambda: after_poll(Observation(spec, status, 1, now, settings), result, 1.0),
    ]
    for step in steps:
        for key, value in step().patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
    return status


_ISO_START, _ISO_END = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"


def bench_memory(count: int) -> None:
    """A cold start over `count` RunCommands that have finished: the operator's peak RSS and
    CPU until it is idle again, and that none of them is submitted again."""
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    settings, now = Settings(), datetime.now(UTC)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aks-rc-memory-")))
        management = stack.enter_context(
            running("management", work / "management", controller_manager=BENCH_CONTROLLER_MANAGER)
        )
        target = stack.enter_context(
            running("target", work / "target", controller_manager=BENCH_CONTROLLER_MANAGER)
        )
        mgmt = management.kubeconfig
        kubectl(kubectl_path, mgmt, "apply", "--server-side", "-f", str(CRD))
        kubectl(kubectl_path, mgmt, "wait", "--for=condition=Established",
                "crd/runcommands.aks.gitops.dev")  # fmt: skip
        kubectl(kubectl_path, mgmt, "create", "namespace", "bench")
        started = time.monotonic()
        asyncio.run(create_finished(mgmt, count, settings, now))
        created = time.monotonic() - started
        config = emulator_config(
            [cluster_entry("aks-bench", target.kubeconfig)], mode="scripted",
            scripted={"exitCode": 0, "logs": "ok\n", "durationSeconds": 1},
        )  # fmt: skip
        emulator = stack.enter_context(running_emulator(config, work / "emulator"))
        begin = time.monotonic()
        operator = stack.enter_context(
            running_operator(mgmt, emulator, work / "operator", "--namespace", "bench",
                             verbose=False)
        )  # fmt: skip
        assert operator.process is not None
        pid = operator.process.pid
        peak, last_cpu, quiet_since = 0, -1.0, time.monotonic()
        rss: list[tuple[float, float]] = []
        while time.monotonic() - quiet_since < 10 and time.monotonic() - begin < 600:
            peak = max(peak, rss_kib(pid))
            rss.append((time.monotonic() - begin, rss_kib(pid) / 1024))
            cpu = cpu_seconds(pid)
            if cpu - last_cpu > 0.05:  # still working through the initial list
                last_cpu, quiet_since = cpu, time.monotonic()
            time.sleep(0.2)
        settled = quiet_since - begin
        final_rss, cpu = rss_kib(pid), cpu_seconds(pid)
        posts = len(emulator.posts())
    print(f"memory: a cold start over {count} RunCommands that have finished")
    print(f"  {'objects created (with finished status) in':<44} {created:.0f} s")
    print(f"  {'peak RSS / goal':<44} {peak / 1024:.1f} MiB / 150 MiB")
    print(f"  {'RSS when idle again':<44} {final_rss / 1024:.1f} MiB")
    print(f"  {'start to idle, CPU-seconds':<44} {settled:.1f} s, {cpu:.1f} s")
    print(f"  {'runCommand POSTs (must be 0)':<44} {posts}")
    plots.series(
        "memory",
        f"memory: RSS during a cold start over {count} finished RunCommands",
        [t for t, _ in rss],
        [mib for _, mib in rss],
        "operator RSS (MiB)",
    )


async def create_finished(kubeconfig: Path, count: int, settings: Settings, now: datetime) -> None:
    """Create `count` RunCommands and give each the status of a run that Succeeded, 32 at a
    time through the operator's own Kubernetes client."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        str(kubeconfig), client_configuration=configuration
    )
    kube = KubeApi(configuration)
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        spec = {"cluster": {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": RESOURCE_GROUP,
                            "name": "aks-bench"},
                "command": f"kubectl get pods -n team-{i % 50}"}  # fmt: skip
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {"name": f"done-{i:05d}", "namespace": "bench"},
            "spec": spec,
        }
        async with gate:
            found = await kube.create_runcommand("bench", body)
            assert found is not None
            ref = ObjectRef("bench", f"done-{i:05d}", found["metadata"]["uid"])
            status = finished_status(spec, settings, now)
            await kube.patch_status(ref, status, found["metadata"]["resourceVersion"])

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        await kube.close()


def main() -> int:
    """BENCH_SCENARIOS picks the runs, in this order (default: all of them):
    - scale: BENCH_COUNT (2,000) commands of BENCH_SECONDS (20) over BENCH_SUBSCRIPTIONS (20),
      under ARM's buckets only (profile arm), then the same under the AKS profile (scale-aks),
      then with two operator shards (shards, profile arm).
    - memory: a cold start over BENCH_MEMORY_COUNT (10,000) RunCommands that have finished.
    - fleet: one RunCommandSet over BENCH_FLEET scripted clusters (500); see fleet.py.
    - peer: BENCH_PEER_COUNT (60) commands of BENCH_AKS_SECONDS (10) through the official SDK,
      as `az aks command invoke` does, with 16 threads and with all at once.
    - latency: single runs of BENCH_LATENCY_SECONDS (5,45,300) under BENCH_LATENCY_PROFILES
      (arm,aks), BENCH_LATENCY_RUNS (5) per cell, against the `az` way; about 16 minutes with
      the defaults (three rounds, each as long as the longest command); see latency.py.
    - aks: BENCH_AKS_COUNT (1,000) commands of BENCH_AKS_SECONDS (10) in one subscription under
      the AKS profile. Its floor is about 2 s per command (1/s for submits and polls together):
      1,000 take over half an hour, so it runs last.
    """
    env = os.environ
    print(f"machine: {machine()}")
    print(f"plots: {plots.PLOTS_DIR} (BENCH_PLOTS)")
    bench_core()
    default = "scale,scale-aks,shards,memory,fleet,peer,latency,aks"
    scenarios = [s.strip() for s in env.get("BENCH_SCENARIOS", default).split(",")]
    count, seconds = int(env.get("BENCH_COUNT", "2000")), float(env.get("BENCH_SECONDS", "20"))
    subscriptions = int(env.get("BENCH_SUBSCRIPTIONS", "20"))
    if "scale" in scenarios:
        bench_scale("scale", count, seconds, subscriptions=subscriptions, profile="arm")
    if "scale-aks" in scenarios:
        bench_scale("scale-aks", count, seconds, subscriptions=subscriptions, profile="aks")
    if "shards" in scenarios:
        bench_scale("shards", count, seconds, subscriptions=subscriptions, profile="arm", shards=2)
    if "memory" in scenarios:
        bench_memory(int(env.get("BENCH_MEMORY_COUNT", "10000")))
    if "fleet" in scenarios:
        bench_fleet(int(env.get("BENCH_FLEET", "500")), seconds)
    aks_count = int(env.get("BENCH_AKS_COUNT", "1000"))
    if "peer" in scenarios:
        peer_seconds = float(env.get("BENCH_AKS_SECONDS", "10"))
        bench_peer(int(env.get("BENCH_PEER_COUNT", "60")), peer_seconds, None)
    if "latency" in scenarios:
        lengths = [float(s) for s in env.get("BENCH_LATENCY_SECONDS", "5,45,300").split(",")]
        profiles = [p.strip() for p in env.get("BENCH_LATENCY_PROFILES", "arm,aks").split(",")]
        bench_latency(lengths, int(env.get("BENCH_LATENCY_RUNS", "5")), profiles)
    if "aks" in scenarios:
        bench_scale("aks", aks_count, float(env.get("BENCH_AKS_SECONDS", "10")), profile="aks")
    return 0


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Linux {os.uname().release}"


if __name__ == "__main__":
    sys.exit(main())
