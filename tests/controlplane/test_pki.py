"""The two test PKIs, the control plane's (pki.py) and the emulator's (emulator/certs.py):
certificates from trustme, and only the service-account key pair made by hand."""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path

from aks_arm_emulator import certs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.controlplane import pki

from .launcher import REPO_ROOT


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in san}


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_no_certificate_is_built_by_hand() -> None:
    for source in (
        REPO_ROOT / "tests/controlplane/pki.py",
        REPO_ROOT / "emulator/aks_arm_emulator/certs.py",
    ):
        text = source.read_text()
        assert "CertificateBuilder" not in text, source
        assert "trustme" in text, source


def test_control_plane_pki(tmp_path: Path) -> None:
    made = pki.create_pki(tmp_path, "mgmt")
    ca = load(made.ca_cert)
    serving, admin = load(made.serving_cert), load(made.admin_cert)
    for cert in (serving, admin):
        cert.verify_directly_issued_by(ca)
    assert names(serving) >= {"127.0.0.1", "localhost", "kubernetes.default.svc"}
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages(serving)
    # kube-apiserver: user = CN, groups = O.
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages(admin)
    # Go's x509 refuses a critical subjectAltName with no names in it.
    assert names(admin)
    # The service-account key pair belongs together.
    signing = serialization.load_pem_private_key(made.sa_signing_key.read_bytes(), None)
    public = serialization.load_pem_public_key(made.sa_public_key.read_bytes())
    assert signing.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    for key in (made.serving_key, made.admin_key, made.sa_signing_key):
        assert key.stat().st_mode & 0o777 == 0o600, key
    # The key files match their certificates (Python's TLS checks that on loading).
    ssl.create_default_context().load_cert_chain(made.admin_cert, made.admin_key)
    ssl.create_default_context().load_cert_chain(made.serving_cert, made.serving_key)


def test_emulator_serving_files_reuse_the_ca(tmp_path: Path) -> None:
    loopback = {"localhost", "127.0.0.1", "::1"}
    first = certs.write_serving_files(tmp_path, "aks-arm-emulator.test")
    ca_pem = first.ca_cert.read_bytes()
    assert names(load(first.server_cert)) == loopback | {"aks-arm-emulator.test"}
    second = certs.write_serving_files(tmp_path)  # a restart: same files, a new serving key
    assert second.ca_cert.read_bytes() == ca_pem  # clients keep trusting the same ca.crt
    cert = load(second.server_cert)
    cert.verify_directly_issued_by(load(second.ca_cert))
    assert names(cert) == loopback
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages(cert)
    for key in (second.server_key, tmp_path / "ca.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    certs.server_ssl_context(second)  # the key matches the certificate


def test_trustme_is_the_emulators_dependency_not_the_operators() -> None:
    operator = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    emulator = tomllib.loads((REPO_ROOT / "emulator" / "pyproject.toml").read_text())["project"]
    assert "trustme==1.2.1" in emulator["dependencies"]
    assert not [d for d in operator["dependencies"] if d.startswith("trustme")]
