"""The emulator's token authority: issues RS256 JWTs and verifies the ones it issued."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# The AKS AAD server application: the audience of clusterToken in every cloud.
AKS_AAD_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"


class TokenRejected(Exception):
    """A bearer or cluster token that fails verification; `code` is the ARM error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    client_id: str
    audience: str
    token_id: str  # the `uti` claim


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TokenAuthority:
    """Holds one signing key per emulator instance; tokens do not survive a restart."""

    def __init__(self, lifetime_seconds: int = 3600) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        self.lifetime_seconds = lifetime_seconds
        # Token ids (`uti`) issued since the last revocation, and those revoked. Kept by id
        # rather than by time: `iat` has whole seconds, and a token issued in the same second
        # just after a revocation must work.
        self._issued: set[str] = set()
        self._revoked: set[str] = set()

    def revoke_all(self) -> int:
        """Revoke every token issued so far; return how many that were."""
        count = len(self._issued)
        self._revoked |= self._issued
        self._issued = set()
        return count

    def is_revoked(self, principal: Principal) -> bool:
        return principal.token_id in self._revoked

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self._kid,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    def issue(self, issuer: str, tenant_id: str, client_id: str, audience: str) -> str:
        now = int(time.time())
        # Entra's unique token identifier: 22 base64url characters.
        token_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        self._issued.add(token_id)
        claims = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "tid": tenant_id,
            "appid": client_id,
            "azp": client_id,
            # A service principal's object id; stable per (tenant, client) so RBAC-like checks work.
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{client_id}")),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sub/{tenant_id}/{client_id}")),
            "idtyp": "app",
            "uti": token_id,
            "ver": "2.0",
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def verify(self, token: str, audiences: list[str], wrong_audience_code: str) -> Principal:
        """Check signature, expiry and audience; raise TokenRejected with an ARM error code."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["exp", "aud", "tid"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("ExpiredAuthenticationToken", "The access token expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected(
                wrong_audience_code,
                f"The access token has an invalid audience; expected one of {audiences}.",
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected(
                "InvalidAuthenticationToken",
                f"The access token is invalid: {type(exc).__name__}.",
            ) from exc
        audience = claims["aud"]
        return Principal(
            tenant_id=str(claims["tid"]),
            client_id=str(claims.get("appid", "")),
            audience=str(audience),
            token_id=str(claims.get("uti", "")),
        )
