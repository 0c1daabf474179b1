"""Build an async azure-identity credential from a small typed configuration.

Modes:

``default``             DefaultAzureCredential (environment, workload identity, managed identity...)
``workload-identity``   WorkloadIdentityCredential (AKS workload identity, federated token file)
``managed-identity``    ManagedIdentityCredential (system- or user-assigned)
``client-secret``       ClientSecretCredential
``client-certificate``  CertificateCredential from PEM bytes (certificate and private key)

Keys of a Kubernetes Secret read by :meth:`CredentialConfig.from_secret_data`:

``tenantId``                   Microsoft Entra tenant id (required)
``clientId``                   application (client) id (required)
``clientSecret``               client secret -> mode ``client-secret``
``clientCertificate``          PEM: certificate and private key -> ``client-certificate``
``clientCertificatePassword``  password of the private key, if encrypted
``workloadIdentity``           ``"true"`` -> ``workload-identity`` with the operator's projected
                               service-account token; the identity must trust that token
``authMode``                   optional explicit mode; otherwise inferred from the keys above

``default`` and ``managed-identity`` are refused from a Secret: they would let anyone who can
write a Secret use identities attached to the operator's pod or node (a confused deputy). They
are for the operator's own, global identity.

Secret values never appear in ``repr`` or in error messages. :func:`build_credential` turns
every construction failure into ``CredentialError("InvalidCredentials")``: construction only
parses what it was given (azure-identity raises ValueError or TypeError there), so the same
material fails the same way every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from .clouds import AZURE_PUBLIC_CLOUD, Cloud
from .errors import CredentialError

__all__ = ["CredentialConfig", "CredentialMode", "build_credential"]

CredentialMode = Literal[
    "default", "workload-identity", "managed-identity", "client-secret", "client-certificate"
]
_MODES: tuple[str, ...] = get_args(CredentialMode)
_MODES_ALLOWED_FROM_SECRET = frozenset({"workload-identity", "client-secret", "client-certificate"})
_SECRET_KEYS = frozenset(
    {
        "tenantId",
        "clientId",
        "clientSecret",
        "clientCertificate",
        "clientCertificatePassword",
        "workloadIdentity",
        "authMode",
    }
)
_REDACTED = "<redacted>"
# azure-core's defaults are 300 s each, tried four times: a token endpoint that drops packets
# would hold a worker (and the run's lock) for twenty minutes. Entra answers in about a second.
_TOKEN_CONNECT_TIMEOUT = 10.0
_TOKEN_READ_TIMEOUT = 30.0
_MAX_DETAIL_CHARS = 300


@dataclass(frozen=True, repr=False)
class CredentialConfig:
    """Which identity to use. Validated on construction; ``repr`` hides secrets."""

    mode: CredentialMode = "default"
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_certificate: bytes | None = None
    client_certificate_password: str | None = None
    # Workload identity: the projected token; None reads AZURE_FEDERATED_TOKEN_FILE.
    token_file_path: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(
                f"unknown credential mode {self.mode!r}; use one of {', '.join(_MODES)}"
            )
        required: tuple[str, ...] = {
            "client-secret": ("tenant_id", "client_id", "client_secret"),
            "client-certificate": ("tenant_id", "client_id", "client_certificate"),
        }.get(self.mode, ())
        missing = [name for name in required if not getattr(self, name)]
        if missing:
            raise ValueError(f"credential mode {self.mode!r} needs {', '.join(missing)}")

    def __repr__(self) -> str:
        def shown(value: object) -> str:
            return "None" if value is None else _REDACTED

        return (
            f"CredentialConfig(mode={self.mode!r}, tenant_id={self.tenant_id!r}, "
            f"client_id={self.client_id!r}, client_secret={shown(self.client_secret)}, "
            f"client_certificate={shown(self.client_certificate)}, "
            f"client_certificate_password={shown(self.client_certificate_password)}, "
            f"token_file_path={self.token_file_path!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_secret_data(cls, data: Mapping[str, bytes | str]) -> CredentialConfig:
        """Build from a Kubernetes Secret's decoded data (keys in the module docstring)."""
        unknown = sorted(set(data) - _SECRET_KEYS)
        if unknown:
            raise ValueError(
                f"credential secret has unknown keys {', '.join(unknown)}; "
                f"known keys: {', '.join(sorted(_SECRET_KEYS))}"
            )

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is None:
                return None
            decoded = value.decode("utf-8") if isinstance(value, bytes) else value
            return decoded or None

        def identifier(key: str) -> str | None:
            # Ids often carry a trailing newline from `echo ... | kubectl create secret`.
            value = text(key)
            return value.strip() or None if value is not None else None

        certificate = data.get("clientCertificate")
        certificate_bytes = certificate.encode() if isinstance(certificate, str) else certificate
        mode = identifier("authMode") or _infer_mode(
            has_secret=text("clientSecret") is not None,
            has_certificate=bool(certificate_bytes),
            workload_identity=(identifier("workloadIdentity") or "").casefold() == "true",
        )
        if mode not in _MODES_ALLOWED_FROM_SECRET:
            raise ValueError(
                f"credential mode {mode!r} cannot come from a Secret; use one of "
                f"{', '.join(sorted(_MODES_ALLOWED_FROM_SECRET))}"
            )
        tenant_id, client_id = identifier("tenantId"), identifier("clientId")
        if not tenant_id or not client_id:
            raise ValueError("credential secret needs tenantId and clientId")
        return cls(
            mode=cast(CredentialMode, mode),
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=text("clientSecret") if mode == "client-secret" else None,
            client_certificate=certificate_bytes if mode == "client-certificate" else None,
            client_certificate_password=(
                text("clientCertificatePassword") if mode == "client-certificate" else None
            ),
        )


def _infer_mode(*, has_secret: bool, has_certificate: bool, workload_identity: bool) -> str:
    chosen = [
        mode
        for mode, present in (
            ("client-secret", has_secret),
            ("client-certificate", has_certificate),
            ("workload-identity", workload_identity),
        )
        if present
    ]
    if len(chosen) != 1:
        found = f"found {', '.join(chosen)}" if chosen else "found none"
        raise ValueError(
            "credential secret must hold exactly one of clientSecret, clientCertificate or "
            f"workloadIdentity=true ({found}); or set authMode"
        )
    return chosen[0]


def build_credential(
    config: CredentialConfig,
    cloud: Cloud = AZURE_PUBLIC_CLOUD,
    *,
    connection_verify: str | None = None,
) -> AsyncTokenCredential:
    """Create the azure-identity credential for ``config`` in ``cloud``. The caller closes it.

    ``connection_verify`` is a CA bundle path for the token endpoint's TLS (the emulator's CA).
    Raises CredentialError ``InvalidCredentials`` when azure-identity refuses the material.
    """
    try:
        return _build(config, cloud, connection_verify)
    except Exception as exc:
        # Construction does no I/O: whatever it raises (ValueError for a malformed tenant id or
        # PEM, TypeError for an encrypted key without password) repeats on every try.
        raise CredentialError(
            f"{config.mode} credential for client {config.client_id} cannot be built: "
            f"{type(exc).__name__}: {_scrubbed(str(exc), config)}",
            code=CredentialError.INVALID_CREDENTIALS,
        ) from None  # the cause may quote the material; the message says what went wrong


def _build(
    config: CredentialConfig, cloud: Cloud, connection_verify: str | None
) -> AsyncTokenCredential:
    transport_options: dict[str, Any] = {
        "connection_timeout": _TOKEN_CONNECT_TIMEOUT,
        "read_timeout": _TOKEN_READ_TIMEOUT,
    }
    if connection_verify is not None:
        transport_options["connection_verify"] = connection_verify
    entra_options: dict[str, Any] = dict(transport_options)
    if cloud.authority_host is not None:
        entra_options["authority"] = cloud.authority_host
    if not cloud.instance_discovery:
        entra_options["disable_instance_discovery"] = True

    match config.mode:
        case "client-secret":
            return ClientSecretCredential(
                _required(config.tenant_id),
                _required(config.client_id),
                _required(config.client_secret),
                **entra_options,
            )
        case "client-certificate":
            return CertificateCredential(
                _required(config.tenant_id),
                _required(config.client_id),
                certificate_data=config.client_certificate,
                password=config.client_certificate_password,
                **entra_options,
            )
        case "workload-identity":
            return WorkloadIdentityCredential(
                tenant_id=config.tenant_id,
                client_id=config.client_id,
                token_file_path=config.token_file_path,
                **entra_options,
            )
        case "managed-identity":
            return ManagedIdentityCredential(client_id=config.client_id, **transport_options)
        case "default":
            # Pass ids only when set: an explicit None would hide AZURE_CLIENT_ID/AZURE_TENANT_ID.
            identity_options: dict[str, Any] = {}
            if config.client_id is not None:
                identity_options["managed_identity_client_id"] = config.client_id
                identity_options["workload_identity_client_id"] = config.client_id
            if config.tenant_id is not None:
                identity_options["workload_identity_tenant_id"] = config.tenant_id
            return DefaultAzureCredential(**identity_options, **entra_options)
    raise AssertionError(f"unhandled credential mode {config.mode!r}")  # pragma: no cover


def _scrubbed(text: str, config: CredentialConfig) -> str:
    """The first line of ``text``, shortened, without any secret of ``config`` in it."""
    line = (text.strip().splitlines() or ["no detail given"])[0]
    for secret in (config.client_secret, config.client_certificate_password):
        if secret:
            line = line.replace(secret, _REDACTED)
    return line if len(line) <= _MAX_DETAIL_CHARS else line[: _MAX_DETAIL_CHARS - 1] + "…"


def _required(value: str | None) -> str:
    if value is None:  # __post_init__ checked it; this narrows the type
        raise ValueError("missing credential field")
    return value
