"""Issue 24 in the fleet core: a child held by another owner (a set recreated over its
predecessor's children), adoption of orphans, a set that matches nothing, and set events."""

from __future__ import annotations

from typing import Any

from controller.arm.models import ClusterRef
from controller.core.adoption import Foreign, adoptable
from controller.core.set_children import Child, SetObservation, child_name
from controller.core.set_round import plan_set
from controller.core.set_spec import SetSpec
from controller.core.spec import RunSpec
from controller.vocabulary import ROUND_LABEL, SET_LABEL, TEMPLATE_LABEL, Reason
from tests.helpers import SUBSCRIPTION as SUB

NOW = "2026-01-01T00:00:00Z"
FINAL = ("Succeeded", "Failed")  # a round that is over


def ref(name: str) -> ClusterRef:
    return ClusterRef(SUB, "rg", name)


def spec_of(names: list[str], **extra: Any) -> SetSpec:
    return SetSpec.parse(
        {
            "template": {"command": "echo hi"},
            "clusters": [{"resourceId": ref(n).resource_id} for n in names],
            **extra,
        }
    )


def seen(spec: SetSpec, **fields: Any) -> SetObservation:
    base = SetObservation("fleet", spec, {}, 1, [], None, NOW)
    return SetObservation(
        base.name,
        spec,
        fields.get("status", {}),
        1,
        fields.get("children", []),
        None,
        NOW,
        foreign=fields.get("foreign", ()),
    )


def held(name: str, owner: str | None = "RunCommandSet/fleet", template_key: str = "x") -> Foreign:
    return Foreign(name=name, owner=owner, template_key=template_key, resource_version="7")


def test_a_child_held_by_another_owner_is_not_created_and_the_set_says_why() -> None:
    spec = spec_of(["a", "b"])
    blocked = child_name("fleet", ref("a"))
    decision = plan_set(seen(spec, foreign=(held(blocked),)))
    assert [w.name for w in decision.writes] == [child_name("fleet", ref("b"))]
    status = decision.status
    assert status["reason"] == Reason.CHILD_OWNED_ELSEWHERE
    assert blocked in status["message"] and "RunCommandSet/fleet" in status["message"]
    entry = next(e for e in status["clusters"] if e["child"] == blocked)
    assert entry["state"] == "Blocked" and entry["reason"] == Reason.CHILD_OWNED_ELSEWHERE
    assert decision.status["state"] not in FINAL and decision.blocked == (blocked,)
    assert any(e.reason == Reason.CHILD_OWNED_ELSEWHERE for e in decision.events)
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Reconciling"] == "True"


def test_an_orphan_of_the_same_template_is_adopted_and_others_are_not() -> None:
    spec = spec_of(["a"])
    name = child_name("fleet", ref("a"))
    assert adoptable(held(name, owner=None, template_key=spec.template_key), spec.template_key)
    assert not adoptable(held(name, owner=None, template_key="other"), spec.template_key)
    owned = held(name, owner="RunCommandSet/fleet", template_key=spec.template_key)
    assert not adoptable(owned, spec.template_key)  # a live owner: wait for it to go


def test_children_carry_the_template_key_that_adoption_compares() -> None:
    spec = spec_of(["a"])
    write = plan_set(seen(spec)).writes[0]
    assert write.labels[TEMPLATE_LABEL] == spec.template_key
    same_template_new_token = spec_of(["a"], runToken="2")
    assert same_template_new_token.template_key == spec.template_key
    assert same_template_new_token.round_key != spec.round_key


def test_a_selector_matching_nothing_ends_the_round_and_says_to_bump_the_run_token() -> None:
    spec = SetSpec.parse(
        {"template": {"command": "true"}, "clusterSelector": {"subscriptions": [SUB]}}
    )
    decision = plan_set(SetObservation("fleet", spec, {}, 1, [], [], NOW))
    status = decision.status
    assert decision.status["state"] in FINAL
    assert (status["state"], status["reason"]) == ("Failed", Reason.NO_TARGETS)
    assert "runToken" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "True"


def test_with_follow_new_clusters_an_empty_selector_keeps_looking() -> None:
    spec = SetSpec.parse(
        {
            "template": {"command": "true"},
            "clusterSelector": {"subscriptions": [SUB]},
            "followNewClusters": True,
        }
    )
    decision = plan_set(SetObservation("fleet", spec, {}, 1, [], [], NOW))
    assert decision.status["state"] == "Pending"


def test_a_round_ending_past_max_failures_posts_a_warning_event_once() -> None:
    spec = spec_of(["a", "b"], maxConcurrency=1, maxFailures=0)
    first = plan_set(seen(spec))
    assert [e.reason for e in first.events] == [Reason.ROUND_STARTED]
    children = []
    for write in first.writes:
        status: dict[str, Any] = {}
        if not write.spec["suspend"]:
            status = {"state": "Failed", "specHash": RunSpec.parse(write.spec).run_hash}
        children.append(Child(write.name, dict(write.labels), dict(write.spec), status))
    ended = plan_set(seen(spec, children=children, status=first.status))
    assert ended.status["reason"] == Reason.MAX_FAILURES_EXCEEDED
    assert [(e.type, e.reason) for e in ended.events] == [("Warning", Reason.MAX_FAILURES_EXCEEDED)]
    again = plan_set(seen(spec, children=children, status=ended.status))
    assert again.events == ()  # nothing changed: no second event
    assert children[0].labels[SET_LABEL] == "fleet" and ROUND_LABEL in children[0].labels
