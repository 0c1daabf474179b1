"""GitOps health of a RunCommandSchedule: Argo CD's Lua (the same script as for RunCommands and
sets) and the real kstatus library judge schedules whose statuses come from the schedule core
(core/schedule.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from controller.core.schedule import ScheduleObservation, plan_schedule, schedule_problem
from controller.core.schedule_history import ScheduledChild
from controller.core.schedule_spec import ScheduleSpec
from tests.helpers import SUBSCRIPTION
from tests.test_gitops_health import GITOPS, HEALTH_LUA
from tests.test_gitops_health_sets import Cases, assert_argocd_judges, assert_kstatus_agrees

CLUSTER = {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg", "name": "aks"}
CREATED = datetime(2026, 6, 1, 11, 59, 30, tzinfo=UTC)
TICK = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "schedule": "0 * * * *",
        "runCommandTemplate": {"cluster": CLUSTER, "command": "date"},
        **extra,
    }


def scheduled(raw: dict[str, Any], outcome: str | None, *, generation: int = 1) -> dict[str, Any]:
    """A schedule after its first tick, whose child ended with `outcome` (None: still
    running), looked at once more by the core."""
    parsed = ScheduleSpec.parse(raw)
    status: dict[str, Any] = {}
    children: list[ScheduledChild] = []
    for now in (TICK, TICK + timedelta(seconds=30)):
        decision = plan_schedule(
            ScheduleObservation("s", parsed, status, generation, CREATED, children, now)
        )
        status = decision.status
        if decision.create is not None:
            name = decision.create.name
            done = outcome is not None
            children = [
                ScheduledChild(
                    name, "RunCommand", "u", TICK, TICK, done, outcome or "Running",
                    None if outcome is None else (0 if outcome == "Succeeded" else 1),
                    "CommandFailed" if outcome == "Failed" else "", "exit code 1", None,
                )
            ]  # fmt: skip
    return {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandSchedule",
        "metadata": {"name": "s", "namespace": "ns", "generation": generation},
        "spec": raw,
        "status": {k: v for k, v in status.items() if v is not None},
    }


def edited_before_observed() -> dict[str, Any]:
    obj = scheduled(spec(), "Succeeded")
    return {**obj, "metadata": {**obj["metadata"], "generation": 2}}


def invalid() -> dict[str, Any]:
    obj = scheduled(spec(), None)
    return {**obj, "status": schedule_problem({}, 1, TICK, "spec.timeZone is not known")}


CASES: Cases = {
    "waiting-for-its-first-run": (lambda: scheduled(spec(), None), "Healthy", "Current"),
    "last-run-succeeded": (lambda: scheduled(spec(), "Succeeded"), "Healthy", "Current"),
    "last-run-failed": (lambda: scheduled(spec(), "Failed"), "Degraded", "Failed"),
    "suspended": (lambda: scheduled(spec(suspend=True), None), "Suspended", "Current"),
    "invalid-spec": (invalid, "Degraded", "Failed"),
    "edited-not-observed-yet": (edited_before_observed, "Progressing", "InProgress"),
    "no-status-yet": (
        lambda: {**scheduled(spec(), None), "status": {"observedGeneration": -1}},
        "Progressing",
        "InProgress",
    ),  # the CRD's default status before the operator's first write
}


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_judges_a_schedule(name: str) -> None:
    build, expected, _ = CASES[name]
    assert_argocd_judges(build(), expected)


def test_kstatus_judges_schedules_as_argo_cd_does() -> None:
    assert_kstatus_agrees(CASES)


def test_argocd_cm_carries_the_check_for_schedules_too() -> None:
    config_map = yaml.safe_load((GITOPS / "argocd-cm.yaml").read_text())
    script = config_map["data"]["resource.customizations.health.aks.gitops.dev_RunCommandSchedule"]
    assert script == HEALTH_LUA.read_text()
