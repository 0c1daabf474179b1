"""RunCommandSet decisions: targets, rollout bounds, maxFailures, suspend, determinism, names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from controller.arm.models import ClusterRef, DiscoveredCluster
from controller.core.bounds import resolve_bound
from controller.core.set_children import Child, SetObservation, child_name
from controller.core.set_round import SetDecision, plan_set
from controller.core.set_spec import SetSpec
from controller.core.set_status import set_problem
from controller.core.spec import InvalidSpec, RunSpec
from controller.vocabulary import CLUSTER_LABEL, ROUND_LABEL, SET_LABEL, SHARD_LABEL, Reason
from tests.helpers import SUBSCRIPTION as SUB

NOW = "2026-01-01T00:00:00Z"


def round_over(decision: SetDecision) -> bool:
    """Nothing in flight and nothing left to start: the set's state is final."""
    return decision.status["state"] in ("Succeeded", "Failed")


def ref(name: str, rg: str = "rg") -> ClusterRef:
    return ClusterRef(SUB, rg, name)


def set_spec(clusters: list[ClusterRef], **extra: Any) -> SetSpec:
    return SetSpec.parse(
        {
            "template": {"command": "echo hi"},
            "clusters": [{"resourceId": c.resource_id} for c in clusters],
            **extra,
        }
    )


def observe(
    spec: SetSpec,
    children: list[Child] = (),  # type: ignore[assignment]
    status: dict[str, Any] | None = None,
    discovered: list[DiscoveredCluster] | None = None,
) -> SetObservation:
    return SetObservation("fleet", spec, status or {}, 1, list(children), discovered, NOW)


def as_children(spec: SetSpec, decision_writes: Any, states: dict[str, str]) -> list[Child]:
    """The children after the writes landed; `states` by cluster name: their run's state."""
    children = []
    for write in decision_writes:
        status: dict[str, Any] = {}
        state = states.get(write.cluster.name)
        if state is not None and not write.spec["suspend"]:
            status = {"state": state, "specHash": RunSpec.parse(write.spec).run_hash}
        children.append(Child(write.name, dict(write.labels), dict(write.spec), status))
    return children


def run_to_end(spec: SetSpec, outcome: dict[str, str]) -> tuple[list[list[str]], dict[str, Any]]:
    """Drive the rollout: every started child ends with `outcome[name]` (default Succeeded)
    before the next look. Returns the clusters started at each look, and the final status."""
    children: dict[str, Child] = {}
    waves: list[list[str]] = []
    status: dict[str, Any] = {}
    for _ in range(50):
        decision = plan_set(observe(spec, list(children.values()), status))
        status = decision.status
        wave = [w.cluster.name for w in decision.writes if not w.spec["suspend"]]
        for write in decision.writes:
            children[write.name] = Child(write.name, dict(write.labels), dict(write.spec), {})
        if wave:
            waves.append(wave)
        for name, child in list(children.items()):
            if child.started and not child.status:
                cluster = ClusterRef.parse(child.spec["cluster"]["resourceId"]).name
                state = outcome.get(cluster, "Succeeded")
                run_hash = RunSpec.parse(child.spec).run_hash
                children[name] = Child(
                    name, child.labels, child.spec, {"state": state, "specHash": run_hash}
                )
        if round_over(decision):
            return waves, status
    raise AssertionError("the round never finished")


def test_a_round_creates_one_child_per_target_with_owner_labels_and_the_round_token() -> None:
    spec = set_spec([ref("b"), ref("a")])
    decision = plan_set(observe(spec))
    assert [w.cluster.name for w in decision.writes] == ["a", "b"]  # sorted by cluster id
    write = decision.writes[0]
    assert write.create and write.spec["runToken"] == spec.round_key
    assert write.spec["cluster"] == {"resourceId": ref("a").resource_id}
    assert write.labels[SET_LABEL] == "fleet" and write.labels[ROUND_LABEL] == spec.round_key
    assert decision.status["total"] == 2 and decision.status["round"] == 1
    assert SHARD_LABEL not in write.labels  # the set has no shard: neither have its children


def test_children_inherit_the_sets_shard_label_so_they_land_on_its_shard() -> None:
    seen = observe(set_spec([ref("a")]))
    sharded = SetObservation(
        seen.name, seen.spec, seen.status, 1, seen.children, None, NOW, shard="blue"
    )
    assert plan_set(sharded).writes[0].labels[SHARD_LABEL] == "blue"


def test_max_concurrency_bounds_each_wave_and_order_is_deterministic() -> None:
    spec = set_spec([ref(f"c{i}") for i in range(5)], maxConcurrency=2)
    waves, status = run_to_end(spec, {})
    assert waves == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert status["state"] == "Succeeded" and status["succeeded"] == 5
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Finished": "True",
    }


def test_while_children_run_no_new_one_starts_beyond_the_bound() -> None:
    spec = set_spec([ref(f"c{i}") for i in range(4)], maxConcurrency=2)
    first = plan_set(observe(spec))
    children = as_children(spec, first.writes, {"c0": "Running", "c1": "Running"})
    again = plan_set(observe(spec, children, first.status))
    assert again.writes == ()
    assert again.status["running"] == 2 and again.status["pending"] == 2


def test_a_percentage_of_concurrency_rounds_down_but_never_to_zero() -> None:
    assert resolve_bound("50%", 5, at_least_one=True) == 2
    assert resolve_bound("10%", 3, at_least_one=True) == 1
    assert resolve_bound("10%", 3, at_least_one=False) == 0
    assert resolve_bound(7, 3, at_least_one=True) == 7
    assert resolve_bound(None, 3, at_least_one=True) is None
    spec = set_spec([ref(f"c{i}") for i in range(4)], maxConcurrency="50%")
    assert run_to_end(spec, {})[0] == [["c0", "c1"], ["c2", "c3"]]


def test_max_failures_exceeded_starts_nothing_new_and_the_round_ends_failed() -> None:
    spec = set_spec([ref(f"c{i}") for i in range(6)], maxConcurrency=1, maxFailures=1)
    waves, status = run_to_end(spec, {"c0": "Failed", "c1": "Unknown"})
    assert waves == [["c0"], ["c1"]]  # the second failure exceeds 1: c2..c5 never start
    assert status["state"] == "Failed" and status["reason"] == "MaxFailuresExceeded"
    assert status["failed"] == 1 and status["unknown"] == 1 and status["pending"] == 4
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False",
        "Stalled": "True",
        "Finished": "True",
    }
    assert [e["state"] for e in status["clusters"][:2]] == ["Failed", "Unknown"]  # failures first


def test_max_failures_as_a_percentage() -> None:
    spec = set_spec([ref(f"c{i}") for i in range(10)], maxConcurrency=1, maxFailures="20%")
    waves, status = run_to_end(spec, {"c0": "Failed", "c1": "Failed", "c2": "Failed"})
    assert len(waves) == 3 and status["reason"] == "MaxFailuresExceeded"


def test_failures_within_the_bound_let_the_round_finish_failed() -> None:
    spec = set_spec([ref(f"c{i}") for i in range(3)], maxFailures=5)
    _, status = run_to_end(spec, {"c1": "Failed"})
    assert status["state"] == "Failed" and status["reason"] == "ClustersFailed"
    assert status["succeeded"] == 2


def test_suspend_starts_nothing_but_children_are_created_waiting() -> None:
    spec = set_spec([ref("a"), ref("b")], suspend=True)
    decision = plan_set(observe(spec))
    assert all(w.spec["suspend"] for w in decision.writes) and len(decision.writes) == 2
    assert decision.status["state"] == "Suspended" and not round_over(decision)
    children = as_children(spec, decision.writes, {})
    resumed = plan_set(observe(set_spec([ref("a"), ref("b")]), children, decision.status))
    assert [w.spec["suspend"] for w in resumed.writes] == [False, False]
    assert not any(w.create for w in resumed.writes)


def test_a_new_run_token_starts_a_new_round_on_the_same_children() -> None:
    spec = set_spec([ref("a")], maxConcurrency=1)
    _, status = run_to_end(spec, {})
    first = plan_set(observe(spec))
    done = as_children(spec, first.writes, {"a": "Succeeded"})
    assert plan_set(observe(spec, done, status)).writes == ()  # run once: nothing again
    bumped = set_spec([ref("a")], maxConcurrency=1, runToken="2")
    decision = plan_set(observe(bumped, done, status))
    (write,) = decision.writes
    assert not write.create and write.name == done[0].name
    assert write.spec["runToken"] == bumped.round_key != spec.round_key
    assert decision.status["round"] == 2 and decision.status["state"] == "Progressing"


def test_a_stale_status_of_a_previous_run_does_not_count_for_the_round() -> None:
    spec = set_spec([ref("a")])
    write = plan_set(observe(spec)).writes[0]
    stale = Child(
        write.name, dict(write.labels), dict(write.spec), {"state": "Succeeded", "specHash": "old"}
    )
    decision = plan_set(observe(spec, [stale]))
    assert decision.status["running"] == 1 and not round_over(decision)


def test_selector_discovery_matches_groups_tags_and_in_expressions() -> None:
    def found(name: str, rg: str = "rg", **tags: str) -> DiscoveredCluster:
        return DiscoveredCluster(ref(name, rg), tags)

    spec = SetSpec.parse(
        {
            "template": {"command": "true"},
            "clusterSelector": {
                "subscriptions": [SUB],
                "resourceGroups": ["RG"],
                "matchTags": {"team": "a"},
                "matchTagExpressions": [{"key": "env", "operator": "In", "values": ["prod", "qa"]}],
            },
        }
    )
    discovered = [
        found("yes1", team="a", env="prod"),
        found("yes2", team="a", env="qa"),
        found("wrong-env", team="a", env="dev"),
        found("no-team", env="prod"),
        found("other-rg", rg="rg2", team="a", env="prod"),
    ]
    decision = plan_set(observe(spec, discovered=discovered))
    assert sorted(w.cluster.name for w in decision.writes) == ["yes1", "yes2"]
    assert spec.selector is not None and spec.selector.scopes() == [(SUB, "RG")]


def test_without_discovery_the_round_keeps_its_members_and_explicit_clusters() -> None:
    spec = SetSpec.parse(
        {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]}}
    )
    first = plan_set(observe(spec, discovered=[DiscoveredCluster(ref("x"), {})]))
    children = as_children(spec, first.writes, {"x": "Running"})
    later = plan_set(observe(spec, children, first.status, discovered=None))
    assert later.status["total"] == 1 and later.writes == ()


def test_child_names_are_stable_dns_safe_short_and_twin_free() -> None:
    long_set = "s" * 60
    name = child_name(long_set, ref("a"))
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert child_name("fleet", ref("a")) == child_name("fleet", ClusterRef(SUB, "RG", "A"))
    names = {child_name("fleet", ref(f"c{i}")) for i in range(500)}
    assert len(names) == 500


def test_a_restart_that_finds_the_children_creates_no_twin() -> None:
    spec = set_spec([ref("a"), ref("b")], maxConcurrency=1)
    first = plan_set(observe(spec))
    children = as_children(spec, first.writes, {"a": "Running"})
    after_restart = plan_set(observe(spec, children, first.status))
    assert after_restart.writes == ()  # the same children are found; nothing is created
    assert {c.labels[CLUSTER_LABEL] for c in children} == {
        w.labels[CLUSTER_LABEL] for w in first.writes
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"template": {"command": "x"}}, "spec.clusters, spec.clusterSelector"),
        ({"template": {"command": "x", "cluster": {}}, "clusters": []}, "must not name a cluster"),
        ({"template": {"command": "x"}, "clusters": [{"resourceId": "/x"}]}, "resource id"),
        ({"template": {"command": " "}, "clusterSelector": {"subscriptions": [SUB]}}, "blank"),
        (
            {
                "template": {"command": "x"},
                "clusterSelector": {"subscriptions": [SUB]},
                "maxFailures": "x%",
            },
            "percentage",
        ),
    ],
)
def test_invalid_specs_say_what_is_wrong(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        SetSpec.parse(spec)


def test_problems_are_stalled_when_the_spec_is_invalid_and_reconciling_when_arm_fails() -> None:
    invalid = set_problem({}, 3, NOW, Reason.INVALID_SPEC, "bad", stalled=True)
    assert invalid["state"] == "Failed" and invalid["observedGeneration"] == 3
    assert {c["type"]: c["status"] for c in invalid["conditions"]} == {
        "Ready": "False",
        "Stalled": "True",
        "Finished": "True",
    }
    listing = set_problem({}, 3, NOW, Reason.DISCOVERY_FAILED, "429", stalled=False)
    assert "state" not in listing
    assert {c["type"]: c["status"] for c in listing["conditions"]} == {
        "Ready": "False",
        "Reconciling": "True",
        "Finished": "False",
    }


def test_retry_failed_token_runs_only_the_failed_clusters_again_once_per_token() -> None:
    targets = [ref("c0"), ref("c1"), ref("c2")]
    spec = set_spec(targets)
    first = plan_set(observe(spec))
    ended = as_children(spec, first.writes, {"c0": "Failed", "c1": "Succeeded", "c2": "Unknown"})
    done = plan_set(observe(spec, ended, first.status))
    assert round_over(done) and done.status["reason"] == "ClustersFailed"

    retry = set_spec(targets, retryFailedToken="r1", maxConcurrency=1)
    decision = plan_set(observe(retry, ended, done.status))
    by_cluster = {w.cluster.name: w for w in decision.writes}
    assert sorted(by_cluster) == ["c0", "c2"]  # c1 succeeded: left alone
    assert by_cluster["c0"].spec["runToken"] == f"{retry.round_key}-{retry.retry_key}"
    assert by_cluster["c0"].spec["suspend"] is False  # started now, within maxConcurrency
    assert by_cluster["c2"].spec["suspend"] is True  # retried, waiting for its turn
    assert retry.round_key == spec.round_key  # the same round: no other cluster runs again
    assert decision.status["round"] == done.status["round"]
    assert not round_over(decision)

    # Both retried and failed again: the same token never retries them a second time.
    failed_again = [
        Child(w.name, dict(w.labels), {**w.spec, "suspend": False}, {"state": "Failed",
              "specHash": RunSpec.parse(w.spec).run_hash})
        for w in decision.writes
    ]  # fmt: skip
    succeeded = [c for c in ended if c.name not in {w.name for w in decision.writes}]
    settled = plan_set(observe(retry, failed_again + succeeded, decision.status))
    assert settled.writes == () and round_over(settled)
