"""Who may run what, where: the operator-identity allowance and RunCommandPolicy, as pure
decisions. The admission policy's CEL implements the same rules (tests/operator/test_policy_e2e.py
tries both layers on the same cases)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.core import InputFailure, Reason
from controller.core.policy import (
    LabelSelector,
    OperatorIdentityAllowance,
    RunCommandPolicy,
    check_operator_identity,
    check_policies,
    glob_matches,
)
from tests.helpers import OTHER_SUBSCRIPTION as OTHER_SUB

from .core_helpers import CLUSTER, RG, SUB, make_spec


def policy(name: str = "team-a", **spec: Any) -> RunCommandPolicy:
    return RunCommandPolicy.from_object(
        {"metadata": {"name": name}, "spec": {"namespaceSelector": {}, **spec}}
    )


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("*", "anything", True),
        ("rg-*", "RG-Prod", True),
        ("rg-*", "prod-rg", False),
        ("aks-blue", "AKS-BLUE", True),
        ("aks-blue", "aks-blue2", False),
    ],
)
def test_glob_patterns(pattern: str, value: str, matches: bool) -> None:
    assert glob_matches(pattern, value) is matches


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("team=a", {"team": "a"}, True),
        ("team=a", {"team": "b"}, False),
        ("team!=a", {}, True),
        ("team!=a", {"team": "a"}, False),
        ("team", {"team": ""}, True),
        ("!team", {"team": "a"}, False),
        ("team=a,tier!=prod", {"team": "a", "tier": "prod"}, False),
        ("", {}, True),
    ],
)
def test_label_selector_syntax(text: str, labels: dict[str, str], matches: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is matches


def test_label_selector_objects_as_in_the_kubernetes_api() -> None:
    selector = LabelSelector.from_object(
        {
            "matchLabels": {"team": "a"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["dev", "test"]},
                {"key": "frozen", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches({"team": "a", "tier": "dev"})
    assert not selector.matches({"team": "a", "tier": "prod"})
    assert not selector.matches({"team": "a", "tier": "dev", "frozen": "yes"})


def test_operator_identity_is_refused_by_default_and_says_how_to_allow_it() -> None:
    with pytest.raises(InputFailure) as refused:
        check_operator_identity(OperatorIdentityAllowance(), "team-a", {}, "creds")
    assert refused.value.code == Reason.POLICY_DENIED
    assert not refused.value.retryable
    assert "--operator-identity-namespaces" in refused.value.message
    assert "team-a" in refused.value.message


Namespace = tuple[str, dict[str, str]]


@pytest.mark.parametrize(
    ("allowance", "allowed", "refused"),
    [
        (
            OperatorIdentityAllowance(frozenset({"team-a"})),
            [("team-a", {})],
            [("team-b", {"platform": "true"})],
        ),
        (OperatorIdentityAllowance(frozenset({"*"})), [("team-a", {}), ("kube-system", {})], []),
        (
            OperatorIdentityAllowance(selector=LabelSelector.parse("platform=true")),
            [("team-b", {"platform": "true"})],
            [("team-a", {}), ("team-a", {"platform": "false"})],
        ),
    ],
    ids=["by-name", "all", "by-label"],
)
def test_operator_identity_allowed_by_name_star_or_label(
    allowance: OperatorIdentityAllowance, allowed: list[Namespace], refused: list[Namespace]
) -> None:
    for namespace, labels in allowed:
        assert allowance.allows(namespace, labels)
        check_operator_identity(allowance, namespace, labels, "creds")  # raises when refused
    for namespace, labels in refused:
        assert not allowance.allows(namespace, labels)
        with pytest.raises(InputFailure) as caught:
            check_operator_identity(allowance, namespace, labels, "creds")
        assert caught.value.code == Reason.POLICY_DENIED


def test_without_a_policy_that_selects_the_namespace_a_refusable_run_is_allowed() -> None:
    """The same run that a policy selecting every namespace refuses passes with no policy, and
    with one whose namespaceSelector leaves the namespace out."""
    clusters = [{"subscriptionId": OTHER_SUB, "resourceGroup": "*", "name": "*"}]
    labels = {"team": "a"}
    with pytest.raises(InputFailure):
        check_policies([policy(clusters=clusters)], "team-a", labels, make_spec(), "ClientSecret")
    check_policies([], "team-a", labels, make_spec(), "ClientSecret")
    elsewhere = policy(clusters=clusters, namespaceSelector={"matchLabels": {"team": "b"}})
    check_policies([elsewhere], "team-a", labels, make_spec(), "ClientSecret")


def test_cluster_outside_the_allowance_is_refused_naming_the_rule() -> None:
    rules = policy(clusters=[{"subscriptionId": OTHER_SUB, "resourceGroup": "*", "name": "*"}])
    with pytest.raises(InputFailure) as refused:
        check_policies([rules], "team-a", {}, make_spec(), "ClientSecret")
    assert refused.value.code == Reason.POLICY_DENIED
    assert "RunCommandPolicy team-a rule spec.clusters" in refused.value.message
    assert SUB in refused.value.message


def test_cluster_inside_the_allowance_is_allowed() -> None:
    rules = policy(
        clusters=[{"subscriptionId": SUB.upper(), "resourceGroup": "rg-*", "name": CLUSTER}]
    )
    check_policies([rules], "team-a", {}, make_spec(), "ClientSecret")
    assert RG.startswith("rg-")


def test_an_empty_cluster_list_allows_nothing() -> None:
    with pytest.raises(InputFailure, match=r"spec\.clusters"):
        check_policies([policy(clusters=[])], "team-a", {}, make_spec(), "ClientSecret")


def test_secret_files_refused_when_the_policy_says_so() -> None:
    spec = make_spec(filesFrom=[{"secretRef": {"name": "kubeconfig"}}])
    with pytest.raises(InputFailure, match=r"spec\.allowSecretFiles"):
        check_policies([policy(allowSecretFiles=False)], "team-a", {}, spec, "ClientSecret")
    configmaps = make_spec(filesFrom=[{"configMapRef": {"name": "manifests"}}])
    check_policies([policy(allowSecretFiles=False)], "team-a", {}, configmaps, "ClientSecret")


def test_identity_mode_outside_the_allowance_is_refused() -> None:
    rules = policy(identities=["ClientCertificate"])
    with pytest.raises(InputFailure, match=r"spec\.identities does not allow ClientSecret"):
        check_policies([rules], "team-a", {}, make_spec(), "ClientSecret")
    check_policies([rules], "team-a", {}, make_spec(), "ClientCertificate")


def test_only_policies_selecting_the_namespace_apply_and_all_of_them_must_allow() -> None:
    team_b_only = RunCommandPolicy.from_object(
        {"metadata": {"name": "team-b"},
         "spec": {"namespaceSelector": {"matchLabels": {"team": "b"}}, "clusters": []}}
    )  # fmt: skip
    everyone = policy("everyone", identities=["ClientSecret"])
    check_policies([team_b_only, everyone], "team-a", {"team": "a"}, make_spec(), "ClientSecret")
    with pytest.raises(InputFailure, match="RunCommandPolicy team-b"):
        check_policies([team_b_only, everyone], "b", {"team": "b"}, make_spec(), "ClientSecret")
    with pytest.raises(InputFailure, match="RunCommandPolicy everyone"):
        check_policies([everyone], "team-a", {}, make_spec(), "OperatorIdentity")
