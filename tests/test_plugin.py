"""The plugin's pure parts: when a run counts as finished, and how the plugin exits."""

from __future__ import annotations

from typing import Any

import pytest
from kubectl_runcommand.outcome import (
    EXIT_ARM_ERROR,
    EXIT_DEADLINE,
    EXIT_UNKNOWN,
    finished,
    outcome,
)


def body(generation: int, observed: int, finished_status: str, condition_gen: int) -> Any:
    condition = {
        "type": "Finished",
        "status": finished_status,
        "reason": "Succeeded",
        "observedGeneration": condition_gen,
    }
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "state": "Succeeded",
            "conditions": [condition],
        },
    }


def test_a_finished_previous_generation_is_not_finished() -> None:
    """Right after a runToken bump: what `kubectl wait --for=condition=Finished` would accept."""
    assert not finished(body(2, 1, "True", 1))
    assert not finished(body(2, 2, "False", 2))
    assert finished(body(2, 2, "True", 2))


@pytest.mark.parametrize(
    ("status", "code", "has_reason"),
    [
        ({"state": "Succeeded", "exitCode": 0}, 0, False),
        ({"state": "Failed", "reason": "CommandFailed", "exitCode": 3}, 3, False),
        ({"state": "Failed", "reason": "ResourceNotFound", "message": "m"}, EXIT_ARM_ERROR, True),
        ({"state": "Failed", "reason": "ProvisioningFailed"}, EXIT_ARM_ERROR, True),
        ({"state": "Failed", "reason": "DeadlineExceeded"}, EXIT_DEADLINE, True),
        ({"state": "Unknown", "reason": "SubmissionOutcomeUnknown"}, EXIT_UNKNOWN, True),
    ],
)
def test_exit_codes(status: dict[str, Any], code: int, has_reason: bool) -> None:
    result = outcome(status)
    assert result.code == code
    assert (result.reason is not None) == has_reason


def test_the_plugin_imports_nothing_beyond_the_standard_library() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; import kubectl_runcommand.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'kubernetes', 'kopf', 'azure', 'yaml', 'aiohttp') "
        "or m.split('.')[0] in ('controller', 'aks_arm_emulator')]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --selector: the RunCommandSet the plugin creates ----------------------------------------


def test_a_selector_becomes_the_sets_cluster_selector() -> None:
    from kubectl_runcommand.fleet import parse_selector

    sub, sub2 = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
    assert parse_selector(f"sub={sub}") == {"subscriptions": [sub]}
    assert parse_selector(f"sub={sub},sub={sub2},rg=rg-fleet,tag=env=prod,tag=team=a=b") == {
        "subscriptions": [sub, sub2],
        "resourceGroups": ["rg-fleet"],
        "matchTags": {"env": "prod", "team": "a=b"},  # a tag value may hold '='
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rg=rg-fleet", "at least one sub="),
        ("sub=s,env=prod", "unknown key 'env'"),
        ("sub=s,tag=env", "tag=KEY=VALUE"),
        ("sub=s,tag==x", "tag=KEY=VALUE"),
        ("sub=s,rg", "not KEY=VALUE"),
        ("sub=s,tag=env=a,tag=env=b", "two different values"),
    ],
)
def test_a_selector_that_cannot_be_read_says_why(text: str, says: str) -> None:
    from kubectl_runcommand.fleet import SelectorError, parse_selector

    with pytest.raises(SelectorError, match=says):
        parse_selector(text)


def test_invoke_with_a_selector_creates_a_set_with_the_rollout_bounds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The argument parsing end to end up to the API server: what kubectl would be handed."""
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    created: list[dict[str, Any]] = []

    def create(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        created.append(body)
        return {**body, "metadata": {**body["metadata"], "namespace": "ci"}}

    monkeypatch.setattr(Kubectl, "create", create)
    code = plugin.main(
        ["invoke", "--no-wait", "--selector", "sub=s1,rg=rg-fleet,tag=env=prod",
         "--max-concurrency", "25%", "--max-failures", "1", "--timeout", "60",
         "--", "kubectl", "get", "nodes"]
    )  # fmt: skip
    assert code == 0
    (body,) = created
    assert body["kind"] == "RunCommandSet"
    assert body["metadata"]["name"].startswith("invoke-")
    assert body["spec"] == {
        "template": {"command": "kubectl get nodes", "timeoutSeconds": 60},
        "clusterSelector": {
            "subscriptions": ["s1"],
            "resourceGroups": ["rg-fleet"],
            "matchTags": {"env": "prod"},
        },
        "maxConcurrency": "25%",
        "maxFailures": 1,
    }
    assert capsys.readouterr().out.strip() == body["metadata"]["name"]


def test_a_bad_selector_or_bound_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    monkeypatch.setattr(Kubectl, "create", lambda *_: pytest.fail("nothing is created"))
    assert plugin.main(["invoke", "--selector", "rg=x", "--", "true"]) == 2
    assert plugin.main(["invoke", "--selector", "sub=s", "--max-failures", "x", "--", "true"]) == 2


def test_a_set_exits_0_only_when_every_cluster_succeeded() -> None:
    from kubectl_runcommand.fleet import progress_table, set_exit
    from kubectl_runcommand.outcome import EXIT_SET_FAILED

    failed = {
        "state": "Failed",
        "reason": "ClustersFailed",
        "message": "round 1: 1 of 2 clusters failed",
        "total": 2,
        "succeeded": 1,
        "failed": 1,
        "clusters": [
            {"clusterId": "/s/x/managedClusters/b", "child": "set-2", "state": "Failed",
             "exitCode": 3, "reason": "CommandFailed"},
            {"clusterId": "/s/x/managedClusters/a", "child": "set-1", "state": "Succeeded",
             "exitCode": 0},
        ],
    }  # fmt: skip
    code, summary = set_exit(failed)
    assert code == EXIT_SET_FAILED
    assert summary == "ClustersFailed: round 1: 1 of 2 clusters failed; failed: b (CommandFailed)"
    assert set_exit({**failed, "state": "Succeeded"}) == (0, None)
    table = progress_table(failed).splitlines()
    assert table[1].split() == ["CLUSTER", "CHILD", "STATE", "EXIT"]
    assert table[2].split() == ["b", "set-2", "Failed", "3"]
    assert table[3].split() == ["a", "set-1", "Succeeded", "0"]
