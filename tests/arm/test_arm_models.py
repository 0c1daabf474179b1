"""Cluster references, command handles, status parsing and clouds."""

from __future__ import annotations

import pytest

from controller.arm import (
    AKS_AAD_SCOPE,
    AZURE_CHINA_CLOUD,
    AZURE_PUBLIC_CLOUD,
    AZURE_US_GOVERNMENT,
    Cloud,
    ClusterRef,
    CommandResult,
    CommandRunning,
    ManagedCluster,
    ProvisioningState,
)
from controller.arm.models import command_status_from_json
from tests.helpers import SUBSCRIPTION as SUB

RESOURCE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-1/providers/"
    "Microsoft.ContainerService/managedClusters/aks-1"
)


def test_cluster_ref_round_trips_its_resource_id() -> None:
    cluster = ClusterRef.parse(RESOURCE_ID)
    assert cluster == ClusterRef(SUB, "rg-1", "aks-1")
    assert cluster.resource_id == RESOURCE_ID


def test_cluster_ref_parse_accepts_any_case_of_segment_names() -> None:
    cluster = ClusterRef.parse(RESOURCE_ID.lower().replace("aks-1", "AKS-1") + "/")
    assert (cluster.resource_group, cluster.name) == ("rg-1", "AKS-1")
    assert cluster.cache_key == ClusterRef(SUB, "RG-1", "aks-1").cache_key


@pytest.mark.parametrize(
    ("resource_id", "message"),
    [
        ("/subscriptions/x", "not an AKS cluster resource id"),
        (RESOURCE_ID.replace("managedClusters", "virtualMachines"), "not an AKS cluster"),
        (RESOURCE_ID + "/extra", "not an AKS cluster"),
        (RESOURCE_ID.replace(SUB, "not-a-uuid"), "subscription id must be a UUID"),
        (RESOURCE_ID.replace("aks-1", "-aks"), "invalid cluster name"),
        (RESOURCE_ID.replace("aks-1", "a" * 64), "invalid cluster name"),
        (RESOURCE_ID.replace("rg-1", "rg."), "invalid resource group"),
    ],
)
def test_cluster_ref_parse_rejects_with_clear_messages(resource_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterRef.parse(resource_id)


@pytest.mark.parametrize(
    "group", ["rg", "rg-café", "グループ(1)", "Ünïcødé_группа.v2", "a" * 90, "٣"]
)
def test_resource_group_names_are_allowed_as_arm_allows_them(group: str) -> None:
    assert ClusterRef(SUB, group, "aks").resource_group == group


@pytest.mark.parametrize("group", ["", "rg.", "a b", "rg/x", "rg!", "a" * 91, "½", "rg✓"])
def test_resource_group_names_arm_refuses_are_refused(group: str) -> None:
    with pytest.raises(ValueError, match=r"invalid resource group name .* as ARM allows"):
        ClusterRef(SUB, group, "aks")


@pytest.mark.parametrize("name", ["a", "a1", "a_b-c", "A" * 63])
def test_valid_cluster_names(name: str) -> None:
    assert ClusterRef(SUB, "rg", name).name == name


def test_status_parsing_ignores_wrong_types() -> None:
    status = command_status_from_json(
        {"properties": {"provisioningState": "Succeeded", "exitCode": True, "logs": 5}}, None
    )
    assert status == CommandResult("Succeeded", None, None, None, "", None)
    assert not status.succeeded and not status.platform_failed


def test_status_without_properties_is_running() -> None:
    assert command_status_from_json({}, 3.0) == CommandRunning(None, 3.0, None)


def test_canceled_is_terminal_and_a_platform_failure() -> None:
    status = command_status_from_json({"properties": {"provisioningState": "canceled"}}, None)
    assert isinstance(status, CommandResult)
    assert status.platform_failed


def test_provisioning_state_helpers_are_case_insensitive() -> None:
    assert ProvisioningState.matches("sUcCeEdEd", "Succeeded")
    assert not ProvisioningState.matches(None, "Succeeded")
    assert ProvisioningState.is_terminal("FAILED")
    assert not ProvisioningState.is_terminal("Running")
    assert not ProvisioningState.is_terminal(None)


def test_managed_cluster_defaults_when_fields_are_absent() -> None:
    assert ManagedCluster.from_json({"properties": {"aadProfile": "odd"}}) == ManagedCluster(
        aad_managed=False, disable_run_command=False, power_state=None
    )


def test_clouds_and_scopes() -> None:
    assert AZURE_PUBLIC_CLOUD.arm_endpoint == "https://management.azure.com"
    assert AZURE_PUBLIC_CLOUD.arm_scope == "https://management.azure.com/.default"
    assert AZURE_US_GOVERNMENT.authority_host == "https://login.microsoftonline.us/"
    assert AZURE_CHINA_CLOUD.arm_scope == "https://management.chinacloudapi.cn/.default"
    assert Cloud.by_name("azurechinacloud") is AZURE_CHINA_CLOUD
    assert AKS_AAD_SCOPE == "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
    emulator = Cloud.custom("https://127.0.0.1:8443/", "127.0.0.1:8443")
    assert emulator.arm_scope == "https://127.0.0.1:8443/.default"
    assert not emulator.instance_discovery
    with pytest.raises(ValueError, match="unknown Azure cloud"):
        Cloud.by_name("Mars")
    with pytest.raises(ValueError, match="absolute"):
        Cloud.custom("management.azure.com")


def test_provisioning_state_is_arms_own_vocabulary() -> None:
    # ARM's strings, as its API sends them; the operator's State is another enum, not this one.
    assert [str(state) for state in ProvisioningState] == [
        "Running", "Succeeded", "Failed", "Canceled",
    ]  # fmt: skip
    assert {state for state in ProvisioningState if ProvisioningState.is_terminal(state)} == {
        ProvisioningState.SUCCEEDED, ProvisioningState.FAILED, ProvisioningState.CANCELED,
    }  # fmt: skip
