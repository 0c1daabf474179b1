"""Staged rollouts (issue 19) in the fleet core: stage membership, gates (end, soak, approval for
this round), failure stopping the round, retries, the progress deadline, restarts; and a
property over random fleets, outcomes, restarts and clocks: no cluster of stage N+1 starts
before stage N ended within its failures, its soak elapsed and its approval was given."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.arm.models import ClusterRef, DiscoveredCluster
from controller.core.set_children import Child, SetObservation
from controller.core.set_round import plan_set
from controller.core.set_spec import SetSpec
from controller.core.spec import InvalidSpec, RunSpec
from controller.vocabulary import STAGE_LABEL, Reason
from tests.helpers import SUBSCRIPTION as SUB
from tests.helpers import examples

START = datetime(2026, 1, 1, 12, 0, 0)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fleet(rings: dict[str, str]) -> list[DiscoveredCluster]:
    return [DiscoveredCluster(ClusterRef(SUB, "rg", n), {"ring": r}) for n, r in rings.items()]


def staged_spec(stages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "template": {"command": "true"},
        "clusterSelector": {"subscriptions": [SUB]},
        "stages": stages,
        **extra,
    }


CANARY_PROD = [
    {"name": "canary", "matchTags": {"ring": "canary"}, "soakSeconds": 60},
    {"name": "prod", "approval": "Required", "maxConcurrency": 2},
]
SIX = {"c0": "canary", **{f"p{i}": "prod" for i in range(5)}}


@dataclass
class World:
    """Children as the API server holds them, and the set's status, driven look by look."""

    raw: dict[str, Any]
    discovered: list[DiscoveredCluster]
    outcome: dict[str, str] = field(default_factory=dict)  # cluster -> final state
    children: dict[str, Child] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    now: datetime = START
    started_at: dict[str, datetime] = field(default_factory=dict)
    ended_at: dict[str, datetime] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    looked: int = 0

    def look(self, *, discover: bool | None = None) -> Any:
        spec = SetSpec.parse(self.raw)
        first = discover if discover is not None else self.looked == 0
        seen = SetObservation(
            "s", spec, self.status, 1, list(self.children.values()),
            self.discovered if first else None, iso(self.now),
        )  # fmt: skip
        self.looked += 1
        decision = plan_set(seen)
        for write in decision.writes:
            old = self.children.get(write.name)
            status = dict(old.status) if old is not None else {}
            child = Child(write.name, dict(write.labels), dict(write.spec), status)
            if child.started and (old is None or not old.started or old.spec != child.spec):
                cluster = ClusterRef.parse(child.spec["cluster"]["resourceId"]).name
                self.started_at[cluster] = self.now
                self.runs[cluster] = self.runs.get(cluster, 0) + 1
                child = Child(child.name, child.labels, child.spec, {})
            self.children[write.name] = child
        self.status = decision.status
        return decision

    def finish_running(self) -> None:
        for name, child in list(self.children.items()):
            if child.started and not child.status:
                cluster = ClusterRef.parse(child.spec["cluster"]["resourceId"]).name
                state = self.outcome.get(cluster, "Succeeded")
                run_hash = RunSpec.parse(child.spec).run_hash
                self.children[name] = Child(
                    name, child.labels, child.spec, {"state": state, "specHash": run_hash}
                )
                self.ended_at[cluster] = self.now

    def approve(self, stage: str, round_key: str | None = None) -> None:
        key = round_key or self.status["roundKey"]
        self.raw = {**self.raw, "approvals": [{"stage": stage, "roundKey": key}]}

    def stage(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status["stages"] if s["name"] == name)


def test_a_cluster_belongs_to_the_first_matching_stage_and_unmatched_ones_are_listed() -> None:
    stages = [
        {"name": "one", "matchTags": {"ring": "a"}},
        {"name": "two", "matchTagExpressions": [{"key": "ring", "operator": "In",
                                                 "values": ["a", "b"]}]},
    ]  # fmt: skip
    world = World(staged_spec(stages), fleet({"x": "a", "y": "b", "z": "c"}))
    decision = world.look()
    labels = {w.cluster.name: w.labels[STAGE_LABEL] for w in decision.writes}
    assert labels == {"x": "one", "y": "two"}
    assert world.status["unmatched"] == [
        {"clusterId": ClusterRef(SUB, "rg", "z").resource_id, "reason": Reason.NO_MATCHING_STAGE}
    ]
    assert world.status["total"] == 2
    world.finish_running()
    world.look()  # no discovery now: the unmatched entry is kept from status
    assert len(world.status["unmatched"]) == 1


def test_canary_then_prod_waits_for_approval_of_this_round_then_two_at_a_time() -> None:
    world = World(staged_spec(CANARY_PROD), fleet(SIX))
    first = world.look()
    assert [w.cluster.name for w in first.writes if not w.spec["suspend"]] == ["c0"]
    assert world.status["stage"] == "canary"
    world.finish_running()
    world.look()
    assert world.stage("canary")["state"] == "Soaking"
    assert world.status["reason"] == Reason.SOAKING
    world.now += timedelta(seconds=59)
    assert world.look().wake_after == pytest.approx(1)
    assert world.stage("prod")["state"] == "Pending"
    world.now += timedelta(seconds=1)
    decision = world.look()
    assert world.status["state"] == "WaitingForApproval"
    assert world.status["reason"] == Reason.WAITING_FOR_APPROVAL
    assert "prod" in world.status["message"] and world.status["stage"] == "prod"
    assert {c["type"]: c["status"] for c in world.status["conditions"]}["Reconciling"] == "True"
    assert [e.reason for e in decision.events][:1] == [Reason.STAGE_SUCCEEDED] or any(
        e.reason == Reason.STAGE_WAITING_FOR_APPROVAL for e in decision.events
    )
    assert not [w for w in decision.writes if not w.spec["suspend"]]

    world.approve("prod")
    decision = world.look()
    assert [w.cluster.name for w in decision.writes if not w.spec["suspend"]] == ["p0", "p1"]
    reasons = [e.reason for e in decision.events]
    assert Reason.STAGE_APPROVED in reasons and Reason.STAGE_STARTED in reasons
    for _ in range(5):
        world.finish_running()
        world.look()
    assert world.status["state"] == "Succeeded"
    assert [s["state"] for s in world.status["stages"]] == ["Succeeded", "Succeeded"]
    assert world.runs == dict.fromkeys(SIX, 1)


def test_an_approval_for_one_round_never_approves_the_next() -> None:
    world = World(staged_spec([{**CANARY_PROD[0], "soakSeconds": 0}, CANARY_PROD[1]]), fleet(SIX))
    world.look()
    world.finish_running()
    world.look()
    world.approve("prod")
    for _ in range(4):
        world.finish_running()
        world.look()
    assert world.status["state"] == "Succeeded"
    world.raw = {**world.raw, "runToken": "next"}  # the approval stays in the spec
    world.looked = 0
    world.look()
    world.finish_running()
    world.look()
    assert world.status["state"] == "WaitingForApproval" and world.status["round"] == 2
    assert sum(world.runs.values()) == 7  # only the canary ran again


def test_a_failing_canary_stops_the_round_and_prod_never_starts() -> None:
    world = World(staged_spec(CANARY_PROD), fleet(SIX), outcome={"c0": "Failed"})
    world.look()
    world.finish_running()
    decision = world.look()
    assert world.status["state"] == "Failed" and world.status["reason"] == Reason.STAGE_FAILED
    assert "canary" in world.status["message"] and "prod" in world.status["message"]
    assert not decision.writes and decision.wake_after is None  # the round is over
    assert world.stage("canary")["state"] == "Failed" and world.stage("prod")["state"] == "Pending"
    assert Reason.STAGE_FAILED in [e.reason for e in decision.events]
    world.raw = {
        **world.raw,
        "approvals": [{"stage": "prod", "roundKey": world.status["roundKey"]}],
    }
    world.now += timedelta(hours=1)
    world.look()
    assert set(world.runs) == {"c0"}  # approved or not, a failed stage ends the round


def test_retry_failed_token_retries_the_failed_stage_and_the_rollout_goes_on() -> None:
    stages = [{"name": "canary", "matchTags": {"ring": "canary"}}, {"name": "prod"}]
    world = World(staged_spec(stages), fleet(SIX), outcome={"c0": "Failed"})
    world.look()
    world.finish_running()
    world.look()
    assert world.status["reason"] == Reason.STAGE_FAILED
    world.outcome = {}
    world.raw = {**world.raw, "retryFailedToken": "1"}
    world.look()
    assert world.stage("canary")["state"] == "Progressing"
    for _ in range(4):
        world.finish_running()
        world.look()
    assert world.status["state"] == "Succeeded"
    assert world.runs == {**dict.fromkeys(SIX, 1), "c0": 2}


def test_the_progress_deadline_fails_the_round_and_still_records_runs_in_flight() -> None:
    world = World(staged_spec(CANARY_PROD, progressDeadlineSeconds=300), fleet(SIX))
    world.look()
    world.now += timedelta(seconds=301)
    decision = world.look()
    assert world.status["state"] == "Failed"
    assert world.status["reason"] == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert decision.status["state"] == "Failed" and world.status["running"] == 1
    world.finish_running()
    world.look()
    assert world.status["succeeded"] == 1 and world.status["reason"] == (
        Reason.PROGRESS_DEADLINE_EXCEEDED
    )
    assert set(world.runs) == {"c0"}

    flat = World(staged_spec([{"name": "all"}], progressDeadlineSeconds=300), fleet({"a": "x"}))
    flat.look()
    flat.now += timedelta(seconds=301)
    flat.look()
    flat.finish_running()  # the last run in flight succeeds after the deadline
    flat.look()
    assert (flat.status["state"], flat.status["succeeded"]) == ("Failed", 1)
    assert flat.status["reason"] == Reason.PROGRESS_DEADLINE_EXCEEDED


def test_a_restart_mid_soak_neither_restarts_the_soak_nor_skips_it() -> None:
    world = World(staged_spec(CANARY_PROD), fleet(SIX))
    world.look()
    world.finish_running()
    world.look()
    soak_ends = world.stage("canary")["soakEndsAt"]
    world.now += timedelta(seconds=30)
    world.looked = 0  # a restarted operator: discovers again, remembers nothing but status
    world.look(discover=False)
    assert world.stage("canary")["soakEndsAt"] == soak_ends
    assert world.stage("canary")["state"] == "Soaking"


def test_approving_a_stage_that_does_not_exist_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="ghost"):
        SetSpec.parse({**staged_spec(CANARY_PROD), "approvals": [{"stage": "ghost",
                                                                  "roundKey": "x"}]})  # fmt: skip
    with pytest.raises(InvalidSpec, match="only the last stage"):
        SetSpec.parse(staged_spec([{"name": "a"}, {"name": "b", "matchTags": {"r": "x"}}]))


def test_without_stages_nothing_changes() -> None:
    world = World(
        {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]}},
        fleet(SIX),
    )
    world.look()
    assert "stages" not in world.status and "stage" not in world.status
    assert world.runs == dict.fromkeys(SIX, 1)


# The property ------------------------------------------------------------------------------

rings = st.sampled_from(["canary", "early", "prod", "none"])
stage_lists = st.lists(
    st.fixed_dictionaries(
        {
            "soakSeconds": st.sampled_from([0, 30, 120]),
            "approval": st.sampled_from([None, "Required"]),
            "maxFailures": st.sampled_from([0, 1, "50%"]),
            "maxConcurrency": st.sampled_from([None, 1, 2, "50%"]),
        }
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    members=st.dictionaries(st.sampled_from([f"k{i}" for i in range(8)]), rings, min_size=1),
    shapes=stage_lists,
    failing=st.sets(st.sampled_from([f"k{i}" for i in range(8)])),
    steps=st.lists(st.sampled_from(["finish", "tick", "approve", "restart", "look"]), max_size=40),
)
def test_no_stage_starts_before_the_one_before_ended_soaked_and_was_approved(
    members: dict[str, str], shapes: list[dict[str, Any]], failing: set[str], steps: list[str]
) -> None:
    ring_names = ["canary", "early", "prod"]
    stages = []
    for index, shape in enumerate(shapes):
        stage: dict[str, Any] = {"name": f"s{index}", "soakSeconds": shape["soakSeconds"],
                                 "maxFailures": shape["maxFailures"]}  # fmt: skip
        if index < len(shapes) - 1:
            stage["matchTags"] = {"ring": ring_names[index]}
        if shape["approval"]:
            stage["approval"] = "Required"
        if shape["maxConcurrency"] is not None:
            stage["maxConcurrency"] = shape["maxConcurrency"]
        stages.append(stage)
    world = World(staged_spec(stages), fleet(members), outcome=dict.fromkeys(failing, "Failed"))
    approved_at: dict[str, datetime] = {}
    world.look()
    for step in steps:
        if step == "finish":
            world.finish_running()
        elif step == "tick":
            world.now += timedelta(seconds=45)
        elif step == "approve":
            waiting = [s["name"] for s in world.status.get("stages", [])
                       if s["state"] == "WaitingForApproval"]  # fmt: skip
            for name in waiting:
                approved_at.setdefault(name, world.now)
                approvals = [*world.raw.get("approvals", []),
                             {"stage": name, "roundKey": world.status["roundKey"]}]  # fmt: skip
                world.raw = {**world.raw, "approvals": approvals}
        elif step == "restart":
            world.looked = 0
        world.look(discover=step == "restart")

    stage_of = {
        ClusterRef.parse(c.spec["cluster"]["resourceId"]).name: c.labels[STAGE_LABEL]
        for c in world.children.values()
    }
    assert all(count == 1 for count in world.runs.values())  # no cluster twice
    order = [s["name"] for s in stages]
    soak = {s["name"]: s["soakSeconds"] for s in stages}
    for index, name in enumerate(order[1:], start=1):
        started = [world.started_at[c] for c, s in stage_of.items() if s == name and c in
                   world.started_at]  # fmt: skip
        if not started:
            continue
        first_start = min(started)
        for earlier in order[:index]:
            members_before = [c for c, s in stage_of.items() if s == earlier]
            if not members_before:
                continue
            assert all(c in world.ended_at for c in members_before), (earlier, name)
            ended = max(world.ended_at[c] for c in members_before)
            assert first_start >= ended + timedelta(seconds=soak[earlier]), (earlier, name)
            failed = sum(1 for c in members_before if c in failing)
            spec_stage = next(s for s in stages if s["name"] == earlier)
            bound = spec_stage["maxFailures"]
            allowed = bound if isinstance(bound, int) else len(members_before) * 50 // 100
            assert failed <= allowed, (earlier, name)
        if any(s["name"] == name and s.get("approval") for s in stages):
            assert name in approved_at and first_start >= approved_at[name]
