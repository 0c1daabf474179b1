"""Shared values and helpers for the pure-core tests: a fixed clock, spec builders, and the
API server's merge patch (tests/helpers.py) so tests chain decisions as the runtime applies them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.arm import CommandHandle, CommandResult
from controller.core import Observation, RunSpec, Settings, after_poll, after_submit, plan
from tests.helpers import SUBSCRIPTION as SUB
from tests.helpers import merge_patch as merge

RG = "rg-prod"
CLUSTER = "aks-blue"
RESOURCE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerService"
    f"/managedClusters/{CLUSTER}"
)
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
COMMAND_ID = "4b9a2c7e1f0d4e5a"
LOCATION = (
    f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.ContainerService"
    f"/locations/westeurope/operationresults/{COMMAND_ID}?api-version=2024-05-01"
)


def at(seconds: float) -> datetime:
    """NOW shifted by `seconds`."""
    return NOW + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def spec_dict(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "cluster": {"subscriptionId": SUB, "resourceGroup": RG, "name": CLUSTER},
        "command": "kubectl apply -f ns.yaml",
    }
    spec.update(fields)
    return spec


def make_spec(**fields: Any) -> RunSpec:
    return RunSpec.parse(spec_dict(**fields))


def types(status: Mapping[str, Any]) -> dict[str, str]:
    """Condition type -> status, the shape kstatus reads (Finished, for kubectl wait, is
    checked by finished_of)."""
    return {c["type"]: c["status"] for c in status.get("conditions", []) if c["type"] != "Finished"}


def finished_of(status: Mapping[str, Any]) -> tuple[str, str]:
    """The Finished condition's (status, reason)."""
    (finished,) = [c for c in status.get("conditions", []) if c["type"] == "Finished"]
    return finished["status"], finished["reason"]


def submitting(spec: RunSpec, generation: int = 1, now: datetime = NOW) -> dict[str, Any]:
    """Status right after plan's SUBMIT patch was written (before ARM answered)."""
    return merge({}, plan(Observation(spec, {}, generation, now, SETTINGS)).patch)


def running(
    spec: RunSpec,
    generation: int = 1,
    now: datetime = NOW,
    before: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Status once ARM accepted the POST and the command id was recorded."""
    planned = plan(Observation(spec, before or {}, generation, now, SETTINGS))
    status = merge(before or {}, planned.patch)
    handle = CommandHandle(COMMAND_ID, LOCATION, str(planned.correlation_id))
    return merge(
        status, after_submit(Observation(spec, status, generation, now, SETTINGS), handle).patch
    )


def result(
    exit_code: int | None = 0,
    *,
    state: str = "Succeeded",
    logs: str = "namespace/demo created\n",
    started_at: str | None = "2025-03-01T12:00:05Z",
    finished_at: str | None = "2025-03-01T12:01:35Z",
    reason: str | None = None,
) -> CommandResult:
    return CommandResult(
        provisioning_state=state,
        exit_code=exit_code,
        started_at=started_at,
        finished_at=finished_at,
        logs=logs,
        reason=reason,
    )


def finished(
    spec: RunSpec, exit_code: int = 0, generation: int = 1, now: datetime = NOW
) -> dict[str, Any]:
    """Status of a run that ended with `exit_code`."""
    status = running(spec, generation, now)
    decision = after_poll(
        Observation(spec, status, generation, at(100), SETTINGS), result(exit_code), 1.0
    )
    return merge(status, decision.patch)


@dataclass
class FakeFailure:
    """A failure as the core sees it (ARM and input errors alike), by its classification."""

    code: str
    message: str
    retryable: bool = True
    retry_after: float | None = None
    outcome_unknown: bool = False
    accepted: bool = False
