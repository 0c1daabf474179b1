"""RunCommandSchedules end to end on real parts: the operator creates one child per tick, each
submitted once to the emulator's ARM and run through real kubectl on the target API server;
after a SIGKILL across a tick only the latest missed tick starts; Forbid skips a tick and says
so; `kubectl runcommand trigger` runs one now; history limits hold; and the API server refuses
Replace and CRON_TZ= at apply.

Ticks are real minutes, so these tests take minutes: they wait for what they observe (a child,
a status count, an event), never for a fixed time, except the 90 s the operator stays down.
Two schedules tick side by side from one fixture, so their minutes overlap."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import kubectl, kubectl_json
from tests.operator.conftest import _namespaces
from tests.operator.test_plugin_e2e import plugin_runner
from tests.stack import RESOURCE_GROUP, SUBSCRIPTION_ID, Emulator, Operator

pytestmark = pytest.mark.usefixtures("operator")
CLUSTER = {"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": RESOURCE_GROUP, "name": "aks-target"}
LABEL = "aks.gitops.dev/runcommandschedule"
TICK_WAIT = 200.0  # a tick is at most 60 s away; a run takes a few seconds more


@dataclass
class Schedules:
    kubectl_path: str
    cluster: ControlPlane
    namespace: str
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # every child ever listed

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return kubectl(
            self.kubectl_path, self.cluster.kubeconfig, "-n", self.namespace, *args,
            stdin=stdin, check=check,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        return kubectl_json(self.kubectl_path, self.cluster.kubeconfig, "-n", self.namespace, *args)

    def apply(self, name: str, spec: dict[str, Any], check: bool = True) -> Any:
        body = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommandSchedule",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        return self.kubectl("apply", "-f", "-", stdin=json.dumps(body), check=check)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.json("get", "runcommandschedule", name).get("status") or {})

    def children(self, name: str) -> dict[str, dict[str, Any]]:
        listed = self.json("get", "runcommands", "-l", f"{LABEL}={name}")["items"]
        found = {c["metadata"]["name"]: c for c in listed}
        self.seen.update(found)
        return found

    def events(self, name: str, reason: str) -> list[str]:
        listed = self.json("get", "events", "--field-selector", f"involvedObject.name={name}")
        return [e["message"] for e in listed["items"] if e["reason"] == reason]

    def wait_for(
        self, what: str, done: Callable[[], Any], timeout: float = TICK_WAIT, every: float = 1.0
    ) -> Any:
        return poll_until(done, bool, what=f"{self.namespace}: {what}", timeout=timeout,
                          interval=every)  # fmt: skip


def run_spec(command: str, **extra: Any) -> dict[str, Any]:
    return {
        "schedule": "* * * * *",
        "runCommandTemplate": {"cluster": CLUSTER, "command": command},
        **extra,
    }


def tick_of(child: dict[str, Any]) -> int:
    """The child's tick in unix minutes, from its name, checked against its label."""
    minutes = int(child["metadata"]["name"].rsplit("-", 1)[1])
    assert child["metadata"]["labels"]["aks.gitops.dev/scheduled-minute"] == str(minutes)
    scheduled = child["metadata"]["annotations"]["aks.gitops.dev/scheduled-time"]
    assert datetime.fromisoformat(scheduled) == datetime.fromtimestamp(minutes * 60, UTC)
    return minutes


def started_for(emulator: Emulator, child: dict[str, Any]) -> int:
    command_id = child["status"]["commandId"]
    return sum(1 for post in emulator.started_posts() if post["commandId"] == command_id)


def new_namespace(management_cluster: ControlPlane, kubectl_path: str) -> str:
    name = f"sched-{next(_namespaces)}-{uuid.uuid4().hex[:6]}"  # not the shared e2e-N names
    kubectl(kubectl_path, management_cluster.kubeconfig, "create", "namespace", name)
    return name


def new_schedules(management_cluster: ControlPlane, kubectl_path: str) -> Schedules:
    return Schedules(
        kubectl_path, management_cluster, new_namespace(management_cluster, kubectl_path)
    )


@pytest.fixture(scope="module")
def ticking(
    management_cluster: ControlPlane, kubectl_path: str, operator: Operator
) -> Iterator[Schedules]:
    """Two schedules applied at once: every minute (history limit 1), and Forbid over a 90 s
    command."""
    schedules = new_schedules(management_cluster, kubectl_path)
    ns = schedules.namespace
    schedules.apply("every-minute", run_spec(f"sleep 5; echo {ns}", successfulRunsHistoryLimit=1))
    schedules.apply("forbid", run_spec(f"sleep 90; echo {ns} forbid", concurrencyPolicy="Forbid"))
    yield schedules
    schedules.kubectl("delete", "runcommandschedules", "--all", "--wait=false")


def test_every_minute_makes_one_child_per_tick_each_submitted_once(
    ticking: Schedules, emulator: Emulator
) -> None:
    started = time.monotonic()

    def second_run_done() -> bool:
        ticking.children("every-minute")
        last = ticking.status("every-minute").get("lastRun") or {}
        newest = max(ticking.seen, key=lambda n: tick_of(ticking.seen[n]), default=None)
        return (
            len(ticking.seen) >= 2
            and last.get("name") == newest
            and (last.get("state") == "Succeeded")
        )

    # Two ticks within 2 min 10 s of the apply, plus the run and the stack's own pace.
    ticking.wait_for("two ticks of every-minute", second_run_done, timeout=2 * 60 + 10 + 30)
    elapsed = time.monotonic() - started
    ticks = sorted(tick_of(child) for child in ticking.seen.values())
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # one child per minute
    runs = [
        s for s in emulator.submissions() if s["command"] == f"sleep 5; echo {ticking.namespace}"
    ]
    assert len(runs) == len(ticks)  # each tick ran once
    for child in ticking.children("every-minute").values():
        owner = child["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "RunCommandSchedule" and owner["controller"] is True
        if (child.get("status") or {}).get("commandId"):
            assert started_for(emulator, child) == 1  # one POST started it
    assert len({r["commandId"] for r in runs}) == len(runs)
    status = ticking.status("every-minute")
    assert status["missedTicks"] == 0 and status["skippedTicks"] == 0
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True"} and status["state"] == "Succeeded"
    assert status["lastScheduleTime"] == datetime.fromtimestamp(ticks[-1] * 60, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    header, row = ticking.kubectl("get", "rcsched", "every-minute").stdout.splitlines()
    assert header.split() == ["NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST", "NEXT", "AGE"]
    assert row.split()[1:7] == ["*", "*", "*", "*", "*", "false"]
    print(f"\nschedule e2e: two ticks observed {elapsed:.0f}s after apply")


def test_history_limits_hold(ticking: Schedules) -> None:
    """successfulRunsHistoryLimit 1: once a newer run has succeeded, the older child goes (its
    output ConfigMap is owned by it, so the garbage collector takes it along)."""

    def one_finished_child_left() -> bool:
        children = ticking.children("every-minute")
        finished = [c for c in children.values() if (c.get("status") or {}).get("state") in
                    ("Succeeded", "Failed")]  # fmt: skip
        return len(ticking.seen) >= 2 and len(finished) == 1

    ticking.wait_for("the older child's deletion", one_finished_child_left, timeout=90)
    gone = sorted(set(ticking.seen) - set(ticking.children("every-minute")))
    assert gone, "no child was deleted"
    assert ticking.events("every-minute", "RunDeleted")
    oldest = ticking.seen[gone[0]]
    logs_ref = oldest["status"]["logsRef"]
    # Its output ConfigMap, owned by it, goes with it: the garbage collector runs in the stack.
    ticking.wait_for(
        "the deleted child's output collected",
        lambda: ticking.kubectl("get", "configmap", logs_ref["name"], check=False).returncode != 0,
        timeout=120,
    )


def test_forbid_skips_the_next_tick_and_says_so(ticking: Schedules, emulator: Emulator) -> None:
    status = ticking.wait_for(
        "a tick skipped by Forbid",
        lambda: (s := ticking.status("forbid")).get("skippedTicks", 0) >= 1 and s,
    )
    (running,) = ticking.children("forbid").values()  # the 90 s run, and nothing beside it
    assert status["active"] == 1 and status["activeRuns"] == [running["metadata"]["name"]]
    (said,) = ticking.events("forbid", "RunAlreadyActive")
    assert "concurrencyPolicy is Forbid" in said and running["metadata"]["name"] in said
    skipped = status["lastTickTime"]
    ticking.wait_for(
        "the 90 s run's end",
        lambda: ticking.status("forbid").get("lastRun", {}).get("state") == "Succeeded",
        timeout=120,
    )
    names = set(ticking.children("forbid"))
    skipped_minute = int(datetime.fromisoformat(skipped).timestamp()) // 60
    assert f"forbid-{skipped_minute}" not in names  # skipped stays skipped: never started late
    runs = [
        s for s in emulator.submissions() if s["command"].endswith(f"{ticking.namespace} forbid")
    ]
    assert len(runs) == len(names)


def test_replace_and_cron_tz_are_refused_at_apply(
    management_cluster: ControlPlane, kubectl_path: str
) -> None:
    schedules = new_schedules(management_cluster, kubectl_path)
    refused = {
        "replace": (run_spec("true", concurrencyPolicy="Replace"), "ARM has no cancel"),
        "cron-tz": (run_spec("true", schedule="CRON_TZ=Europe/Berlin 0 3 * * *"), "CRON_TZ="),
        "tz": (run_spec("true", schedule="TZ=UTC 0 3 * * *"), "CRON_TZ= or TZ= prefix"),
        "seconds": (run_spec("true", schedule="0 0 3 * * *"), "five cron fields"),
        "zone": (run_spec("true", timeZone="Mars/Olympus"), "IANA time zone"),
        "both": (
            {
                **run_spec("true"),
                "runCommandSetTemplate": {"template": {"command": "true"}, "clusters": [CLUSTER]},
            },
            "exactly one of",
        ),
    }
    for name, (spec, says) in refused.items():
        result = schedules.apply(name, spec, check=False)
        assert result.returncode != 0 and says in result.stderr, (name, result.stderr)
    assert schedules.json("get", "runcommandschedules")["items"] == []
    accepted = schedules.apply("fine", run_spec("true", schedule="@daily", timeZone="Asia/Tokyo"))
    assert accepted.returncode == 0


def test_schedule_and_trigger_from_the_plugin_run_now(
    management_cluster: ControlPlane, kubectl_path: str
) -> None:
    schedules = new_schedules(management_cluster, kubectl_path)
    plugin = plugin_runner(kubectl_path, management_cluster.kubeconfig, schedules.namespace)
    target = f"{SUBSCRIPTION_ID}/{RESOURCE_GROUP}/aks-target"
    made = plugin("schedule", "yearly", "--cron", "0 0 1 1 *", "--tz", "Europe/Berlin",
                  "--cluster", target, "--", "echo", "by", "hand")  # fmt: skip
    assert made.returncode == 0, made.stderr
    spec = schedules.json("get", "runcommandschedule", "yearly")["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("0 0 1 1 *", "Europe/Berlin")
    assert spec["runCommandTemplate"]["command"] == "echo by hand"
    bad = plugin("schedule", "bad", "--cron", "* * * * *", "--tz", "Nowhere/Land",
                 "--cluster", target, "--", "true")  # fmt: skip
    assert bad.returncode == 2 and "IANA" in bad.stderr

    triggered = plugin("trigger", "yearly")
    assert triggered.returncode == 0, triggered.stderr
    child = triggered.stdout.strip().split("/")[1].split()[0]
    assert child.startswith("yearly-m") and not child.rsplit("-", 1)[1].isdigit()
    last = schedules.wait_for(
        "the triggered run",
        lambda: (s := schedules.status("yearly").get("lastRun") or {}).get("name") == child and s,
        timeout=60,
    )
    assert last["state"] == "Succeeded" and last["exitCode"] == 0
    status = schedules.status("yearly")
    assert "lastScheduleTime" not in status  # no tick has started anything
    assert status["nextScheduleTime"].startswith(f"{datetime.now(UTC).year}-12-31T23:00:00")


@pytest.mark.timeout(480)  # up to a minute to the first tick, 50 s to the kill, 90 s down
def test_a_sigkill_across_a_tick_and_a_restart_90s_later_start_the_latest_missed_tick_once(
    management_cluster: ControlPlane, kubectl_path: str, operator: Operator, emulator: Emulator
) -> None:
    schedules = new_schedules(management_cluster, kubectl_path)
    command = f"echo {schedules.namespace} survivor"
    schedules.apply("survivor", run_spec(command, startingDeadlineSeconds=60))
    first = schedules.wait_for("the first tick", lambda: schedules.children("survivor"))
    (first_tick,) = (tick_of(child) for child in first.values())
    # Down from 10 s before the next tick until 90 s later: two ticks pass while it is down.
    kill_at = (first_tick + 1) * 60 - 10
    time.sleep(max(0.0, kill_at - time.time()))
    operator.kill()
    killed = time.time()
    try:
        time.sleep(max(0.0, killed + 90 - time.time()))
    finally:
        operator.start()
    assert int(time.time()) // 60 == first_tick + 2  # two ticks passed while it was down

    def restarted_run_done() -> dict[str, Any] | None:
        later = [c for c in schedules.children("survivor").values() if tick_of(c) > first_tick]
        earliest = min(later, key=tick_of, default=None)
        done = earliest is not None and (earliest.get("status") or {}).get("state") == "Succeeded"
        return earliest if done else None

    child = schedules.wait_for("the run after the restart", restarted_run_done, timeout=120)
    tick = tick_of(child)
    created = datetime.fromisoformat(child["metadata"]["creationTimestamp"])
    # The latest tick at the operator's first look: first_tick + 2, the second tick it was down
    # for, unless a loaded machine held the first look past the next minute.
    assert tick == int(created.timestamp()) // 60 and tick >= first_tick + 2
    assert created - datetime.fromtimestamp(tick * 60, UTC) <= timedelta(seconds=60)  # deadline
    children = schedules.children("survivor")
    up_to = {name for name, c in children.items() if tick_of(c) <= tick}  # later ticks are new
    assert up_to == {f"survivor-{first_tick}", f"survivor-{tick}"}  # never two
    assert started_for(emulator, child) == 1
    assert started_for(emulator, children[f"survivor-{first_tick}"]) == 1
    runs = [s for s in emulator.submissions() if s["command"] == command]
    assert len(runs) <= len(children)  # each child at most once, nothing for the missed tick
    status = schedules.status("survivor")
    assert status["missedTicks"] == tick - first_tick - 1  # counted, not started
    if len(children) == 2:  # no later tick yet
        assert status["lastScheduleTime"] == datetime.fromtimestamp(tick * 60, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    (missed,) = schedules.events("survivor", "MissedSchedule")
    assert f"{tick - first_tick - 1} earlier tick(s)" in missed
    late = (created - datetime.fromtimestamp(tick * 60, UTC)).total_seconds()
    print(f"\nschedule e2e: after the restart, the tick {tick - first_tick} minutes after the "
          f"first started {late:.0f}s late; {tick - first_tick - 1} counted as missed")  # fmt: skip


def test_admission_and_the_operator_apply_runcommandpolicy_to_a_schedules_template(
    management_cluster: ControlPlane, kubectl_path: str, emulator: Emulator
) -> None:
    """The chart's ValidatingAdmissionPolicy checks a schedule's template at apply time; with
    the binding removed, a schedule that targets a forbidden cluster is admitted, and its
    child, an ordinary RunCommand, is refused by the operator before anything is sent."""
    from tests.operator.test_policy_e2e import POLICY_CRD, TEAM_LABEL, admission_policy

    schedules = new_schedules(management_cluster, kubectl_path)
    team = f"sched-{schedules.namespace}"
    schedules.kubectl("label", "namespace", schedules.namespace, f"{TEAM_LABEL}={team}")
    policy = {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandPolicy",
        "metadata": {"name": team},
        "spec": {
            "namespaceSelector": {"matchLabels": {TEAM_LABEL: team}},
            "clusters": [{"subscriptionId": SUBSCRIPTION_ID, "resourceGroup": "*", "name": "*"}],
            "allowSecretFiles": False,
        },
    }
    vap = admission_policy()
    schedules.kubectl("apply", "--server-side", "-f", str(POLICY_CRD))
    schedules.kubectl("wait", "--for=condition=Established",
                      "crd/runcommandpolicies.aks.gitops.dev")  # fmt: skip
    schedules.kubectl("apply", "-f", "-", stdin=json.dumps(policy))
    schedules.kubectl("apply", "-f", "-", stdin=vap)
    elsewhere = {**CLUSTER, "subscriptionId": "99999999-0000-0000-0000-000000000009"}
    try:
        far = run_spec("true", schedule="@yearly")
        far["runCommandTemplate"]["cluster"] = elsewhere
        secret_files = run_spec("true", schedule="@yearly")
        secret_files["runCommandTemplate"]["filesFrom"] = [{"secretRef": {"name": "s"}}]
        body = json.dumps({"apiVersion": "aks.gitops.dev/v1alpha1", "kind": "RunCommandSchedule",
                           "metadata": {"name": "probe"}, "spec": far})  # fmt: skip

        def refused_on_a_dry_run() -> bool:
            dry = ("create", "--dry-run=server", "-f", "-")
            return bool(schedules.kubectl(*dry, stdin=body, check=False).returncode)

        # The policy takes a moment to be enforced; a dry run creates nothing meanwhile.
        schedules.wait_for("the admission policy in force", refused_on_a_dry_run, timeout=30)
        for name, spec, says in (
            ("elsewhere", far, "rule spec.clusters does not allow"),
            ("secret-files", secret_files, "rule spec.allowSecretFiles is false"),
        ):
            refused = schedules.apply(name, spec, check=False)
            assert refused.returncode != 0, name
            assert says in refused.stderr and "ValidatingAdmissionPolicy" in refused.stderr
        schedules.apply("allowed", run_spec("true", schedule="@yearly"))

        schedules.kubectl("delete", "validatingadmissionpolicybinding",
                          "policy-e2e-aks-runcommand-operator")  # fmt: skip
        schedules.wait_for(
            "the schedule admitted without the binding",
            lambda: schedules.apply("elsewhere", far, check=False).returncode == 0,
            timeout=30,
        )
        plugin = plugin_runner(kubectl_path, management_cluster.kubeconfig, schedules.namespace)
        triggered = plugin("trigger", "elsewhere")
        assert triggered.returncode == 0, triggered.stderr
        child = triggered.stdout.strip().split("/")[1].split()[0]
        last = schedules.wait_for(
            "the child refused by the operator",
            lambda: (
                (s := schedules.status("elsewhere").get("lastRun") or {}).get("name") == child and s
            ),
            timeout=60,
        )
        assert (last["state"], last["reason"]) == ("Failed", "PolicyDenied")
        assert f"RunCommandPolicy {team} rule spec.clusters" in last["message"]
        conditions = schedules.status("elsewhere")["conditions"]
        assert {c["type"]: c["status"] for c in conditions} == {"Ready": "False", "Stalled": "True"}
        assert not [p for p in emulator.posts() if "99999999-0000" in p["cluster"]]
    finally:
        schedules.kubectl("delete", "--ignore-not-found", "-f", "-", stdin=vap)
        schedules.kubectl("delete", "--ignore-not-found", "-f", "-", stdin=json.dumps(policy))


def test_a_schedule_over_a_set_ticks_a_set_that_keeps_its_rollout_bounds(
    management_cluster: ControlPlane, kubectl_path: str, emulator: Emulator
) -> None:
    from tests.operator.conftest import FLEET_GROUP
    from tests.operator.test_fleet_e2e import most_at_once

    schedules = new_schedules(management_cluster, kubectl_path)
    command = f"sleep 1; echo {schedules.namespace} fleet"
    clusters = [
        {**CLUSTER, "resourceGroup": FLEET_GROUP, "name": n} for n in ("fleet-a", "fleet-b")
    ]
    template = {"template": {"command": command}, "clusters": clusters, "maxConcurrency": 1}
    schedules.apply("fleet", {"schedule": "@yearly", "runCommandSetTemplate": template})
    plugin = plugin_runner(kubectl_path, management_cluster.kubeconfig, schedules.namespace)
    triggered = plugin("trigger", "fleet")
    assert triggered.returncode == 0, triggered.stderr
    assert triggered.stdout.startswith("runcommandset/fleet-m")
    last = schedules.wait_for(
        "the set's round",
        lambda: (
            (s := schedules.status("fleet").get("lastRun") or {}).get("state") == "Succeeded" and s
        ),
        timeout=90,
    )
    assert last["kind"] == "RunCommandSet"
    runs = [s for s in emulator.submissions() if s["command"] == command]
    assert len(runs) == 2 and most_at_once(runs) == 1  # one per cluster, one at a time
    assert (
        len({p["commandId"] for p in emulator.started_posts()} & {r["commandId"] for r in runs})
        == 2
    )
