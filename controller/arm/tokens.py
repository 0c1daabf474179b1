"""Access tokens for one identity, every failure classified, and a way to drop a refused token.

Dropping a token: azure-identity caches tokens inside the credential, and 1.27.0 has no public
way to skip that cache for a plain refusal. ``get_token(claims=...)`` (and ``get_token_info``
with ``options["claims"]``) does skip it, but it is meant for a claims challenge that ARM only
sends to clients that opted into CAE: a made-up value would be sent to Microsoft Entra ID as a
``claims`` parameter nobody asked for, AzureCliCredential (in DefaultAzureCredential's chain)
refuses any claims outright, and the managed-identity credentials drop it silently. So a source
built from a factory replaces its credential instead: the new one starts with an empty cache and
asks Entra for a new token. A borrowed credential cannot be replaced; it is asked again as is.

The credential that issued a refused token is closed once no ``get`` is using it, so concurrent
requests that all met the same 401 replace it once and leak nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

from controller.failure import is_transient_status

from .errors import CredentialError

__all__ = ["CredentialFactory", "Token", "TokenSource", "token_error"]

CredentialFactory = Callable[[], AsyncTokenCredential]

_LOG = logging.getLogger("controller.arm")
_MAX_DETAIL_CHARS = 300
_REFRESH_SECONDS = 300


@dataclass(frozen=True)
class Token:
    """An access token and the credential generation that issued it. ``repr`` hides the token."""

    text: str = field(repr=False)
    generation: int


@dataclass(frozen=True)
class _Cached:
    text: str = field(repr=False)
    generation: int
    expires_on: int  # seconds since the epoch


@dataclass(eq=False)
class _Issuer:
    credential: AsyncTokenCredential
    generation: int
    in_use: int = 0
    retired: bool = False


class TokenSource:
    """Tokens from a borrowed ``credential`` (never closed, never replaced) or from credentials
    that ``factory`` builds on first use and this source owns (replaced by :meth:`refused`,
    closed by :meth:`aclose`). Every failure becomes a :class:`CredentialError`."""

    def __init__(
        self,
        credential: AsyncTokenCredential | None = None,
        *,
        factory: CredentialFactory | None = None,
    ) -> None:
        if (credential is None) == (factory is None):
            raise ValueError("pass exactly one of credential and factory")
        self._factory = factory
        self._generations = 0
        self._current = None if credential is None else _Issuer(credential, 0)
        self._retired: set[_Issuer] = set()
        self._cached: dict[str, _Cached] = {}

    async def get(self, scope: str) -> Token:
        issuer = self._issuer()
        cached = self._cached.get(scope)
        # Kept until 5 minutes before it expires, as azure-core's bearer-token policy does:
        # azure-identity's own cache lookup (MSAL's) cost more than the ARM request's HTTP.
        if (
            cached is not None
            and cached.generation == issuer.generation
            and cached.expires_on - time.time() > _REFRESH_SECONDS
        ):
            return Token(cached.text, cached.generation)
        issuer.in_use += 1
        try:
            access = await issuer.credential.get_token(scope)
        except Exception as exc:
            raise token_error(exc, type(issuer.credential).__name__, scope) from exc
        finally:
            issuer.in_use -= 1
            if issuer.retired and issuer.in_use == 0:
                await self._close(issuer)
        self._cached[scope] = _Cached(access.token, issuer.generation, access.expires_on)
        return Token(access.token, issuer.generation)

    async def refused(self, token: Token) -> None:
        """ARM refused ``token`` (401): the next :meth:`get` must not return it again."""
        self._cached.clear()
        current = self._current
        if self._factory is None or current is None or current.generation != token.generation:
            return  # borrowed, or already replaced by a concurrent refusal
        self._current = None
        current.retired = True
        if current.in_use == 0:
            await self._close(current)
        else:
            self._retired.add(current)  # closed by the last get still using it

    async def aclose(self) -> None:
        """Close the credentials this source built. A borrowed credential is left open."""
        owned = set(self._retired)
        if self._factory is not None and self._current is not None:
            owned.add(self._current)
            self._current = None
        for issuer in owned:
            await self._close(issuer)

    def _issuer(self) -> _Issuer:
        if self._current is None:
            assert self._factory is not None  # only a borrowed source starts with an issuer
            self._generations += 1
            # May raise CredentialError (InvalidCredentials); a later get tries again.
            self._current = _Issuer(self._factory(), self._generations)
        return self._current

    async def _close(self, issuer: _Issuer) -> None:
        self._retired.discard(issuer)
        try:
            await issuer.credential.close()
        except Exception as exc:
            # A credential that fails to close must not fail the request that replaced it.
            _LOG.warning("closing %s failed: %s", type(issuer.credential).__name__, exc)


def token_error(exc: Exception, credential_name: str, scope: str) -> CredentialError:
    """Classify an exception raised by ``get_token`` (see :class:`CredentialError`'s codes)."""
    detail = _first_line(getattr(exc, "message", None) or str(exc))
    what = f"{credential_name} could not get a token for {scope}"
    if isinstance(exc, CredentialUnavailableError):
        # Checked before its base class: the credential did not even try (no identity endpoint
        # answered its probe, no token file, no environment). On a node or pod that is still
        # starting this passes; a lasting misconfiguration repeats the same reason in status.
        return CredentialError(
            f"{what}: it is unavailable here: {detail}",
            code=CredentialError.CREDENTIAL_UNAVAILABLE,
        )
    if isinstance(exc, ClientAuthenticationError):
        status = exc.response.status_code if exc.response is not None else None
        # Entra answered, but with a status that says "not now" rather than "no".
        if status is not None and is_transient_status(status):
            return CredentialError(
                f"{what}: its token endpoint answered HTTP {status} (after azure-identity's own "
                f"retries): {detail}",
                code=CredentialError.TOKEN_ENDPOINT_UNREACHABLE,
            )
        if status is not None:
            return CredentialError(
                f"{what}: Microsoft Entra ID refused (HTTP {status}): {detail}. Check the tenant "
                "id, client id and secret, certificate or federated credential",
                code=CredentialError.AUTHENTICATION_FAILED,
            )
        # No response attached: azure-identity could not read the answer (an HTML page from a
        # proxy, an empty body) or a credential chain gave up. Nothing shows that Entra refused
        # this identity, so it is not declared hopeless; see TOKEN_REQUEST_FAILED below.
    elif isinstance(exc, ServiceRequestError | ServiceResponseError):
        return CredentialError(
            f"{what}: its token endpoint did not answer: {detail}",
            code=CredentialError.TOKEN_ENDPOINT_UNREACHABLE,
        )
    # Anything else (a malformed answer, an MSAL or azure-core error we do not know): it proves
    # nothing about the credential material, so failing the run for good would be a guess. It
    # is retried with backoff like an outage, and the run's own retry budget bounds it.
    return CredentialError(
        f"{what}: {type(exc).__name__}: {detail}", code=CredentialError.TOKEN_REQUEST_FAILED
    )


def _first_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    line = lines[0] if lines else "no detail given"
    return line if len(line) <= _MAX_DETAIL_CHARS else line[: _MAX_DETAIL_CHARS - 1] + "…"
