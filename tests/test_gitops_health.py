"""GitOps health of a RunCommand, checked against what the operator really writes.

The Argo CD health check (examples/gitops/argocd-health.lua) runs for real in Lua 5.1 (lupa),
the language level of gopher-lua, Argo CD's interpreter, with `obj` set as a global Lua table,
as Argo CD does. The RunCommands it judges get their status from the operator's own decision
core (controller.core), so a change to states, reasons or conditions shows up here.

Flux and other kstatus users read the same conditions: the same objects go through the real
kstatus library (sigs.k8s.io/cli-utils `status.Compute`, in a small Go helper built by
`make binaries`), to pin down what Flux's `wait: true` / `healthChecks` see for each case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51  # type: ignore[import-untyped]

from controller.arm import (
    CommandHandle,
    CommandResult,
    CommandRunning,
    ResourceNotFoundError,
    ThrottledError,
)
from controller.core import (
    Observation,
    RunSpec,
    Settings,
    after_poll,
    after_poll_error,
    after_submit,
    plan,
)
from controller.core.decide import Decision, invalid_spec
from tests.controlplane import kstatus
from tests.helpers import SUBSCRIPTION, merge_patch

REPO = Path(__file__).resolve().parents[1]
GITOPS = REPO / "examples" / "gitops"
HEALTH_LUA = GITOPS / "argocd-health.lua"
CRD = REPO / "crds" / "aks.gitops.dev_runcommands.yaml"

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
COMMAND_ID = "0123456789abcdef0123456789abcdef"
CLUSTER = {
    "subscriptionId": SUBSCRIPTION,
    "resourceGroup": "rg-platform",
    "name": "aks-target",
}
LOCATION = (
    f"https://management.azure.com/subscriptions/{SUBSCRIPTION}"
    "/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters"
    f"/aks-target/commandResults/{COMMAND_ID}?api-version=2024-09-01"
)


# Lua -------------------------------------------------------------------------------------------


def to_lua(lua: Any, value: Any) -> Any:
    """A JSON value as Argo CD hands it to Lua: objects and arrays become tables, arrays
    1-based; JSON null is simply absent (nil)."""
    if isinstance(value, Mapping):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(lua, item)
        return table
    if isinstance(value, list | tuple):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            table[index] = to_lua(lua, item)
        return table
    return value


def argocd_health(obj: Mapping[str, Any], script: str | None = None) -> tuple[str, str]:
    """Run the health check on `obj`; return (hs.status, hs.message)."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.globals().obj = to_lua(lua, obj)
    hs = lua.execute(script if script is not None else HEALTH_LUA.read_text())
    assert hs is not None, "the health check must return hs"
    return str(hs["status"]), str(hs["message"] or "")


# RunCommands with statuses from the operator's core ------------------------------------------


@dataclass
class RC:
    """A RunCommand being driven through the core, as the runtime would."""

    spec: dict[str, Any]
    generation: int = 1
    status: dict[str, Any] | None = None

    @property
    def run_spec(self) -> RunSpec:
        return RunSpec.parse(self.spec)

    def record(self, decision: Decision) -> RC:
        self.status = merge_patch(self.status or {}, decision.patch)
        return self

    def change_spec(self, **fields: Any) -> RC:
        self.spec = {**self.spec, **fields}
        self.generation += 1
        return self

    def obj(self, **metadata: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "aks.gitops.dev/v1alpha1",
            "kind": "RunCommand",
            "metadata": {
                "name": "create-namespaces",
                "namespace": "platform",
                "generation": self.generation,
                **metadata,
            },
            "spec": self.spec,
        }
        if self.status is not None:
            body["status"] = self.status
        return body

    # The steps of a run ------------------------------------------------------------------------

    def seen(self, now: datetime = NOW) -> Observation:
        return Observation(self.run_spec, self.status or {}, self.generation, now, SETTINGS)

    def plan(self, now: datetime = NOW) -> RC:
        return self.record(plan(self.seen(now)))

    def submitted(self) -> RC:
        handle = CommandHandle(COMMAND_ID, LOCATION, self.status["correlationId"])  # type: ignore[index]
        return self.record(after_submit(self.seen(), handle))

    def polled(self, answer: CommandRunning | CommandResult, now: datetime = NOW) -> RC:
        return self.record(after_poll(self.seen(now), answer, 1.0))

    def finished(
        self, exit_code: int = 0, state: str = "Succeeded", reason: str | None = None
    ) -> RC:
        return self.polled(
            CommandResult(
                provisioning_state=state,
                exit_code=exit_code,
                started_at="2025-06-01T12:00:01Z",
                finished_at="2025-06-01T12:00:09Z",
                logs="namespace/team-a created\n",
                reason=reason,
            )
        )

    def error(self, error: Any, *, submitting: bool) -> RC:
        return self.record(after_poll_error(self.seen(), error, 0.0))


def new(**spec: Any) -> RC:
    return RC({"cluster": CLUSTER, "command": "kubectl apply -f ns.yaml", **spec})


def running() -> RC:
    return new().plan().submitted()


RUNNING = CommandRunning(
    started_at="2025-06-01T12:00:01Z", retry_after=None, provisioning_state="Running"
)


@dataclass(frozen=True)
class Case:
    build: Callable[[], dict[str, Any]]
    argocd: str
    kstatus: str
    message: str | None = None  # a fragment of hs.message; Degraded/Healthy: status.message


CASES: dict[str, Case] = {
    # No status yet: kstatus calls it Current (a known race); the CRD default closes it.
    "no-status": Case(lambda: new().obj(), "Progressing", "Current", "Waiting for the operator"),
    "crd-default-status": Case(
        lambda: RC(new().spec, status={"observedGeneration": -1}).obj(),
        "Progressing",
        "InProgress",
        "Waiting for the operator",
    ),
    "submitting": Case(lambda: new().plan().obj(), "Progressing", "InProgress", "submitting"),
    "running": Case(lambda: running().obj(), "Progressing", "InProgress", "submitted"),
    "running-polled": Case(
        lambda: running().polled(RUNNING).obj(), "Progressing", "InProgress", "is running"
    ),
    "succeeded": Case(lambda: running().finished(0).obj(), "Healthy", "Current", "exited 0"),
    "non-zero-exit": Case(lambda: running().finished(3).obj(), "Degraded", "Failed", "exited 3"),
    "provisioning-failed": Case(
        lambda: running().finished(0, state="Failed", reason="ImagePullBackoff").obj(),
        "Degraded",
        "Failed",
        "ImagePullBackoff",
    ),
    "deadline-exceeded": Case(
        lambda: (
            new(timeoutSeconds=60)
            .plan()
            .submitted()
            .polled(RUNNING, now=NOW + timedelta(seconds=61))
            .obj()
        ),
        "Degraded",
        "Failed",
        "no result after 60s",
    ),
    "fatal-arm-error": Case(
        lambda: (
            new()
            .plan()
            .error(
                ResourceNotFoundError(
                    "The Resource 'aks-target' was not found.",
                    status_code=404,
                    code="ResourceNotFound",
                ),
                submitting=True,
            )
            .obj()
        ),
        "Degraded",
        "Failed",
        "was not found",
    ),
    "retryable-arm-error": Case(
        lambda: (
            new()
            .plan()
            .error(
                ThrottledError("Too many requests", status_code=429, code="TooManyRequests"),
                submitting=True,
            )
            .obj()
        ),
        "Progressing",
        "InProgress",
        "retrying in",
    ),
    # The operator stopped between the POST and recording the command id (AtMostOnce).
    "outcome-unknown": Case(
        lambda: new().plan().plan().obj(), "Degraded", "Failed", "was not submitted again"
    ),
    "invalid-spec": Case(
        lambda: RC(new().spec).record(invalid_spec({}, 1, NOW, "invalid spec: 'cluster'")).obj(),
        "Degraded",
        "Failed",
        "invalid spec",
    ),
    "suspended": Case(
        lambda: new(suspend=True).plan().obj(), "Suspended", "InProgress", "spec.suspend is true"
    ),
    # Suspending a submitted run does not stop it: it is still followed to its end.
    "suspended-while-running": Case(
        lambda: running().change_spec(suspend=True).plan().obj(),
        "Progressing",
        "InProgress",
        "submitted",
    ),
    "unsuspended-then-submitting": Case(
        lambda: new(suspend=True).plan().change_spec(suspend=False).plan().obj(),
        "Progressing",
        "InProgress",
        "submitting",
    ),
    # A spec change (runToken bump) the operator has not seen yet: the old run's Ready=True
    # must not count.
    "new-generation-not-observed": Case(
        lambda: running().finished(0).change_spec(runToken="2").obj(),
        "Progressing",
        "InProgress",
        "observe generation 2",
    ),
    "run-token-bump-submitting": Case(
        lambda: running().finished(0).change_spec(runToken="2").plan().obj(),
        "Progressing",
        "InProgress",
        "submitting",
    ),
    # The run ended after a runToken bump it had to wait for: the next run is pending, so
    # nothing reads the old result as the new generation's.
    "next-run-pending": Case(
        lambda: running().change_spec(runToken="2").plan().finished(0).obj(),
        "Progressing",
        "InProgress",
        "the changed spec runs next",
    ),
    # A spec change that defines no new run (suspend toggled) keeps the finished result.
    "finished-then-suspend-toggled": Case(
        lambda: running().finished(3).change_spec(suspend=True).plan().obj(),
        "Degraded",
        "Failed",
        "exited 3",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_health_check(name: str) -> None:
    case = CASES[name]
    obj = case.build()
    status, message = argocd_health(obj)
    assert status == case.argocd, (status, message, obj.get("status"))
    if case.message is not None:
        assert case.message in message, message
    if status == "Healthy":
        assert message == obj["status"]["message"]
    if status == "Degraded":
        assert message == f"{obj['status']['reason']}: {obj['status']['message']}"


@pytest.fixture(scope="module")
def kstatus_of_cases() -> dict[str, tuple[dict[str, Any], kstatus.Verdict]]:
    """Every case's object and kstatus's verdict on it, from one run of the helper."""
    objects = {name: case.build() for name, case in CASES.items()}
    verdicts = kstatus.compute(*objects.values())
    return {name: (objects[name], verdict) for name, verdict in zip(objects, verdicts, strict=True)}


@pytest.mark.parametrize("name", list(CASES))
def test_kstatus_reads_the_same_objects(
    name: str, kstatus_of_cases: dict[str, tuple[dict[str, Any], kstatus.Verdict]]
) -> None:
    obj, verdict = kstatus_of_cases[name]
    assert verdict.status == CASES[name].kstatus, (verdict, obj.get("status"))


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.kstatus == "Failed"])
def test_kstatus_reports_the_stalled_message(
    name: str, kstatus_of_cases: dict[str, tuple[dict[str, Any], kstatus.Verdict]]
) -> None:
    """What Flux shows for a failed RunCommand is the operator's Stalled condition message."""
    obj, verdict = kstatus_of_cases[name]
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert verdict.message == stalled["message"]


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_and_kstatus_agree_on_outcomes(name: str) -> None:
    """Healthy is Current and Degraded is Failed for both; they differ only on an object with
    no status (the known kstatus race) and on suspension (kstatus has no Suspended)."""
    case = CASES[name]
    if name == "no-status":
        assert (case.argocd, case.kstatus) == ("Progressing", "Current")
    elif case.argocd == "Suspended":
        assert case.kstatus == "InProgress"
    else:
        expected = {"Healthy": "Current", "Degraded": "Failed", "Progressing": "InProgress"}
        assert expected[case.argocd] == case.kstatus


@pytest.mark.parametrize("name", [name for name in CASES if name != "no-status"])
def test_finished_is_true_exactly_when_the_verdict_is_final(name: str) -> None:
    """Finished (for `kubectl wait`) is True on Healthy/Degraded, False while Progressing or
    Suspended, and its reason is the final state. It is not read by kstatus or Argo CD."""
    case, obj = CASES[name], CASES[name].build()
    status = obj["status"]
    (finished,) = [c for c in status.get("conditions", [])
                   if c["type"] == "Finished"] or [None]  # fmt: skip
    if finished is None:  # only the CRD-defaulted status has no conditions yet
        assert name == "crd-default-status"
        return
    final = case.argocd in ("Healthy", "Degraded")
    observed = status["observedGeneration"] == obj["metadata"]["generation"]
    # kubectl wait does not compare generations: a plugin's wait must (see README Pipelines).
    assert (finished["status"] == "True") == (final or not observed), (finished, status)
    if finished["status"] == "True":
        assert finished["reason"] in ("Succeeded", "Failed", "Unknown")
        assert finished["reason"] == status["state"] or not observed
    else:
        assert finished["reason"] == status["state"]


def test_deleting_is_terminating_for_kstatus() -> None:
    (verdict,) = kstatus.compute(
        running().finished(0).obj(deletionTimestamp="2025-06-01T12:05:00Z")
    )
    assert verdict.status == "Terminating"


def test_status_message_falls_back_to_the_condition_message() -> None:
    obj = running().finished(3).obj()
    stalled_message = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")[
        "message"
    ]
    del obj["status"]["message"]
    assert argocd_health(obj) == ("Degraded", f"{obj['status']['reason']}: {stalled_message}")


def test_argocd_cm_embeds_the_health_check_verbatim() -> None:
    config_map = yaml.safe_load((GITOPS / "argocd-cm.yaml").read_text())
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["name"] == "argocd-cm"
    script = config_map["data"]["resource.customizations.health.aks.gitops.dev_RunCommand"]
    assert script == HEALTH_LUA.read_text()
    assert argocd_health(running().finished(0).obj(), script)[0] == "Healthy"


def test_the_examples_name_the_served_api() -> None:
    crd = yaml.safe_load(CRD.read_text())
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    versions = {f"{group}/{v['name']}" for v in crd["spec"]["versions"] if v["served"]}
    # Argo CD's key is resource.customizations.health.<group>_<Kind>.
    config_map = yaml.safe_load((GITOPS / "argocd-cm.yaml").read_text())
    assert f"resource.customizations.health.{group}_{kind}" in config_map["data"]
    checks = [
        check
        for document in yaml.safe_load_all((GITOPS / "flux-kustomization.yaml").read_text())
        for check in document["spec"].get("healthChecks", ())
    ]
    assert checks, "the Flux example shows spec.healthChecks"
    for check in checks:
        assert check["kind"] == kind
        assert check["apiVersion"] in versions
