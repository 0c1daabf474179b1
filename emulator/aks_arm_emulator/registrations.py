"""What sign-in knows about tenants and apps (the `signin:` section), and the checks of client
assertions. Each check returns a refusal as data, `Refusal(status, error, aadsts, text)`, or
None; the token endpoint turns it into Entra's error body.

Codes as Entra ID answers them (seen in public traces): unknown tenant 400 invalid_request
AADSTS90002; wrong secret 401 invalid_client AADSTS7000215; assertion outside its validity
401 invalid_client AADSTS700024; bad assertion signature or unregistered certificate
401 invalid_client AADSTS700027.
"""

from __future__ import annotations

import datetime
import hmac
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .config import SigninConfig

FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
# Entra accepts assertions up to five minutes early (clock skew); expiry gets a short leeway.
_NBF_SKEW_SECONDS = 300
_EXP_LEEWAY_SECONDS = 30
# What a client may sign an assertion with (azure-identity: PS256; msal: PS256 or RS256).
_ASSERTION_ALGORITHMS = ["PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "ES256", "ES384"]
# Not tenants: msal asks these for discovery whatever the app's tenant is.
_META_TENANTS = {"common", "organizations", "consumers"}


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    aadsts: int
    text: str


def unknown_tenant(tenant: str) -> str:
    return (
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant."
    )


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Registrations:
    def __init__(self, config: SigninConfig) -> None:
        self._tenants = {t.lower() for t in config.known_tenants}
        self._secrets = {c.lower(): s for c, s in config.client_secrets.items()}
        self._certificate_keys = {
            client.lower(): _signing_keys(pem) for client, pem in config.client_certificates.items()
        }

    def tenant_known(self, tenant: str, *, for_discovery: bool = False) -> bool:
        if not self._tenants:
            return True
        if for_discovery and tenant.lower() in _META_TENANTS:
            return True
        return tenant.lower() in self._tenants

    def _registered(self, client_id: str) -> bool:
        key = client_id.lower()
        return key in self._secrets or key in self._certificate_keys

    def check_secret(self, client_id: str, secret: str) -> Refusal | None:
        """A registered app (listed under clientSecrets or clientCertificates) accepts only its
        listed secrets; any other client accepts any non-empty secret."""
        if not self._registered(client_id):
            return None
        given = secret.encode()
        if any(
            hmac.compare_digest(given, s.encode()) for s in self._secrets.get(client_id.lower(), ())
        ):
            return None
        return Refusal(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            f"client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'.",
        )

    def check_assertion(self, assertion: str, client_id: str, token_url: str) -> Refusal | None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _invalid_assertion("the client assertion is not a well-formed JWT")
        if not header.get("alg") or header.get("alg") == "none":
            return _invalid_assertion("the client assertion is unsigned")
        refusal = _check_time(claims)
        if refusal is not None:
            return refusal
        audiences = claims.get("aud")
        audience_list = audiences if isinstance(audiences, list) else [audiences]
        if claims.get("iss") == client_id and claims.get("sub") == client_id:
            # Certificate credential: the assertion is addressed to this token endpoint.
            wanted = token_url.rstrip("/").lower()
            if not any(
                isinstance(a, str) and a.rstrip("/").lower() == wanted for a in audience_list
            ):
                return _invalid_assertion(
                    "the certificate assertion audience is not this token endpoint"
                )
            return self._check_signature(assertion, client_id)
        # Federated identity credential: a token from an external issuer (e.g. Kubernetes).
        # No federated credentials are registered, so its signature is not checked.
        if FEDERATED_AUDIENCE not in audience_list:
            return _invalid_assertion(f"the federated token audience must be {FEDERATED_AUDIENCE}")
        if not claims.get("sub") or not claims.get("iss"):
            return _invalid_assertion("the federated token has no iss or sub")
        return None

    def _check_signature(self, assertion: str, client_id: str) -> Refusal | None:
        if not self._registered(client_id):
            return None  # an unregistered client's certificate is taken on trust
        for key in self._certificate_keys.get(client_id.lower(), []):
            try:
                jwt.PyJWS().decode(assertion, key=key, algorithms=_ASSERTION_ALGORITHMS)
            except jwt.PyJWTError:
                continue
            return None
        return Refusal(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation: no certificate registered on app "
            f"'{client_id}' verifies it.",
        )


def _signing_keys(pem: str) -> list[rsa.RSAPublicKey | ec.EllipticCurvePublicKey]:
    keys = [cert.public_key() for cert in x509.load_pem_x509_certificates(pem.encode())]
    # The configuration admits only these (validate_signin).
    return [k for k in keys if isinstance(k, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)]


def _invalid_assertion(problem: str) -> Refusal:
    return Refusal(401, "invalid_client", 700027, f"Client assertion failed: {problem}.")


def _check_time(claims: dict[str, Any]) -> Refusal | None:
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float):
        return _invalid_assertion("the client assertion has no exp")
    starts = nbf if isinstance(nbf, int | float) else None
    if exp + _EXP_LEEWAY_SECONDS < now or (starts is not None and starts - _NBF_SKEW_SECONDS > now):
        return Refusal(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: {_utc(now)}, "
            f"assertion valid from {_utc(starts) if starts is not None else 'unset'}, expiry "
            f"time of assertion {_utc(exp)}.",
        )
    return None
