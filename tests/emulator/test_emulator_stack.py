"""The helpers end-to-end tests drive the emulator process with (tests/stack.py): POST log,
fault switches and token revocation, against the real `aks-arm-emulator` process."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESOURCE_GROUP,
    SUBSCRIPTION_ID,
    TENANT_ID,
    Emulator,
    cluster_entry,
    emulator_config,
    running_emulator,
)

pytestmark = pytest.mark.e2e  # the emulator (and the operator) as processes


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    directory = tmp_path_factory.mktemp("stack-emulator")
    config = emulator_config(
        [cluster_entry("aks-stack", Path("/nonexistent/kubeconfig"))],
        mode="scripted",
        signin={"knownTenants": [TENANT_ID], "clientSecrets": {CLIENT_ID: CLIENT_SECRET}},
    )
    with running_emulator(config, directory) as running:
        yield running


def send(emulator: Emulator, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    request = urllib.request.Request(url, method=method, **kw)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def token(emulator: Emulator, secret: str = CLIENT_SECRET) -> tuple[int, Any]:
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "scope": f"{emulator.base_url}/.default",
        }
    ).encode()
    return send(emulator, "POST", f"{emulator.base_url}/{TENANT_ID}/oauth2/v2.0/token", data=form)


def run_command(emulator: Emulator, access_token: str, correlation: str) -> int:
    url = (
        f"{emulator.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.ContainerService/managedClusters/aks-stack/runCommand"
        "?api-version=2024-09-01"
    )
    status, _ = send(
        emulator,
        "POST",
        url,
        data=b'{"command": "true"}',
        headers={
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
            "x-ms-correlation-request-id": correlation,
        },
    )
    return status


def test_posts_and_fault_switches_between_phases(emulator: Emulator) -> None:
    emulator.clear_posts()
    status, body = token(emulator)
    assert status == 200
    access = body["access_token"]
    assert run_command(emulator, access, "phase-1") == 202

    knobs = emulator.set_faults(serverErrorRate=1.0)
    assert knobs["serverErrorRate"] == 1.0 and emulator.faults() == knobs
    assert run_command(emulator, access, "phase-2") == 500
    emulator.set_faults(serverErrorRate=0)
    assert run_command(emulator, access, "phase-3") == 202

    posts = emulator.posts()
    assert [(p["correlationId"], p["outcome"]) for p in posts] == [
        ("phase-1", "accepted"),
        ("phase-2", "serverError"),
        ("phase-3", "accepted"),
    ]
    started = emulator.started_posts()
    assert [p["correlationId"] for p in started] == ["phase-1", "phase-3"]
    assert {p["commandId"] for p in started} <= {s["commandId"] for s in emulator.submissions()}


def test_set_faults_refusal_is_a_value_error(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"400 faults\.throttleRate must be between 0 and 1"):
        emulator.set_faults(throttleRate=3)
    with pytest.raises(ValueError, match="unknown key"):
        emulator.set_faults(server_error_rate=0.1)


def test_revoke_tokens(emulator: Emulator) -> None:
    old = token(emulator)[1]["access_token"]
    assert emulator.revoke_tokens() >= 1
    assert run_command(emulator, old, "revoked") == 401
    assert run_command(emulator, token(emulator)[1]["access_token"], "fresh") == 202


def test_signin_section_reaches_the_process(emulator: Emulator) -> None:
    status, body = token(emulator, secret="not-the-secret")
    assert status == 401 and body["error_codes"] == [7000215]
