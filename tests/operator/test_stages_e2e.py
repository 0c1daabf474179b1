"""Staged RunCommandSet rollouts end to end (issue 19): six tagged clusters in the emulator, a
canary stage of one and a prod stage of five behind an approval, two at a time. What ran and
when comes from the emulator's own records (its POST log and command timeline), what the set
says from its status and events, and approvals go through the real plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.kube import kubectl, kubectl_json
from tests.operator.test_fleet_e2e import Sets, cluster_name, most_at_once, runs_of, sets  # noqa: F401
from tests.operator.test_plugin_e2e import plugin  # noqa: F401
from tests.stack import SUBSCRIPTION_ID, Emulator, Operator, cluster_entry

pytestmark = pytest.mark.usefixtures("operator")
SOAK_SECONDS = 5


@pytest.fixture
def six(emulator: Emulator, target_cluster: ControlPlane, namespace: str) -> Iterator[list[str]]:
    """One canary and five prod clusters, tagged for this test only."""
    names = [f"canary-{namespace}", *(f"prod{i}-{namespace}" for i in range(5))]
    entries = [
        cluster_entry(name, target_cluster.kubeconfig,
                      tags={"stages": namespace, "ring": name.split("-")[0].rstrip("0123456789")})
        for name in names
    ]  # fmt: skip
    for entry in entries:
        emulator.add_cluster(entry)
    yield names
    for entry in entries:
        emulator.remove_cluster(entry)


@dataclass
class Rollout:
    """What a staged-rollout test works with: the sets, the plugin, the emulator and the six."""

    sets: Sets
    plugin: Any
    emulator: Emulator
    namespace: str
    six: list[str]


@pytest.fixture
def rollout(
    sets: Sets,  # noqa: F811
    plugin: Any,  # noqa: F811
    emulator: Emulator,
    namespace: str,
    six: list[str],
) -> Rollout:
    return Rollout(sets, plugin, emulator, namespace, six)


def staged(namespace: str, command: str, soak: int = SOAK_SECONDS, **extra: Any) -> dict[str, Any]:
    return {
        "template": {"command": command},
        "clusterSelector": {"subscriptions": [SUBSCRIPTION_ID], "matchTags": {"stages": namespace}},
        "stages": [
            {"name": "canary", "matchTags": {"ring": "canary"}, "soakSeconds": soak},
            {"name": "prod", "approval": "Required", "maxConcurrency": 2},
        ],
        **extra,
    }


def posts_for(emulator: Emulator, names: list[str]) -> list[dict[str, Any]]:
    return [p for p in emulator.started_posts() if cluster_name(str(p["cluster"])) in names]


def stage(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status.get("stages") or () if s["name"] == name)


def event_reasons(kubectl_path: str, kubeconfig: Any, namespace: str, name: str) -> list[str]:
    about = f"involvedObject.kind=RunCommandSet,involvedObject.name={name}"
    listed = kubectl_json(kubectl_path, kubeconfig, "-n", namespace, "get", "events",
                          "--field-selector", about)  # fmt: skip
    return [str(e["reason"]) for e in listed["items"]]


def waiting(status: dict[str, Any]) -> bool:
    return status.get("state") == "WaitingForApproval"


def gate_holds(rollout: Rollout, name: str, still: Callable[[dict[str, Any]], bool]) -> None:
    """Nothing more starts while the gate is shut, shown at a moment the operator provably
    looked again instead of after a wait: an approval of another round changes the spec, so the
    operator plans the set again (kopf hands it one set's events in order), and it writes that
    generation into status only after the children that look starts (controller/fleet.py
    writes children first). By then no cluster past the canary is started, none more POSTed."""
    sets_, emulator, namespace, six = rollout.sets, rollout.emulator, rollout.namespace, rollout.six
    posted = len(posts_for(emulator, six))
    body = sets_.get(namespace, name)
    other_round = {"stage": "prod", "roundKey": f"not-{body['status']['roundKey']}"}
    approvals = {"spec": {"approvals": [*(body["spec"].get("approvals") or ()), other_round]}}
    patch = ("patch", "runcommandset", name, "--type=merge", "-p", json.dumps(approvals))
    patched = kubectl_json(sets_.kubectl_path, sets_.kubeconfig, "-n", namespace, *patch)
    generation = patched["metadata"]["generation"]
    status = sets_.wait_for(namespace, name, lambda s: s.get("observedGeneration") == generation)
    assert still(status), status
    started = [
        child["metadata"]["name"]
        for child in sets_.children(namespace, name)
        if not child["spec"].get("suspend")
        and cluster_name(child["spec"]["cluster"]["resourceId"]) != six[0]
    ]
    assert not started, f"started while the gate was shut: {started}"
    assert len(posts_for(emulator, six)) == posted, "a cluster was POSTed while the gate was shut"


def test_canary_then_prod_behind_an_approval_two_at_a_time_and_the_next_round_asks_again(
    rollout: Rollout, management_cluster: ControlPlane, kubectl_path: str
) -> None:
    sets_, cli, emulator = rollout.sets, rollout.plugin, rollout.emulator
    namespace, six = rollout.namespace, rollout.six
    command = f"sleep 2; echo {namespace}"
    sets_.apply(namespace, "staged", staged(namespace, command))
    status = sets_.wait_for(namespace, "staged", waiting, timeout=120)
    assert stage(status, "canary")["state"] == "Succeeded" and status["stage"] == "prod"
    assert "stage prod waits for approval" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Reconciling"] == "True"
    canary_posts = posts_for(emulator, six)
    assert [cluster_name(str(p["cluster"])) for p in canary_posts] == [six[0]]
    gate_holds(rollout, "staged", waiting)
    shown = cli("status", "staged")
    assert shown.returncode == 0 and "WaitingForApproval" in shown.stdout, shown
    listed = kubectl(kubectl_path, management_cluster.kubeconfig, "-n", namespace, "get",
                     "runcmdset", "staged").stdout.splitlines()  # fmt: skip
    header, row = listed[0].split(), listed[1].split()
    assert (
        row[header.index("STAGE")] == "prod" and row[header.index("STATE")] == "WaitingForApproval"
    )

    approved = cli("approve", "staged", "--stage", "prod")
    assert approved.returncode == 0, approved.stderr
    status = sets_.wait_for(namespace, "staged", lambda s: s.get("state") == "Succeeded", 180)
    assert [s["state"] for s in status["stages"]] == ["Succeeded", "Succeeded"]
    runs = runs_of(emulator, command)
    assert sorted(cluster_name(r["clusterId"]) for r in runs) == sorted(six)  # each once
    assert len(posts_for(emulator, six)) == 6
    canary = next(r for r in runs if cluster_name(r["clusterId"]) == six[0])
    prod = [r for r in runs if r is not canary]
    assert most_at_once(prod) <= 2
    soaked = datetime.fromisoformat(canary["finishedAt"]) + timedelta(seconds=SOAK_SECONDS)
    assert min(datetime.fromisoformat(r["startedAt"]) for r in prod) >= soaked
    reasons = event_reasons(kubectl_path, management_cluster.kubeconfig, namespace, "staged")
    for reason in ("StageStarted", "StageSucceeded", "StageWaitingForApproval", "StageApproved"):
        assert reason in reasons, reasons

    # The approval stays in the spec; a new runToken is a new round, which it does not approve.
    body = sets_.get(namespace, "staged")
    assert body["spec"]["approvals"] == [{"stage": "prod", "roundKey": status["roundKey"]}]
    sets_.apply(namespace, "staged", {**staged(namespace, command), **{
        "runToken": "second", "approvals": body["spec"]["approvals"]}})  # fmt: skip
    status = sets_.wait_for(namespace, "staged", lambda s: s.get("round") == 2 and waiting(s), 120)
    assert status["roundKey"] != body["status"]["roundKey"]
    gate_holds(rollout, "staged", waiting)
    assert len(runs_of(emulator, command)) == 7  # the canary again, no prod cluster


def test_a_failing_canary_stops_the_round_and_prod_never_starts(rollout: Rollout) -> None:
    sets_, emulator, namespace, six = rollout.sets, rollout.emulator, rollout.namespace, rollout.six
    command = f"echo {namespace}; exit 3"
    spec = staged(namespace, command)
    spec["stages"][1].pop("approval")  # not the approval: the failure must hold prod back
    sets_.apply(namespace, "failing", spec)
    status = sets_.wait_for(namespace, "failing", lambda s: s.get("state") == "Failed", 120)
    assert status["reason"] == "StageFailed"
    assert "stage canary failed" in status["message"] and "prod" in status["message"]
    assert stage(status, "prod")["state"] == "Pending"
    gate_holds(rollout, "failing", lambda s: s.get("reason") == "StageFailed")
    assert [cluster_name(r["clusterId"]) for r in runs_of(emulator, command)] == [six[0]]


def test_sigkill_mid_soak_and_while_waiting_runs_nothing_twice_and_keeps_the_gate(
    rollout: Rollout, operator: Operator
) -> None:
    sets_, cli, emulator = rollout.sets, rollout.plugin, rollout.emulator
    namespace, six = rollout.namespace, rollout.six
    command = f"echo {namespace}"
    soak = 20
    sets_.apply(namespace, "killed", staged(namespace, command, soak=soak))
    status = sets_.wait_for(namespace, "killed", lambda s: s.get("reason") == "Soaking", 120)
    soak_ends = stage(status, "canary")["soakEndsAt"]

    operator.kill()  # mid-soak
    operator.start()
    status = sets_.wait_for(namespace, "killed", waiting, timeout=120)
    assert stage(status, "canary")["soakEndsAt"] == soak_ends  # the soak was not restarted
    ends = datetime.fromisoformat(soak_ends.replace("Z", "+00:00"))
    prod_posts = [p for p in posts_for(emulator, six) if cluster_name(str(p["cluster"])) != six[0]]
    assert not prod_posts

    operator.kill()  # while waiting for the approval
    operator.start()
    gate_holds(rollout, "killed", waiting)  # the restarted operator looked, and kept it
    assert cli("approve", "killed", "--stage", "prod").returncode == 0
    status = sets_.wait_for(namespace, "killed", lambda s: s.get("state") == "Succeeded", 180)
    runs = runs_of(emulator, command)
    ran = [cluster_name(r["clusterId"]) for r in runs]
    assert sorted(ran) == sorted(six)  # every cluster once, none twice
    assert len(posts_for(emulator, six)) == 6
    for run in runs:
        if cluster_name(run["clusterId"]) != six[0]:
            assert datetime.fromisoformat(run["startedAt"]) >= ends  # the gate held


def test_invoke_with_stages_and_approve_each_asks_on_the_terminal(
    rollout: Rollout, management_cluster: ControlPlane, kubectl_path: str
) -> None:
    scripts = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    selector = f"sub={SUBSCRIPTION_ID},tag=stages={rollout.namespace}"
    done = subprocess.run(
        [kubectl_path, "runcommand", "invoke", f"--kubeconfig={management_cluster.kubeconfig}",
         "-n", rollout.namespace, "--selector", selector, "--stage", "canary=tag=ring=canary",
         "--stage", "prod", "--approve-each", "--max-concurrency", "2", "--",
         "echo", rollout.namespace],
        input="y\n", capture_output=True, text=True, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stage prod waits for approval: start it now? [y/N]" in done.stderr
    assert "[y/N]" not in done.stdout  # stdout carries only the final table
    assert "stage prod approved for round" in done.stderr
    ran = [
        cluster_name(r["clusterId"]) for r in runs_of(rollout.emulator, f"echo {rollout.namespace}")
    ]
    assert sorted(ran) == sorted(rollout.six)
