"""The states a set and a schedule write are the ones their CRDs accept: the vocabulary's enums
and the schemas' `status.state` enums are the same lists, so a state added on one side only
fails here instead of at the API server's validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from controller.core.durations import format_timestamp, parse_timestamp
from controller.vocabulary import ScheduleState, SetState

CRDS = Path(__file__).resolve().parents[2] / "crds"


def status_state_enum(crd_file: str) -> list[str]:
    crd: dict[str, Any] = yaml.safe_load((CRDS / crd_file).read_text())
    (version,) = crd["spec"]["versions"]
    state = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["state"]
    return list(state["enum"])


def test_a_sets_states_are_its_crds() -> None:
    assert sorted(status_state_enum("aks.gitops.dev_runcommandsets.yaml")) == sorted(SetState)


def test_a_schedules_states_are_its_crds() -> None:
    enum = status_state_enum("aks.gitops.dev_runcommandschedules.yaml")
    assert sorted(enum) == sorted(ScheduleState)


def test_timestamps_are_written_in_utc_to_the_second() -> None:
    berlin = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 2, 2, 30, 15, 999, tzinfo=berlin)
    assert format_timestamp(moment) == "2026-12-02T01:30:15Z"
    assert format_timestamp(datetime(2026, 12, 2, 1, 30, 15)) == "2026-12-02T01:30:15Z"
    parsed = parse_timestamp(format_timestamp(moment))
    assert parsed == moment.replace(microsecond=0)
    assert parsed is not None and parsed.tzinfo is UTC
