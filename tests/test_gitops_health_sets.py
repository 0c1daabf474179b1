"""GitOps health of a RunCommandSet: Argo CD's Lua (the same script as for RunCommands) and
the real kstatus library judge sets whose statuses come from the fleet core (core/set_round.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from controller.arm.models import ClusterRef, DiscoveredCluster
from controller.core.set_children import Child, SetObservation
from controller.core.set_round import plan_set
from controller.core.set_spec import SetSpec
from controller.core.spec import RunSpec
from tests.controlplane import kstatus
from tests.helpers import SUBSCRIPTION as SUB
from tests.test_gitops_health import GITOPS, HEALTH_LUA, argocd_health

NOW = "2025-06-01T12:00:00Z"


def clusters(count: int) -> list[dict[str, str]]:
    return [{"resourceId": ClusterRef(SUB, "rg", f"c{i}").resource_id} for i in range(count)]


def rolled(spec: dict[str, Any], outcomes: list[str], *, generation: int = 1) -> dict[str, Any]:
    """A set after its children started in order and ended with `outcomes` ("" = still
    running), planned once more by the core."""
    parsed = SetSpec.parse(spec)
    children: list[Child] = []
    status: dict[str, Any] = {}
    for _ in range(len(outcomes) + 1):
        decision = plan_set(SetObservation("s", parsed, status, generation, children, None, NOW))
        status = decision.status
        by_name = {c.name: c for c in children}
        for write in decision.writes:
            by_name[write.name] = Child(write.name, dict(write.labels), dict(write.spec), {})
        children = []
        for index, child in enumerate(
            sorted(by_name.values(), key=lambda c: c.spec["cluster"]["resourceId"])
        ):
            state = outcomes[index] if index < len(outcomes) else ""
            if child.started and state:
                run_hash = RunSpec.parse(child.spec).run_hash
                child = Child(
                    child.name, child.labels, child.spec, {"state": state, "specHash": run_hash}
                )
            children.append(child)
    return {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandSet",
        "metadata": {"name": "s", "namespace": "ns", "generation": generation},
        "spec": spec,
        "status": status,
    }


def bumped_before_observed() -> dict[str, Any]:
    obj = rolled(spec(), ["Succeeded"] * 3)
    return {**obj, "metadata": {**obj["metadata"], "generation": 2}}


def matched_nothing() -> dict[str, Any]:
    """A selector that found no cluster (issue 24, defect 6): the round must end, not stay
    InProgress for good."""
    raw = {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]}}
    seen = SetObservation("s", SetSpec.parse(raw), {}, 1, [], [], NOW)
    return as_object(raw, plan_set(seen).status)


def as_object(raw: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandSet",
        "metadata": {"name": "s", "namespace": "ns", "generation": 1},
        "spec": raw,
        "status": status,
    }


def staged(outcome: str, *, soak: int) -> dict[str, Any]:
    """A canary stage (c0) then prod (approval Required), after the canary ended with
    `outcome` ("" = still running), as the core plans it."""
    stages = [
        {"name": "canary", "matchTags": {"ring": "canary"}, "soakSeconds": soak},
        {"name": "prod", "approval": "Required"},
    ]
    raw = {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]},
           "stages": stages}  # fmt: skip
    parsed = SetSpec.parse(raw)
    found = [
        DiscoveredCluster(ClusterRef(SUB, "rg", f"c{i}"), {"ring": "canary" if i == 0 else "p"})
        for i in range(3)
    ]
    first = plan_set(SetObservation("s", parsed, {}, 1, [], found, NOW))
    children = []
    for write in first.writes:
        status: dict[str, Any] = {}
        if not write.spec["suspend"] and outcome:
            status = {"state": outcome, "specHash": RunSpec.parse(write.spec).run_hash}
        children.append(Child(write.name, dict(write.labels), dict(write.spec), status))
    then = plan_set(SetObservation("s", parsed, first.status, 1, children, None, NOW))
    return as_object(raw, then.status)


def spec(count: int = 3, **extra: Any) -> dict[str, Any]:
    return {"template": {"command": "true"}, "clusters": clusters(count), **extra}


CASES: dict[str, tuple[Callable[[], dict[str, Any]], str, str]] = {
    "rolling-out": (
        lambda: rolled(spec(maxConcurrency=1), ["Succeeded", ""]),
        "Progressing",
        "InProgress",
    ),
    "all-succeeded": (lambda: rolled(spec(), ["Succeeded"] * 3), "Healthy", "Current"),
    "clusters-failed": (
        lambda: rolled(spec(), ["Succeeded", "Failed", "Succeeded"]),
        "Degraded",
        "Failed",
    ),
    "max-failures-exceeded": (
        lambda: rolled(spec(maxConcurrency=1, maxFailures=0), ["Failed"]),
        "Degraded",
        "Failed",
    ),
    "suspended": (lambda: rolled(spec(suspend=True), []), "Suspended", "InProgress"),
    "matched-nothing": (matched_nothing, "Degraded", "Failed"),
    "stage-running": (lambda: staged("", soak=0), "Progressing", "InProgress"),
    "stage-soaking": (lambda: staged("Succeeded", soak=600), "Progressing", "InProgress"),
    "stage-waiting-for-approval": (
        lambda: staged("Succeeded", soak=0),
        "Suspended",
        "InProgress",
    ),
    "stage-failed": (lambda: staged("Failed", soak=0), "Degraded", "Failed"),
    # A runToken bump the operator has not seen yet: the old round's Ready=True must not count.
    "new-generation-not-observed": (
        bumped_before_observed,
        "Progressing",
        "InProgress",
    ),
}


Cases = dict[str, tuple[Callable[[], dict[str, Any]], str, str]]


def assert_argocd_judges(obj: dict[str, Any], expected: str) -> None:
    status, message = argocd_health(obj)
    assert status == expected, (status, message, obj["status"])
    if status == "Degraded":
        assert message == f"{obj['status']['reason']}: {obj['status']['message']}"


def assert_kstatus_agrees(cases: Cases) -> None:
    """The real kstatus library's verdict on each case is the one it expects."""
    objects = {name: build() for name, (build, _, _) in cases.items()}
    verdicts = kstatus.compute(*objects.values())
    got = {name: verdict.status for name, verdict in zip(objects, verdicts, strict=True)}
    assert got == {name: expected for name, (_, _, expected) in cases.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_judges_a_set(name: str) -> None:
    build, expected, _ = CASES[name]
    assert_argocd_judges(build(), expected)


def test_kstatus_judges_sets_as_argo_cd_does() -> None:
    assert_kstatus_agrees(CASES)


def test_argocd_cm_carries_the_check_for_sets_too() -> None:
    config_map = yaml.safe_load((GITOPS / "argocd-cm.yaml").read_text())
    script = config_map["data"]["resource.customizations.health.aks.gitops.dev_RunCommandSet"]
    assert script == HEALTH_LUA.read_text()
