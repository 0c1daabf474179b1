"""RunSpec.parse and run_hash: what defines a run, and which specs cannot run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.arm import ClusterRef
from controller.core import InvalidSpec, RunSpec
from controller.core.spec import FilesSource, run_hash

from .core_helpers import CLUSTER, RESOURCE_ID, RG, SUB, spec_dict


def test_run_hash_is_equal_for_a_reapplied_spec_whatever_the_key_order() -> None:
    spec = spec_dict(runToken="1", files={"b.yaml": "b", "a.yaml": "a"}, retries=2)
    reapplied = json.loads(json.dumps(dict(reversed(list(spec.items())))))
    reapplied["files"] = {"a.yaml": "a", "b.yaml": "b"}

    assert list(reapplied) != list(spec)
    assert run_hash(reapplied) == run_hash(spec)
    assert len(run_hash(spec)) == 16
    int(run_hash(spec), 16)  # hex


@pytest.mark.parametrize(
    "change",
    [
        {"runToken": "2"},
        {"command": "kubectl delete -f ns.yaml"},
        {"files": {"ns.yaml": "kind: Namespace\n"}},
    ],
    ids=["runToken", "command", "files"],
)
def test_run_hash_changes_with_what_runs(change: dict[str, Any]) -> None:
    before = spec_dict(runToken="1", files={"ns.yaml": "kind: Namespace"})
    assert run_hash({**before, **change}) != run_hash(before)


@pytest.mark.parametrize(
    "change",
    [
        {"suspend": True},
        {"ttlSecondsAfterFinished": 60},
        {"suspend": True, "ttlSecondsAfterFinished": 0},
    ],
    ids=["suspend", "ttl", "both"],
)
def test_run_hash_ignores_fields_that_do_not_define_a_run(change: dict[str, Any]) -> None:
    before = spec_dict(runToken="1", suspend=False)
    assert run_hash({**before, **change}) == run_hash(before)
    assert RunSpec.parse({**before, **change}).run_hash == RunSpec.parse(before).run_hash


def test_parse_subscription_form_applies_defaults() -> None:
    raw = spec_dict()
    spec = RunSpec.parse(raw)

    assert spec == RunSpec(
        cluster=ClusterRef(SUB, RG, CLUSTER),
        cloud=None,
        command="kubectl apply -f ns.yaml",
        files={},
        files_from=(),
        context=None,
        credentials_secret=None,
        cluster_token="Auto",
        timeout_seconds=None,
        retries=3,
        run_token=None,
        suspend=False,
        ttl_seconds_after_finished=None,
        at_least_once=False,
        run_hash=run_hash(raw),
        legacy_run_hash=spec.legacy_run_hash,
    )


def test_parse_resource_id_form_with_cloud_and_lowercase_segments() -> None:
    resource_id = RESOURCE_ID.replace("resourceGroups", "resourcegroups")
    spec = RunSpec.parse(
        {"cluster": {"resourceId": resource_id, "cloud": "AzureUSGovernment"}, "command": "id"}
    )

    assert spec.cluster == ClusterRef(SUB, RG, CLUSTER)
    assert spec.cluster.resource_id == RESOURCE_ID
    assert spec.cloud == "AzureUSGovernment"
    assert spec.command == "id"


def test_parse_files_from_configmap_and_secret_refs() -> None:
    spec = RunSpec.parse(
        spec_dict(
            files={"run.sh": "echo hi"},
            filesFrom=[
                {
                    "configMapRef": {"name": "manifests"},
                    "keys": ["ns.yaml", "rbac.yaml"],
                    "pathPrefix": "deploy/",
                },
                {"secretRef": {"name": "kubeconfigs"}},
            ],
        )
    )

    assert spec.files == {"run.sh": "echo hi"}
    assert spec.files_from == (
        FilesSource("ConfigMap", "manifests", ("ns.yaml", "rbac.yaml"), "deploy/"),
        FilesSource("Secret", "kubeconfigs", (), ""),
    )


def test_parse_every_run_control_field() -> None:
    spec = RunSpec.parse(
        spec_dict(
            context="UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
            credentials={"secretRef": {"name": "team-a-identity"}},
            clusterToken="Never",
            timeoutSeconds=900,
            retries=5,
            runToken="2025-03-01",
            suspend=True,
            ttlSecondsAfterFinished=3600,
            submitPolicy="AtLeastOnce",
        )
    )

    assert (
        spec.context,
        spec.credentials_secret,
        spec.cluster_token,
        spec.timeout_seconds,
        spec.retries,
        spec.run_token,
        spec.suspend,
        spec.ttl_seconds_after_finished,
        spec.at_least_once,
    ) == (
        "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
        "team-a-identity",
        "Never",
        900,
        5,
        "2025-03-01",
        True,
        3600,
        True,
    )
    assert RunSpec.parse(spec_dict(submitPolicy="AtMostOnce")).at_least_once is False


@pytest.mark.parametrize(
    "raw",
    [
        {"command": "id"},
        {"cluster": {"subscriptionId": SUB, "resourceGroup": RG, "name": CLUSTER}},
        spec_dict(command="   \n"),
        spec_dict(cluster={"subscriptionId": "not-a-uuid", "resourceGroup": RG, "name": CLUSTER}),
        spec_dict(cluster={"subscriptionId": SUB, "resourceGroup": RG, "name": "-bad-"}),
        spec_dict(cluster={"resourceId": f"/subscriptions/{SUB}/resourceGroups/{RG}"}),
        spec_dict(cluster={"subscriptionId": SUB, "name": CLUSTER}),
        spec_dict(filesFrom=[{"keys": ["a"]}]),
        spec_dict(retries="many"),
        spec_dict(cluster="aks-blue"),
    ],
    ids=[
        "no-cluster",
        "no-command",
        "blank-command",
        "bad-subscription",
        "bad-cluster-name",
        "truncated-resource-id",
        "no-resource-group",
        "filesFrom-without-ref",
        "retries-not-a-number",
        "cluster-not-an-object",
    ],
)
def test_parse_refuses_specs_that_cannot_run(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec, match=r"^invalid spec: "):
        RunSpec.parse(raw)


def test_invalid_spec_is_a_value_error_chained_to_its_cause() -> None:
    with pytest.raises(ValueError) as caught:
        RunSpec.parse(spec_dict(command=""))
    assert isinstance(caught.value, InvalidSpec)
    assert str(caught.value) == "invalid spec: spec.command is blank"
    assert isinstance(caught.value.__cause__, ValueError)


def test_the_crd_maxima_are_the_ones_the_core_clamps_to() -> None:
    from pathlib import Path

    import yaml

    from controller.core.spec import MAX_RETRIES, MAX_TIMEOUT_SECONDS, MAX_TTL_SECONDS

    crd = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "crds" / "aks.gitops.dev_runcommands.yaml"
        ).read_text()
    )
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    fields = spec["properties"]
    assert fields["timeoutSeconds"]["maximum"] == MAX_TIMEOUT_SECONDS
    assert fields["ttlSecondsAfterFinished"]["maximum"] == MAX_TTL_SECONDS
    assert fields["retries"]["maximum"] == MAX_RETRIES
    assert RunSpec.parse(spec_dict(timeoutSeconds=10**18)).timeout_seconds == MAX_TIMEOUT_SECONDS
