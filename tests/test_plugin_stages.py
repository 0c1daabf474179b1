"""The plugin's stage parts: --stage and --approve-each as spec.stages, the approval patch for
the current round, the stage table, and the terminal prompt of --approve-each."""

from __future__ import annotations

import io
from typing import Any

import pytest
from kubectl_runcommand.fleet import SelectorError
from kubectl_runcommand.outcome import EXIT_WAIT_TIMEOUT
from kubectl_runcommand.stages import (
    ApprovalRefused,
    approval_patch,
    ask_to_approve,
    parse_stage,
    stage_table,
    stages_spec,
)


def test_stage_flags_become_spec_stages() -> None:
    spec = stages_spec(["canary=tag=ring=canary", "prod"], approve_each=True)
    assert spec == {
        "stages": [
            {"name": "canary", "matchTags": {"ring": "canary"}},
            {"name": "prod", "approval": "Required"},
        ]
    }
    assert parse_stage("eu=tag=ring=prod,tag=geo=eu")["matchTags"] == {"ring": "prod", "geo": "eu"}
    assert stages_spec([], approve_each=False) == {}


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["=tag=a=b"], "needs a name"),
        (["a=ring=x"], "tag=KEY=VALUE"),
        (["a", "b=tag=r=x"], "only the last stage"),
        (["a=tag=r=x", "a"], "unique"),
    ],
)
def test_bad_stage_flags_are_usage_errors(flags: list[str], says: str) -> None:
    with pytest.raises(SelectorError, match=says):
        stages_spec(flags, approve_each=False)
    with pytest.raises(SelectorError, match="needs --stage"):
        stages_spec([], approve_each=True)


def staged_set(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "roll", "generation": 2, "resourceVersion": "41"},
        "spec": {
            "stages": [{"name": "canary", "matchTags": {"r": "c"}}, {"name": "prod"}],
            "approvals": [{"stage": "prod", "roundKey": "old-round"}],
        },
        "status": {"observedGeneration": 2, "roundKey": "this-round", **status},
    }


def test_an_approval_names_the_current_round_and_drops_those_of_other_rounds() -> None:
    body = staged_set(stages=[{"name": "prod", "state": "WaitingForApproval"}])
    patch, said = approval_patch(body, "prod")
    assert patch == {
        "metadata": {"resourceVersion": "41"},
        "spec": {"approvals": [{"stage": "prod", "roundKey": "this-round"}]},
    }
    assert "approved for round this-round" in said and "nothing changes" not in said


def test_approving_a_stage_not_waiting_is_harmless_and_twice_changes_nothing() -> None:
    patch, said = approval_patch(staged_set(stages=[{"name": "canary", "state": "Progressing"}]),
                                 "canary")  # fmt: skip
    assert patch is not None and "nothing changes now" in said
    body = staged_set()
    body["spec"]["approvals"] = [{"stage": "prod", "roundKey": "this-round"}]
    assert approval_patch(body, "prod")[0] is None


def test_approving_a_stage_that_does_not_exist_or_before_the_round_is_known_is_refused() -> None:
    with pytest.raises(ApprovalRefused, match=r"no stage 'ghost' \(stages: canary, prod\)"):
        approval_patch(staged_set(), "ghost")
    with pytest.raises(ApprovalRefused, match="not reported the current round"):
        approval_patch(staged_set(observedGeneration=1), "prod")


def test_the_stage_table_lists_each_stage() -> None:
    stages = [
        {"name": "canary", "state": "Soaking", "total": 1, "succeeded": 1,
         "soakEndsAt": "2026-01-01T00:10:00Z"},
        {"name": "prod", "state": "Pending", "total": 5},
    ]  # fmt: skip
    table = stage_table({"stages": stages})
    lines = table.splitlines()
    assert lines[0].split() == ["STAGE", "STATE", "TOTAL", "SUCCEEDED", "FAILED", "RUNNING",
                                "STARTED", "FINISHED", "SOAK-ENDS"]  # fmt: skip
    assert lines[1].split() == ["canary", "Soaking", "1", "1", "0", "0", "2026-01-01T00:10:00Z"]
    assert lines[2].split()[:3] == ["prod", "Pending", "5"]


class FakeKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        return {}


def test_approve_each_asks_once_per_stage_and_a_no_leaves_it_waiting() -> None:
    body = staged_set(state="WaitingForApproval", stage="prod")
    kube, asked, err = FakeKube(), set[str](), io.StringIO()
    said_yes = ask_to_approve(kube, "roll", body, asked=asked, ask=lambda _: "y", err=err)  # type: ignore[arg-type]
    assert said_yes is None and len(kube.patches) == 1
    again = ask_to_approve(kube, "roll", body, asked=asked, ask=lambda _: "y", err=err)  # type: ignore[arg-type]
    assert again is None and len(kube.patches) == 1  # asked once per stage
    kube2 = FakeKube()
    code = ask_to_approve(kube2, "roll", body, asked=set(), ask=lambda _: "", err=err)  # type: ignore[arg-type]
    assert code == EXIT_WAIT_TIMEOUT and not kube2.patches
    assert "kubectl runcommand approve roll --stage prod" in err.getvalue()
