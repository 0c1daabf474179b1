"""Sharding the Kubernetes way: operators on one namespace, each watching only what its label
selector (passed to the API server) lets through, submit only their own RunCommands, exactly
once: two keyed shards, then the shard of unlabelled objects the chart deploys beside them."""

from __future__ import annotations

import json
from collections import Counter

from tests.helpers import poll_until
from tests.operator.test_chaos import (  # noqa: F401 - chaos is a fixture
    Chaos,
    chaos,
    cluster_ref,
)

SHARD_LABEL = "sharding.aks.gitops.dev/key"


def test_each_shard_submits_only_its_own_runcommands_exactly_once(chaos: Chaos) -> None:  # noqa: F811
    chaos.operator("shard-a", "--shard-key", "a")
    chaos.operator("shard-b", "--shard-key", "b")
    shards = {f"run-{shard}{i}": shard for shard in "ab" for i in range(3)}
    items = [
        {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {"name": name, "namespace": "chaos", "labels": {SHARD_LABEL: shard}},
            "spec": {"cluster": cluster_ref(), "command": f"echo {name}"},
        }
        for name, shard in shards.items()
    ] + [
        {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {"name": "run-nobody", "namespace": "chaos"},
            "spec": {"cluster": cluster_ref(), "command": "echo run-nobody"},
        }
    ]
    chaos.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": items}))  # fmt: skip

    statuses = poll_until(
        chaos.statuses,
        lambda statuses: all(statuses[name].get("state") == "Succeeded" for name in shards),
        what="every sharded run succeeds",
        timeout=90,
        interval=1,
    )
    for name, shard in shards.items():
        assert statuses[name].get("state") == "Succeeded", (name, statuses[name])
        assert statuses[name].get("claimedBy") == f"shard-{shard}", (name, statuses[name])
    # Neither shard touched the unlabelled RunCommand: no status beyond the CRD's default, no POST.
    assert statuses["run-nobody"] == {"observedGeneration": -1}
    commands = {s["commandId"]: s["command"] for s in chaos.emulator.submissions()}
    posted = Counter(commands[p["commandId"]] for p in chaos.emulator.started_posts())
    assert posted == Counter({f"echo {name}": 1 for name in shards})

    # The shard of unlabelled objects (chart: `shards: [a, b]` deploys it too) picks it up.
    chaos.operator("shard-none", "--watch-label-selector", f"!{SHARD_LABEL}")
    statuses = poll_until(
        chaos.statuses,
        lambda statuses: statuses["run-nobody"].get("state") == "Succeeded",
        what="the unlabelled run succeeds",
        timeout=60,
        interval=1,
    )
    assert statuses["run-nobody"].get("claimedBy") == "shard-none"
    commands = {s["commandId"]: s["command"] for s in chaos.emulator.submissions()}
    posted = Counter(commands[p["commandId"]] for p in chaos.emulator.started_posts())
    assert posted == Counter({f"echo {name}": 1 for name in [*shards, "run-nobody"]})
