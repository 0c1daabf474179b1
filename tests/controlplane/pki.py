"""Certificates and keys for a throwaway control plane: a CA, a serving certificate for
127.0.0.1/localhost, an admin client certificate in system:masters (all three from trustme),
and the service-account signing key pair."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# kube-apiserver takes a client certificate's CN as the user name and each O as a group.
ADMIN_USER, ADMIN_GROUP = "admin", "system:masters"
SERVING_NAMES = ("127.0.0.1", "localhost", "kubernetes.default.svc")


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public_key: Path
    sa_signing_key: Path


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def create_pki(directory: Path, cluster_name: str) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name=cluster_name, organization_unit_name=f"{cluster_name}-ca")
    serving = ca.issue_cert(*SERVING_NAMES, common_name="kube-apiserver")
    # trustme always writes a critical subjectAltName: with no identity it would be empty, which
    # Go's x509 (and so kube-apiserver) refuses as an unhandled critical extension.
    admin = ca.issue_cert(
        f"{ADMIN_USER}@localhost", common_name=ADMIN_USER, organization_name=ADMIN_GROUP
    )
    # Service-account tokens are signed with a bare RSA key pair (no certificate, so not trustme's).
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_private = sa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sa_public = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Pki(
        ca_cert=_write(directory / "ca.crt", ca.cert_pem.bytes()),
        serving_cert=_write(directory / "apiserver.crt", serving.cert_chain_pems[0].bytes()),
        serving_key=_write(directory / "apiserver.key", serving.private_key_pem.bytes(), True),
        admin_cert=_write(directory / "admin.crt", admin.cert_chain_pems[0].bytes()),
        admin_key=_write(directory / "admin.key", admin.private_key_pem.bytes(), True),
        sa_public_key=_write(directory / "sa.pub", sa_public),
        sa_signing_key=_write(directory / "sa.key", sa_private, private=True),
    )
