"""The RunCommandSchedule CRD is generated (scripts/schedule_crd.py): its templates are the
RunCommand and RunCommandSet spec schemas, and its cron and time zone checks are the
operator's own. These tests fail while the committed file is stale."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from controller.core.cron import Cron, InvalidCron

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("schedule_crd", ROOT / "scripts" / "schedule_crd.py")
assert _spec is not None and _spec.loader is not None
schedule_crd = importlib.util.module_from_spec(_spec)
sys.modules["schedule_crd"] = schedule_crd
_spec.loader.exec_module(schedule_crd)


def schema(path: Path) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_the_committed_crd_is_what_the_generator_writes() -> None:
    assert schedule_crd.main(["--check"]) == 0, "run: python scripts/schedule_crd.py"


@pytest.mark.parametrize(
    ("template", "source"),
    [
        ("runCommandTemplate", schedule_crd.RUN_CRD),
        ("runCommandSetTemplate", schedule_crd.SET_CRD),
    ],
)
def test_the_templates_are_the_kinds_spec_schemas(template: str, source: Path) -> None:
    ours = schema(schedule_crd.OUT)["properties"]["spec"]["properties"][template]
    theirs = schema(source)["properties"]["spec"]
    assert {k: v for k, v in ours.items() if k != "description"} == {
        k: v for k, v in theirs.items() if k != "description"
    }
    assert ours["description"].endswith(theirs["description"])


def test_every_time_zone_the_crd_accepts_loads_in_zoneinfo() -> None:
    zones = schedule_crd.time_zones()
    assert "Europe/Berlin" in zones and "UTC" in zones and len(zones) > 400
    for zone in zones:
        ZoneInfo(zone)


SHAPES = {
    "* * * * *": True,
    "0 3 ? JAN-MAR MON-FRI": True,
    "*/5 1-3,7 * * 0": True,
    " 0  3 * * * ": True,
    "@hourly": True,
    "@every 5m": False,
    "0 0 3 * * *": False,
    "0 3 L * *": False,
    "0 3 * * MON#2": False,
    "0 3 15W * *": False,
    "0 3 * *": False,
}


@pytest.mark.parametrize(("schedule", "shaped"), list(SHAPES.items()))
def test_the_crds_cron_rule_and_the_core_agree_on_the_shape(schedule: str, shaped: bool) -> None:
    """The CRD's regex, read back from the file and unescaped from its CEL literal, accepts
    exactly the schedules whose shape the core accepts (ranges are the core's to check)."""
    rules = schema(schedule_crd.OUT)["properties"]["spec"]["properties"]["schedule"]
    rule = rules["x-kubernetes-validations"][1]["rule"]
    literals = re.findall(r"self\.matches\('((?:[^'\\]|\\.)*)'\)", rule)
    patterns = [literal.replace("\\\\", "\\") for literal in literals]
    assert len(patterns) == 2
    assert any(re.search(p, schedule) for p in patterns) == shaped
    try:
        Cron.parse(schedule, None)
    except InvalidCron as error:
        assert not shaped or "five fields" not in str(error)
    else:
        assert shaped
