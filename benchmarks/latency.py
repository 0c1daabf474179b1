"""Single-run latency (issue 23): how long after a command ends in ARM its result is recorded,
next to the `az` way (the official SDK as peer.py uses it, polling every 5 s).

For each budget profile (arm, aks) and command length (BENCH_LATENCY_SECONDS, default 5, 45 and
300 s) one scripted emulator and one operator (`--arm-budget` as the profile) run
BENCH_LATENCY_RUNS commands (default 5) at once, each on its own cluster alone in its own
subscription, so every run has the budget to itself. Three rounds, one after the other:
- fresh: the operator has seen no run of those clusters (the SDK runs beside it, on clusters
  of its own in the same emulator);
- with history: the same clusters again, the same operator process;
- just restarted: every operator restarted, then the same clusters again: what it knows of
  durations comes from status.history.

"ARM end -> recorded" is the command's finishedAt in ARM to when a client listing RunCommands
every 0.2 s first saw its final state (for the SDK: to when its poller returned). Requests per
run are the runCommand POST and the commandResults GETs the emulator answered for that command.
A round lasts about as long as the longest command: with the defaults, about 16 minutes in all.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes

from benchmarks import plots
from benchmarks.fleet import management_plane
from benchmarks.peer import CLUSTER, run_command
from tests.kube import kubectl
from tests.stack import (
    RESOURCE_GROUP,
    Emulator,
    Operator,
    cluster_entry,
    emulator_config,
    running_emulator,
)

ROUNDS = ("fresh", "history", "restarted")
HEADINGS = {"sdk": "az way (SDK, 5 s)", "fresh": "fresh operator", "history": "with history",
            "restarted": "just restarted"}  # fmt: skip


@dataclass
class Sample:
    late: float  # ARM's finishedAt to recorded
    requests: int  # the POST and the commandResults GETs


@dataclass
class Lane:
    """One profile and command length: an emulator, an operator, and clusters alone in their
    subscriptions (the operator's first, then the SDK's)."""

    profile: str
    seconds: float
    runs: int
    emulator: Emulator
    operator: Operator
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return f"latency-{self.profile}-{self.seconds:.0f}"

    def name(self, round_name: str, run: int) -> str:
        return f"{self.namespace}-{round_name}-{run}"


def subscription(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-00000000a7e1"


def requests_of(emulator: Emulator) -> dict[str, int]:
    """commandId -> the POST plus the polls the emulator answered for it."""
    return {s["commandId"]: 1 + int(s["polls"]) for s in emulator.submissions()}


def start_lane(
    stack: ExitStack, work: Path, kubeconfig: Path, kubectl_path: str, profile: str,
    seconds: float, runs: int,
) -> Lane:  # fmt: skip
    clusters = [
        cluster_entry(CLUSTER, Path("/nonexistent"), subscriptionId=subscription(number))
        for number in range(1, 2 * runs + 1)
    ]
    config = emulator_config(
        clusters,
        mode="scripted",
        scripted={"exitCode": 0, "logs": "ok\n", "durationSeconds": seconds},
        throttle={"profile": profile},
    )
    directory = work / f"{profile}-{seconds:.0f}"
    emulator = stack.enter_context(running_emulator(config, directory / "emulator"))
    lane = Lane(profile, seconds, runs, emulator,
                Operator(kubeconfig, emulator, directory / "operator", verbose=False))  # fmt: skip
    kubectl(kubectl_path, kubeconfig, "create", "namespace", lane.namespace)
    lane.operator.args = ("--namespace", lane.namespace, "--arm-budget", profile)
    lane.operator.start()
    stack.callback(lane.operator.stop)
    return lane


class Recorder:
    """When each RunCommand was first seen final: a client listing them all every 0.2 s (one
    request, through the kubernetes client: no process to start, nothing to reconnect)."""

    def __init__(self, kubeconfig: Path) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            str(kubeconfig), client_configuration=configuration
        )
        self._api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(configuration))
        self.final: dict[str, float] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopped.wait(0.2):
            try:
                listed: Any = self._api.list_cluster_custom_object(
                    "aks.gitops.dev", "v1alpha1", "runcommands", _request_timeout=10
                )
            except Exception:  # a loaded API server: look again
                continue
            now = time.time()
            for item in listed["items"]:
                name, status = item["metadata"]["name"], item.get("status") or {}
                self.statuses[name] = status
                if status.get("state") in ("Succeeded", "Failed", "Unknown"):
                    self.final.setdefault(name, now)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(15)


def run_round(lanes: list[Lane], round_name: str, kubeconfig: Path, kubectl_path: str) -> None:
    """One RunCommand per cluster of every lane, all at once; waits for all of them."""
    recorder = Recorder(kubeconfig)
    names = [lane.name(round_name, run) for lane in lanes for run in range(lane.runs)]
    try:
        items = [
            {
                "apiVersion": "aks.gitops.dev/v1alpha1",
                "kind": "RunCommand",
                "metadata": {"name": lane.name(round_name, run), "namespace": lane.namespace},
                "spec": {
                    "cluster": {
                        "subscriptionId": subscription(run + 1),
                        "resourceGroup": RESOURCE_GROUP,
                        "name": CLUSTER,
                    },
                    "command": f"echo {round_name} {run}",
                },
            }
            for lane in lanes
            for run in range(lane.runs)
        ]
        kubectl(kubectl_path, kubeconfig, "apply", "-f", "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))  # fmt: skip
        deadline = time.monotonic() + max(lane.seconds for lane in lanes) + 300
        while time.monotonic() < deadline and any(name not in recorder.final for name in names):
            time.sleep(1)
    finally:
        recorder.stop()
    for lane in lanes:
        requests = requests_of(lane.emulator)
        samples = lane.samples.setdefault(round_name, [])
        for run in range(lane.runs):
            name = lane.name(round_name, run)
            status = recorder.statuses.get(name, {})
            if status.get("state") != "Succeeded" or name not in recorder.final:
                print(f"  {name}: not recorded as Succeeded ({status.get('reason')})")
                continue
            late = recorder.final[name] - epoch(status["finishedAt"])
            samples.append(Sample(late, requests.get(status["commandId"], 0)))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def sdk_run(lane: Lane, run: int) -> Sample:
    number = lane.runs + run + 1  # the SDK's own clusters, after the operator's
    result = run_command(lane.emulator, f"echo sdk {run}", subscription(number), CLUSTER,
                         wait=lane.seconds + 300)  # fmt: skip
    returned = time.time()
    finished = result.finished_at
    assert finished is not None and result.id is not None
    return Sample(returned - finished.timestamp(), requests_of(lane.emulator)[result.id])


def cell(samples: list[Sample]) -> str:
    if not samples:
        return "n/a"
    lates = sorted(sample.late for sample in samples)
    p50, p95 = lates[len(lates) // 2], lates[min(len(lates) - 1, int(len(lates) * 0.95))]
    requests = sum(sample.requests for sample in samples) / len(samples)
    return f"{p50:.1f} / {p95:.1f} s, {requests:.1f} req"


def bench_latency(lengths: list[float], runs: int, profiles: list[str]) -> None:
    kubectl_path = str(Path(sys.executable).parent / "kubectl")
    started = time.monotonic()
    with ExitStack() as stack:
        work, mgmt = management_plane(stack, "aks-rc-latency-", kubectl_path)
        lanes = [
            start_lane(stack, work, mgmt, kubectl_path, profile, seconds, runs)
            for profile in profiles
            for seconds in lengths
        ]
        with ThreadPoolExecutor(max(1, len(lanes) * runs)) as pool:
            sdk: list[tuple[Lane, Future[Sample]]] = [
                (lane, pool.submit(sdk_run, lane, run)) for lane in lanes for run in range(runs)
            ]
            run_round(lanes, "fresh", mgmt, kubectl_path)
            for lane, future in sdk:
                try:
                    lane.samples.setdefault("sdk", []).append(future.result())
                except Exception as error:  # an invocation that failed is said, not hidden
                    print(f"  SDK run on {lane.namespace} failed: {type(error).__name__}")
        run_round(lanes, "history", mgmt, kubectl_path)
        for lane in lanes:
            lane.operator.stop()
            lane.operator.start()
        run_round(lanes, "restarted", mgmt, kubectl_path)
    print(
        f"single-run latency: ARM end -> recorded, p50 / p95, and requests per run (POST + "
        f"polls); {runs} runs per cell, each alone in its subscription; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    columns = ["sdk", *ROUNDS]
    print(f"  {'profile, command':<18}" + "".join(f"{HEADINGS[c]:>26}" for c in columns))
    for lane in lanes:
        label = f"{lane.profile}, {lane.seconds:.0f} s"
        cells = [cell(lane.samples.get(column, [])) for column in columns]
        print(f"  {label:<18}" + "".join(f"{text:>26}" for text in cells))
    plots.spread(
        "latency",
        f"single runs: ARM's end to recorded, {runs} runs per cell, each alone in its subscription",
        {
            f"{lane.profile}, {lane.seconds:.0f} s": {
                HEADINGS[column]: [sample.late for sample in lane.samples.get(column, [])]
                for column in columns
            }
            for lane in lanes
        },
        "seconds from ARM's end to recorded",
    )
