"""A private CA and a loopback serving certificate, so clients can verify the emulator over TLS.

Both come from trustme, a dependency of this distribution.
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServingFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _load_or_create_ca(state_dir: Path) -> trustme.CA:
    """Reuse the CA across restarts, so clients keep trusting the same ca.crt."""
    cert_path, key_path = state_dir / "ca.crt", state_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert_pem = cert_path.read_bytes()
        try:
            expires = x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
            if expires > datetime.datetime.now(datetime.UTC):
                return trustme.CA.from_pem(cert_pem, key_path.read_bytes())
        except ValueError:
            pass  # unreadable: make a new one
    ca = trustme.CA(organization_unit_name="aks-arm-emulator CA")
    _write_private(key_path, ca.private_key_pem.bytes())
    cert_path.write_bytes(ca.cert_pem.bytes())
    return ca


def _identities(extra_host: str | None) -> list[str]:
    names = list(LOOPBACK_NAMES)
    if extra_host and extra_host not in names and extra_host not in ("0.0.0.0", "::"):  # noqa: S104
        names.append(extra_host)
    return names


def write_serving_files(state_dir: Path, host: str | None = None) -> ServingFiles:
    """Write ca.crt (to give to clients), server.crt and server.key into state_dir."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = _load_or_create_ca(state_dir)
    leaf = ca.issue_cert(*_identities(host), common_name="localhost")
    files = ServingFiles(
        ca_cert=state_dir / "ca.crt",
        server_cert=state_dir / "server.crt",
        server_key=state_dir / "server.key",
    )
    files.server_cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    _write_private(files.server_key, leaf.private_key_pem.bytes())
    return files


def server_ssl_context(files: ServingFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    return context
