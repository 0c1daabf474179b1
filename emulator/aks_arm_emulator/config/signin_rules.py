"""The `signin:` section: the app registrations, as far as sign-in can refuse."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .patterns import UUID_RE
from .reader import ConfigError, Section


@dataclasses.dataclass(frozen=True)
class SigninConfig:
    """App registrations, as far as sign-in can refuse. Empty (the default): any tenant, any
    client and any non-empty secret or well-formed assertion is accepted."""

    # When not empty, a tenant outside this list is unknown (AADSTS90002).
    known_tenants: tuple[str, ...] = ()
    # client id -> accepted secrets (several: a rotation in progress).
    client_secrets: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # client id -> PEM text of one or more certificates whose keys may sign its assertions.
    client_certificates: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_signin(self)


def validate_signin(signin: SigninConfig) -> None:
    for index, tenant in enumerate(signin.known_tenants):
        if not isinstance(tenant, str) or not UUID_RE.match(tenant):
            raise ConfigError(f"signin.knownTenants[{index}] must be a tenant id (UUID)")
    for client, secrets in signin.client_secrets.items():
        if not client or not secrets or not all(isinstance(x, str) and x for x in secrets):
            raise ConfigError(
                f"signin.clientSecrets.{client} must be a non-empty secret or list of secrets"
            )
    for client, pem in signin.client_certificates.items():
        if not client:
            raise ConfigError("signin.clientCertificates needs client ids as keys")
        try:
            keys = [c.public_key() for c in x509.load_pem_x509_certificates(pem.encode("ascii"))]
        except (ValueError, UnicodeEncodeError, AttributeError) as exc:
            raise ConfigError(
                f"signin.clientCertificates.{client} must hold PEM certificates: {exc}"
            ) from exc
        if not all(isinstance(k, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) for k in keys):
            raise ConfigError(f"signin.clientCertificates.{client}: only RSA or EC keys sign")


def signin_from_section(section: Section) -> SigninConfig:
    tenants = section.raw("knownTenants") or []
    if not isinstance(tenants, list):
        raise ConfigError("signin.knownTenants must be a list of tenant ids")
    secrets_raw = Section(section.raw("clientSecrets"), "signin.clientSecrets")
    secrets: dict[str, tuple[str, ...]] = {}
    for client in secrets_raw.names():
        value = secrets_raw.raw(client)
        secrets[str(client)] = tuple(value) if isinstance(value, list) else (value,)
    secrets_raw.finish()
    certificates_raw = Section(section.raw("clientCertificates"), "signin.clientCertificates")
    certificates: dict[str, str] = {}
    for client in certificates_raw.names():
        certificates[str(client)] = certificates_raw.string(client)
    certificates_raw.finish()
    section.finish()
    return SigninConfig(
        known_tenants=tuple(tenants), client_secrets=secrets, client_certificates=certificates
    )
