"""A RunCommandSchedule's spec as the core reads it: its cron and time zone, its concurrency
policy, its history limits and the one template its ticks create. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.core.cron import Cron, InvalidCron
from controller.core.set_spec import SetSpec
from controller.core.spec import InvalidSpec, RunSpec
from controller.vocabulary import RUNCOMMAND_KIND, SET_KIND

ChildKind = str  # RUNCOMMAND_KIND or SET_KIND: what a tick creates
TEMPLATES: Mapping[str, ChildKind] = {
    "runCommandTemplate": RUNCOMMAND_KIND,
    "runCommandSetTemplate": SET_KIND,
}


@dataclass(frozen=True)
class ScheduleSpec:
    cron: Cron
    schedule: str
    time_zone: str
    forbid: bool  # concurrencyPolicy Forbid
    starting_deadline_seconds: int | None
    suspend: bool
    successful_history_limit: int
    failed_history_limit: int
    child_kind: ChildKind
    template: Mapping[str, Any]

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> ScheduleSpec:
        try:
            return cls._parse(spec)
        except InvalidCron as error:
            raise InvalidSpec(str(error)) from error
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidSpec(f"invalid spec: {error}") from error

    @classmethod
    def _parse(cls, spec: Mapping[str, Any]) -> ScheduleSpec:
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Replace":
            raise ValueError(
                "spec.concurrencyPolicy Replace is not supported: ARM has no cancel, so a "
                "running command cannot be replaced; use Forbid (skip a tick while one runs) "
                "or Allow"
            )
        if policy not in ("Allow", "Forbid"):
            raise ValueError(f"spec.concurrencyPolicy must be Allow or Forbid, not {policy!r}")
        given = [key for key in TEMPLATES if spec.get(key) is not None]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of spec.runCommandTemplate, spec.runCommandSetTemplate"
            )
        (key,) = given
        template = dict(spec[key])
        kind = TEMPLATES[key]
        if kind == RUNCOMMAND_KIND:
            RunSpec.parse(template)
        else:
            SetSpec.parse(template)
        deadline = spec.get("startingDeadlineSeconds")
        return cls(
            cron=Cron.parse(str(spec["schedule"]), spec.get("timeZone")),
            schedule=str(spec["schedule"]),
            time_zone=spec.get("timeZone") or "UTC",
            forbid=policy == "Forbid",
            starting_deadline_seconds=None if deadline is None else max(0, int(deadline)),
            suspend=bool(spec.get("suspend", False)),
            successful_history_limit=max(0, int(spec.get("successfulRunsHistoryLimit", 3))),
            failed_history_limit=max(0, int(spec.get("failedRunsHistoryLimit", 1))),
            child_kind=kind,
            template=template,
        )
