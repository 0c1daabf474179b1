"""`kubectl runcommand schedule` and `trigger`, up to what kubectl would be handed."""

from __future__ import annotations

from typing import Any

import pytest
from kubectl_runcommand import __main__ as plugin
from kubectl_runcommand import schedule
from kubectl_runcommand.fleet import parse_selector
from kubectl_runcommand.kubectl import Kubectl

from controller import vocabulary
from controller.core.schedule_spec import TEMPLATES


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    def create(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        bodies.append({"namespace": self.namespace, **body})
        return body

    monkeypatch.setattr(Kubectl, "create", create)
    return bodies


def test_the_plugin_names_what_the_operator_reads() -> None:
    """The plugin stands alone (the standard library only), so it repeats these names."""
    assert schedule.SCHEDULE_LABEL == vocabulary.SCHEDULE_LABEL
    assert schedule.INSTANTIATE_ANNOTATION == vocabulary.INSTANTIATE_ANNOTATION
    assert dict(TEMPLATES) == schedule.TEMPLATES


def test_schedule_takes_its_name_then_options_then_the_command(
    created: list[dict[str, Any]],
) -> None:
    code = plugin.main(
        ["schedule", "nightly", "-n", "ops", "--cron", "0 3 * * *", "--tz", "Europe/Berlin",
         "--cluster", "sub/rg/aks", "--concurrency-policy", "Forbid", "--starting-deadline",
         "300", "--timeout", "60", "--", "crictl", "rmi", "--prune"]
    )  # fmt: skip
    assert code == 0
    (body,) = created
    assert body["namespace"] == "ops" and body["kind"] == "RunCommandSchedule"
    assert body["spec"] == {
        "schedule": "0 3 * * *",
        "timeZone": "Europe/Berlin",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 300,
        "runCommandTemplate": {
            "cluster": {"subscriptionId": "sub", "resourceGroup": "rg", "name": "aks"},
            "command": "crictl rmi --prune",
            "timeoutSeconds": 60,
        },
    }


def test_schedule_with_a_selector_ticks_a_set(created: list[dict[str, Any]]) -> None:
    assert plugin.main(["schedule", "fleet", "--cron", "@hourly", "--selector", "sub=s1",
                        "--max-concurrency", "25%", "--", "true"]) == 0  # fmt: skip
    (body,) = created
    assert body["spec"]["runCommandSetTemplate"] == {
        "template": {"command": "true"},
        "clusterSelector": parse_selector("sub=s1"),
        "maxConcurrency": "25%",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["schedule", "x", "--cron", "* * * * *", "--tz", "Nowhere/Land", "--cluster", "a/b/c",
         "--", "true"],
        ["schedule", "x", "--cron", "* * * * *", "--cluster", "a/b/c"],  # no command
    ],
)  # fmt: skip
def test_schedule_refuses_what_it_can_before_the_api_server(
    argv: list[str], created: list[dict[str, Any]]
) -> None:
    assert plugin.main(argv) == 2
    assert created == []


def test_a_manual_child_is_named_so_it_never_clashes_with_a_tick() -> None:
    name = schedule.manual_child_name("nightly", 1_764_547_200.9)
    prefix, suffix = name.rsplit("-", 1)
    assert prefix == "nightly" and int(suffix[1:], 36) == 1_764_547_200
    assert not suffix.isdigit()  # a tick's suffix is all digits
    assert len(suffix) <= 8  # within the CRD's name limits (52 + 1 + 8 <= 63)


def test_trigger_builds_a_child_of_the_schedule_from_its_template() -> None:
    template = {"cluster": {"resourceId": "/subscriptions/x"}, "command": "date"}
    body = schedule.trigger_body(
        {"metadata": {"name": "nightly", "uid": "u-1"}, "spec": {"runCommandTemplate": template}},
        1_764_547_200,
    )
    assert body["kind"] == "RunCommand" and body["spec"] == template
    assert body["metadata"]["labels"] == {vocabulary.SCHEDULE_LABEL: "nightly"}
    assert body["metadata"]["annotations"] == {vocabulary.INSTANTIATE_ANNOTATION: "manual"}
    (owner,) = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RunCommandSchedule", "u-1", True)
    with pytest.raises(ValueError, match="no single template"):
        schedule.trigger_body({"metadata": {"name": "x", "uid": "u"}, "spec": {}}, 0)
