"""What `az` reads before any cluster call (emulator/aks_arm_emulator/tenancy.py): the cloud's
metadata endpoints, and the subscriptions and tenants lists, read with the official SDK
(azure-mgmt-resource's SubscriptionClient, the client az itself uses) and azure-identity; and
the context az sends. The real az CLI against the emulator is `make test-az` (tests/az/)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from aks_arm_emulator import EmulatorConfig
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.resource import SubscriptionClient

from tests.emulator.emulator_harness import (
    CLIENT_ID,
    SUB,
    TENANT,
    Emulator,
    arm_token,
    call,
    cluster,
    running_emulator,
    submit,
    zip_context,
)
from tests.helpers import OTHER_SUBSCRIPTION as OTHER_SUB

OTHER_TENANT = "0b1c2d3e-0000-4000-8000-00000000000a"
# The api-versions az 2.91 sends (azure-cli: cloud register, MGMT_RESOURCE_SUBSCRIPTIONS).
METADATA_API = "api-version=2022-09-01"
SUBSCRIPTIONS_API = "api-version=2022-12-01"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(
        clusters=(cluster(), cluster("aks2"), cluster("aks3", subscription_id=OTHER_SUB.upper())),
        mode="scripted",
    )
    with running_emulator(config, tmp_path_factory.mktemp("state")) as running:
        yield running


def subscription_client(
    emulator: Emulator, tenant: str = TENANT, scope: str | None = None
) -> SubscriptionClient:
    assert emulator.ca_file is not None
    credential = ClientSecretCredential(
        tenant,
        CLIENT_ID,
        "the-secret",
        authority=emulator.base_url.removeprefix("https://"),
        disable_instance_discovery=True,
        connection_verify=str(emulator.ca_file),
    )
    return SubscriptionClient(
        credential,
        base_url=emulator.base_url,
        credential_scopes=[scope or emulator.base_url + "/.default"],
        connection_verify=str(emulator.ca_file),
    )


async def test_metadata_endpoints_name_the_emulator_as_arm_and_login(emulator: Emulator) -> None:
    """The fields `az cloud register` maps (azure-cli core/cloud.py, _arm_to_cli_mapper): the
    token audience az asks for must be one the emulator's ARM routes accept."""
    status, _, body = await call(
        emulator, "GET", f"{emulator.base_url}/metadata/endpoints?{METADATA_API}"
    )
    assert status == 200, body
    assert body["resourceManager"] == f"{emulator.base_url}/"
    assert body["authentication"]["loginEndpoint"] == emulator.base_url
    (audience,) = body["authentication"]["audiences"]
    assert audience == f"{emulator.base_url}/"
    assert isinstance(body["name"], str) and isinstance(body["suffixes"], dict)
    client = subscription_client(emulator, scope=audience + ".default")  # az's scope for it
    assert [s.subscription_id for s in client.subscriptions.list()]


async def test_metadata_endpoints_need_an_api_version(emulator: Emulator) -> None:
    status, _, body = await call(emulator, "GET", f"{emulator.base_url}/metadata/endpoints")
    assert status == 400
    assert body["error"]["code"] == "MissingApiVersionParameter"


def test_subscriptions_list_holds_the_configured_subscriptions_in_the_callers_tenant(
    emulator: Emulator,
) -> None:
    for tenant in (TENANT, OTHER_TENANT):
        listed = list(subscription_client(emulator, tenant).subscriptions.list())
        assert [s.subscription_id for s in listed] == sorted([SUB, OTHER_SUB])
        assert {s.id for s in listed} == {f"/subscriptions/{SUB}", f"/subscriptions/{OTHER_SUB}"}
        assert {s.tenant_id for s in listed} == {tenant}
        assert {s.state for s in listed} == {"Enabled"}
        assert all(s.display_name for s in listed)


def test_subscription_get_finds_a_configured_subscription_only(emulator: Emulator) -> None:
    client = subscription_client(emulator)
    found = client.subscriptions.get(OTHER_SUB)
    assert found.subscription_id == OTHER_SUB and found.tenant_id == TENANT
    with pytest.raises(ResourceNotFoundError) as missing:
        client.subscriptions.get("12345678-1234-1234-1234-123456789012")
    assert missing.value.error is not None
    assert missing.value.error.code == "SubscriptionNotFound"
    with pytest.raises(HttpResponseError) as malformed:
        client.subscriptions.get("not-a-uuid")
    assert malformed.value.status_code == 400


def test_tenants_list_is_the_callers_tenant(emulator: Emulator) -> None:
    (tenant,) = subscription_client(emulator, OTHER_TENANT).tenants.list()
    assert tenant.tenant_id == OTHER_TENANT
    assert tenant.id == f"/tenants/{OTHER_TENANT}"
    assert tenant.tenant_category == "Home"


async def test_the_lists_need_an_arm_token(emulator: Emulator) -> None:
    for path in ("/subscriptions", f"/subscriptions/{SUB}", "/tenants"):
        url = f"{emulator.base_url}{path}?{SUBSCRIPTIONS_API}"
        status, headers, body = await call(emulator, "GET", url)
        assert status == 401, path
        assert body["error"]["code"] == "AuthenticationFailed"
        assert "WWW-Authenticate" in headers
        status, _, body = await call(emulator, "GET", url, token=await arm_token(emulator))
        assert status == 200, (path, body)


async def test_cluster_routes_under_a_subscription_are_unchanged(emulator: Emulator) -> None:
    token = await arm_token(emulator)
    status, _, body = await call(
        emulator, "GET", f"{emulator.cluster_url()}?api-version=2024-09-01", token=token
    )
    assert status == 200 and body["name"] == "aks1"
    status, _, body = await call(
        emulator,
        "POST",
        f"{emulator.base_url}/subscriptions/{SUB}?{SUBSCRIPTIONS_API}",
        token=token,
    )
    assert status == 404 and body["error"]["code"] == "InvalidResourceType"


async def test_a_context_in_lines_as_az_encodes_it_is_accepted(emulator: Emulator) -> None:
    """az's `--file` context is `base64.encodebytes` of the zip (azure-cli acs/custom.py,
    _get_command_context): 76-character lines, each ending in a newline, which the service
    takes (az's --file works against it); characters that are not base64 stay refused."""
    raw = base64.b64decode(zip_context({"ns.yaml": b"apiVersion: v1\n" * 20}))
    in_lines = base64.encodebytes(raw).decode()
    assert in_lines.count("\n") > 1
    token = await arm_token(emulator)
    status, _, body = await submit(emulator, token, body={"command": "true", "context": in_lines})
    assert status == 202, body
    crlf = in_lines.replace("\n", "\r\n")
    status, _, body = await submit(emulator, token, body={"command": "true", "context": crlf})
    assert status == 202, body
    status, _, body = await submit(
        emulator, token, body={"command": "true", "context": in_lines.replace("\n", " ")}
    )
    assert status == 400 and body["error"]["message"] == "context is not valid base64"
