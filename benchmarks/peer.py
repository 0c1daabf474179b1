"""The peer: the official SDK used the way `az aks command invoke` uses it, on the same emulator
configuration as the `aks` scenario (scripted runs, `throttle.profile: aks`).

Each command is one "invocation": a fresh credential and client, `managed_clusters.get`, then
`begin_run_command(..., polling_interval=5, retry_total=0).result(300)`. Invocations run on a
thread pool: 16 threads (a CI runner's worth of parallel jobs), and all at once (threads =
commands). Every variant gets a fresh emulator, so its budget starts full.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from azure.identity import ClientSecretCredential
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import RunCommandRequest, RunCommandResult

from benchmarks import plots
from tests.stack import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESOURCE_GROUP,
    SUBSCRIPTION_ID,
    TENANT_ID,
    Emulator,
    cluster_entry,
    emulator_config,
    running_emulator,
)

CLUSTER = "aks-bench"


@dataclass(frozen=True)
class Figures:
    """One run of `count` commands, as the scale benchmarks print them."""

    count: int
    makespan: float
    failures: int
    throttled: int  # 429 answers
    requests: int  # ARM requests

    @classmethod
    def from_stats(
        cls, count: int, makespan: float, failures: int, stats: Mapping[str, int]
    ) -> Figures:
        throttled = sum(v for k, v in stats.items() if k.endswith(" 429"))
        return cls(count, makespan, failures, throttled, sum(stats.values()))

    def cells(self) -> list[str]:
        return [
            f"{self.makespan:.1f} s",
            f"{self.failures} / {self.count}",
            str(self.throttled),
            f"{self.requests / max(self.count, 1):.2f}",
        ]


def invoke(emulator: Emulator, number: int) -> bool:
    """One `az aks command invoke`: True when the command ran and Succeeded."""
    try:
        result = run_command(emulator, f"echo {number}")
        return bool(result.provisioning_state == "Succeeded")
    except Exception:  # any failure of an invocation counts, as a CI job would
        return False


def run_command(
    emulator: Emulator,
    command: str,
    subscription: str = SUBSCRIPTION_ID,
    cluster: str = CLUSTER,
    wait: float = 300,
) -> RunCommandResult:
    """`az aks command invoke` as the SDK does it: a fresh credential and client, the cluster
    read, then the command, polled every 5 s for up to `wait` seconds (the CLI's 300); raises
    what the SDK raises."""
    credential = ClientSecretCredential(
        TENANT_ID,
        CLIENT_ID,
        CLIENT_SECRET,
        authority=emulator.base_url.removeprefix("https://"),
        disable_instance_discovery=True,
        connection_verify=str(emulator.ca_file),
    )
    client = ContainerServiceClient(
        credential,
        subscription,
        base_url=emulator.base_url,
        credential_scopes=[emulator.base_url + "/.default"],
        connection_verify=str(emulator.ca_file),
    )
    try:
        client.managed_clusters.get(RESOURCE_GROUP, cluster)
        poller = client.managed_clusters.begin_run_command(
            RESOURCE_GROUP,
            cluster,
            RunCommandRequest(command=command),
            polling_interval=5,
            retry_total=0,
        )
        return poller.result(wait)
    finally:
        client.close()
        credential.close()


def run_peer(count: int, seconds: float, threads: int, work: Path) -> Figures:
    config = emulator_config(
        [cluster_entry(CLUSTER, Path("/nonexistent"))],
        mode="scripted",
        scripted={"exitCode": 0, "logs": "ok\n", "durationSeconds": seconds},
        throttle={"profile": "aks"},
    )
    with running_emulator(config, work) as emulator:
        start, start_epoch = time.monotonic(), time.time()
        with ThreadPoolExecutor(threads) as pool:
            outcomes = list(pool.map(lambda n: invoke(emulator, n), range(count)))
        makespan = time.monotonic() - start
        accepted = [p for p in emulator.posts() if p["outcome"] == "accepted"]
        variant = "all-at-once" if threads >= count else f"{threads}-threads"
        plots.timeline(
            f"peer-{variant}",
            f"peer: the official SDK as az aks command invoke uses it, {count} commands, {variant}",
            {
                "started (ARM accepted the POST)": [plots.epoch(p["receivedAt"]) for p in accepted],
                "finished in ARM": [plots.epoch(p["answeredAt"]) + seconds for p in accepted],
            },
            start=start_epoch,
        )
        return Figures.from_stats(count, makespan, outcomes.count(False), emulator.stats())


def bench_peer(count: int, seconds: float, operator: Figures | None) -> None:
    print(
        f"peer (official SDK as `az aks command invoke` uses it), profile aks: {count} commands "
        f"of {seconds:.0f}s in one subscription (scripted). Small by default (BENCH_PEER_COUNT) "
        "so it runs on a small machine; each variant has a fresh emulator"
    )
    columns = {}
    with tempfile.TemporaryDirectory(prefix="aks-runcommand-peer-") as work:
        for threads in (16, count):
            figures = run_peer(count, seconds, threads, Path(work) / f"threads-{threads}")
            columns[f"SDK, {threads} threads"] = figures.cells()
    if operator is not None:
        columns["operator (aks scenario)"] = operator.cells()
    labels = ["makespan", "failures / commands", "429 answers", "ARM requests per command"]
    print(f"  {'':<26}" + "".join(f"{name:>26}" for name in columns))
    for row, label in enumerate(labels):
        print(f"  {label:<26}" + "".join(f"{cells[row]:>26}" for cells in columns.values()))
    if operator is None:
        print("  (run with the aks scenario, same count, for the operator's column)")
