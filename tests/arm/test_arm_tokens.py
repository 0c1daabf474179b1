"""TokenSource: every get_token failure classified, and a refused token dropped by replacing the
credential that issued it."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from arm_doubles import ARM_TOKEN, FakeCredential, FakeCredentials, entra_error
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseTimeoutError,
)
from azure.identity import CredentialUnavailableError

from controller.arm import CredentialError
from controller.arm.tokens import Token, TokenSource

SCOPE = "https://arm.test/.default"


@pytest.mark.parametrize(
    ("raised", "code", "retryable"),
    [
        (entra_error(401, "AADSTS7000215: Invalid client secret"), "AuthenticationFailed", False),
        (entra_error(400, "AADSTS90002: Tenant not found"), "AuthenticationFailed", False),
        (entra_error(503, "AADSTS50196: try later"), "TokenEndpointUnreachable", True),
        (entra_error(429, "AADSTS50196: slow down"), "TokenEndpointUnreachable", True),
        (ServiceRequestError("Cannot connect to host"), "TokenEndpointUnreachable", True),
        (ServiceResponseTimeoutError("Timeout on reading"), "TokenEndpointUnreachable", True),
        (CredentialUnavailableError("no token file"), "CredentialUnavailable", True),
        # azure-identity attaches no response when it cannot read the answer (a proxy's page).
        (
            ClientAuthenticationError("Unexpected response from Microsoft Entra ID: <html>"),
            "TokenRequestFailed",
            True,
        ),
        (ValueError("not JSON"), "TokenRequestFailed", True),
        (KeyError("access_token"), "TokenRequestFailed", True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
async def test_every_get_token_failure_is_a_classified_credential_error(
    raised: Exception, code: str, retryable: bool
) -> None:
    source = TokenSource(FakeCredential(raised))
    with pytest.raises(CredentialError) as caught:
        await source.get(SCOPE)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.__cause__ is raised
    assert "FakeCredential" in caught.value.message and SCOPE in caught.value.message


async def test_a_refused_token_replaces_the_credential_and_closes_the_old_one() -> None:
    credentials = FakeCredentials()
    source = TokenSource(factory=credentials)
    assert credentials.built == []  # built on first use

    first = await source.get(SCOPE)
    assert (await source.get(SCOPE)) == first  # the credential's cache
    await source.refused(first)
    second = await source.get(SCOPE)

    assert (first.text, second.text) == (f"{ARM_TOKEN}-1", f"{ARM_TOKEN}-2")
    assert [credential.closed for credential in credentials.built] == [True, False]
    await source.aclose()
    assert credentials.built[1].closed


async def test_concurrent_refusals_of_one_token_replace_the_credential_once() -> None:
    credentials = FakeCredentials()
    source = TokenSource(factory=credentials)
    token = await source.get(SCOPE)

    await asyncio.gather(*(source.refused(token) for _ in range(5)))
    fresh = await source.get(SCOPE)
    await source.refused(token)  # late news about the old token changes nothing

    assert len(credentials.built) == 2
    assert (await source.get(SCOPE)) == fresh
    await source.aclose()


class HeldCredential(FakeCredential):
    """get_token waits until released, like a token request on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        await self.release.wait()
        return await super().get_token(*scopes, **kwargs)


async def test_a_get_in_flight_keeps_its_credential_open_until_it_returns() -> None:
    credentials: list[FakeCredential] = []

    def factory() -> FakeCredential:
        credentials.append(HeldCredential() if not credentials else FakeCredential())
        return credentials[-1]

    source = TokenSource(factory=factory)
    slow = asyncio.create_task(source.get(SCOPE))
    await asyncio.sleep(0)
    held = credentials[0]
    assert isinstance(held, HeldCredential)
    # Another request met a 401 with a token of this generation and replaced the credential.
    await source.refused(Token("any", generation=1))
    assert not held.closed  # its get_token is still running

    held.release.set()
    await slow
    assert held.closed
    await source.get(SCOPE)
    assert len(credentials) == 2
    await source.aclose()


async def test_a_borrowed_credential_is_neither_replaced_nor_closed() -> None:
    credential = FakeCredential()
    source = TokenSource(credential)
    token = await source.get(SCOPE)
    await source.refused(token)
    assert (await source.get(SCOPE)).text == ARM_TOKEN
    await source.aclose()
    assert not credential.closed


async def test_a_factory_that_fails_raises_from_get_and_is_tried_again() -> None:
    attempts: list[int] = []

    def factory() -> FakeCredential:
        attempts.append(1)
        raise CredentialError("garbage PEM", code=CredentialError.INVALID_CREDENTIALS)

    source = TokenSource(factory=factory)
    for _ in range(2):
        with pytest.raises(CredentialError, match="garbage PEM"):
            await source.get(SCOPE)
    assert len(attempts) == 2
    await source.aclose()


def test_token_repr_hides_the_token_and_exactly_one_source_is_required() -> None:
    assert ARM_TOKEN not in repr(Token(ARM_TOKEN, 3))
    with pytest.raises(ValueError, match="exactly one"):
        TokenSource()
    with pytest.raises(ValueError, match="exactly one"):
        TokenSource(FakeCredential(), factory=FakeCredentials())


async def test_a_token_is_kept_until_five_minutes_before_it_expires_and_dropped_when_refused() -> (
    None
):
    """Like azure-core's bearer-token policy: one get_token per token lifetime, not per request;
    a token close to expiry, or one ARM refused, is fetched again."""

    class Counting:
        def __init__(self, lifetime: float) -> None:
            self.calls, self.lifetime = 0, lifetime

        async def get_token(self, *scopes: str, **_: object) -> AccessToken:
            self.calls += 1
            return AccessToken(f"t{self.calls}", int(time.time() + self.lifetime))

        async def close(self) -> None:
            pass

    long_lived = Counting(3600)
    source = TokenSource(cast(AsyncTokenCredential, long_lived))
    first = await source.get("scope/.default")
    assert (await source.get("scope/.default")).text == first.text == "t1"
    assert long_lived.calls == 1
    await source.refused(first)  # borrowed: asked again, not served from the cache
    assert (await source.get("scope/.default")).text == "t2"

    short_lived = Counting(200)  # under the 5-minute margin: never served from the cache
    source = TokenSource(cast(AsyncTokenCredential, short_lived))
    await source.get("scope/.default")
    await source.get("scope/.default")
    assert short_lived.calls == 2
