"""The emulator's minimal Microsoft Entra ID: discovery, the token endpoint and its refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import pytest
from aks_arm_emulator import EmulatorConfig
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulator.emulator_harness import CLIENT_ID, TENANT, Emulator, running_emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_emulator(EmulatorConfig(mode="scripted")) as running:
        yield running


async def post_token(emulator: Emulator, form: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{emulator.base_url}/{TENANT}/oauth2/v2.0/token", data=form) as response,
    ):
        return response.status, await response.json()


def assertion(claims: dict[str, Any]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="PS256")


async def test_discovery_document(emulator: Emulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emulator.base_url}/{TENANT}/v2.0/.well-known/openid-configuration") as resp,
    ):
        document = await resp.json()
    base = f"{emulator.base_url}/{TENANT}"
    assert document["issuer"] == f"{base}/v2.0"
    assert document["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert document["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert document["jwks_uri"] == f"{base}/discovery/v2.0/keys"


async def test_issued_token_verifies_against_jwks(emulator: Emulator) -> None:
    status, body = await post_token(
        emulator,
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": "s",
            "scope": "https://example.test/.default",
        },
    )
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emulator.base_url}/{TENANT}/discovery/v2.0/keys") as resp,
    ):
        jwks = await resp.json()
    (jwk,) = jwks["keys"]
    assert jwt.get_unverified_header(body["access_token"])["kid"] == jwk["kid"]
    key = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
    assert isinstance(key, rsa.RSAPublicKey)  # a JWKS holds public keys only
    claims = jwt.decode(
        body["access_token"], key, algorithms=["RS256"], audience="https://example.test"
    )
    assert claims["tid"] == TENANT and claims["appid"] == CLIENT_ID
    assert claims["iss"] == f"{emulator.base_url}/{TENANT}/v2.0"
    assert 3500 < claims["exp"] - time.time() <= 3600
    assert claims["oid"]


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": CLIENT_ID, "scope": "a/.default"}, 401, "invalid_client"),
        (
            {"client_id": CLIENT_ID, "client_secret": "", "scope": "a/.default"},
            401,
            "invalid_client",
        ),
        ({"client_secret": "s", "scope": "a/.default"}, 400, "invalid_request"),
        (
            {"client_id": CLIENT_ID, "client_secret": "s", "scope": "https://a/user.read"},
            400,
            "invalid_scope",
        ),
        (
            {"client_id": CLIENT_ID, "client_secret": "s", "scope": "a/.default b/.default"},
            400,
            "invalid_scope",
        ),
        (
            {
                "client_id": CLIENT_ID,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "not-a-jwt",
                "scope": "a/.default",
            },
            401,
            "invalid_client",
        ),
    ],
)
async def test_refusals(emulator: Emulator, form: dict[str, str], status: int, error: str) -> None:
    got_status, body = await post_token(emulator, {"grant_type": "client_credentials", **form})
    assert got_status == status
    assert body["error"] == error
    assert body["error_description"].startswith("AADSTS")


async def test_password_grant_is_unsupported(emulator: Emulator) -> None:
    status, body = await post_token(
        emulator, {"grant_type": "password", "client_id": CLIENT_ID, "scope": "a/.default"}
    )
    assert status == 400 and body["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        # A federated (workload identity) token must be meant for Entra token exchange.
        (
            {
                "iss": "https://k8s",
                "sub": "system:serviceaccount:a:b",
                "aud": "api://AzureADTokenExchange",
            },
            True,
        ),
        ({"iss": "https://k8s", "sub": "system:serviceaccount:a:b", "aud": "https://k8s"}, False),
        # A certificate assertion (iss == sub == client id) must be addressed to the token URL.
        ({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": "TOKEN_URL"}, True),
        ({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": "https://elsewhere/token"}, False),
    ],
)
async def test_client_assertions(
    emulator: Emulator, claims: dict[str, Any], accepted: bool
) -> None:
    token_url = f"{emulator.base_url}/{TENANT}/oauth2/v2.0/token"
    full = {**claims, "exp": int(time.time()) + 600}
    if full["aud"] == "TOKEN_URL":
        full["aud"] = token_url
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(full),
        "scope": "a/.default",
    }
    status, body = await post_token(emulator, form)
    assert (status == 200) is accepted, body


async def test_expired_assertion_is_refused(emulator: Emulator) -> None:
    expired = assertion(
        {
            "iss": "https://k8s",
            "sub": "s",
            "aud": "api://AzureADTokenExchange",
            "exp": int(time.time()) - 3600,
        }
    )
    status, body = await post_token(
        emulator,
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "scope": "a/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": expired,
        },
    )
    assert status == 401 and body["error"] == "invalid_client"
