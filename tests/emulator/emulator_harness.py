"""Test harness (not a test module): runs the emulator on a real loopback port in a background
thread with its own event loop, so both the blocking Azure SDK and async clients can talk to it
over real HTTP(S)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from aks_arm_emulator import EmulatorConfig, create_app
from aks_arm_emulator.certs import server_ssl_context, write_serving_files
from aks_arm_emulator.config import ClusterConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests import helpers

# The shared IDs (tests/helpers.py), under the names the emulator's tests use.
SUB, TENANT, AKS_APP = helpers.SUBSCRIPTION, helpers.TENANT, helpers.AKS_SERVER_APP

CLIENT_ID = "00000000-aaaa-bbbb-cccc-000000000001"
API = "api-version=2024-09-01"


def cluster(name: str = "aks1", **overrides: Any) -> ClusterConfig:
    fields: dict[str, Any] = {
        "subscription_id": SUB,
        "resource_group": "rg-Demo",
        "name": name,
        "kubeconfig": Path("/nonexistent/kubeconfig"),
    }
    fields.update(overrides)
    return ClusterConfig(**fields)


@dataclass
class Emulator:
    base_url: str
    ca_file: Path | None

    def cluster_url(self, name: str = "aks1", rg: str = "rg-Demo", sub: str = SUB) -> str:
        return (
            f"{self.base_url}/subscriptions/{sub}/resourceGroups/{rg}"
            f"/providers/Microsoft.ContainerService/managedClusters/{name}"
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.ca_file is None:
            return False
        return ssl.create_default_context(cafile=str(self.ca_file))


@contextmanager
def running_emulator(
    config: EmulatorConfig,
    state_dir: Path | None = None,
    host: str = "127.0.0.1",
    *,
    journal: bool = False,
) -> Iterator[Emulator]:
    """`state_dir`: serve TLS from a CA kept there; `journal`: keep accepted commands there too,
    so a restart on it still answers for them."""
    loop = asyncio.new_event_loop()
    started: Future[tuple[web.AppRunner, int]] = Future()

    async def start() -> tuple[web.AppRunner, int]:
        ssl_context = None
        if state_dir is not None:
            ssl_context = server_ssl_context(write_serving_files(state_dir, host))
        runner = web.AppRunner(
            create_app(config, state_dir if journal else None), access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        return runner, runner.addresses[0][1]

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.set_result(loop.run_until_complete(start()))
        except BaseException as exc:
            started.set_exception(exc)
            return
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    runner, port = started.result(timeout=30)
    scheme = "https" if state_dir is not None else "http"
    try:
        yield Emulator(f"{scheme}://{host}:{port}", state_dir / "ca.crt" if state_dir else None)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


async def fetch_token(
    emulator: Emulator, audience: str, *, tenant: str = TENANT, client_id: str = CLIENT_ID
) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emulator.base_url}/{tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": "s3cret-value",
                "scope": f"{audience}/.default",
            },
            ssl=emulator.ssl_context(),
        ) as response,
    ):
        assert response.status == 200, await response.text()
        body = await response.json()
        return str(body["access_token"])


def zip_context(files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


async def call(
    emulator: Emulator,
    method: str,
    url: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            json=json_body,
            data=data,
            headers=all_headers,
            ssl=emulator.ssl_context(),
        ) as response,
    ):
        text = await response.text()
        body = await response.json(content_type=None) if text else None
        return response.status, dict(response.headers), body


async def arm_token(emulator: Emulator) -> str:
    return await fetch_token(emulator, emulator.base_url)


async def submit(
    emulator: Emulator, token: str, name: str = "aks1", body: Any = None, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    return await call(
        emulator,
        "POST",
        f"{emulator.cluster_url(name)}/runCommand?{API}",
        token=token,
        json_body=body if body is not None else {"command": "echo hi"},
        **kwargs,
    )


async def wait_done(emulator: Emulator, token: str, location: str) -> dict[str, Any]:
    for _ in range(100):
        status, _, body = await call(emulator, "GET", location, token=token)
        if status == 200:
            return dict(body)
        assert status == 202
        await asyncio.sleep(0.05)
    raise AssertionError("command never finished")


def error_code(body: Any) -> str:
    assert set(body) == {"error"}
    assert isinstance(body["error"]["details"], list)
    return str(body["error"]["code"])


async def posts(emulator: Emulator) -> list[dict[str, Any]]:
    _, _, body = await call(emulator, "GET", f"{emulator.base_url}/_emulator/posts")
    return list(body["posts"])


async def settled_posts(emulator: Emulator, count: int) -> list[dict[str, Any]]:
    """The POST log once `count` records have left `pending` (the emulator settles a record
    after its answer was written, which can be just after the client saw it)."""
    for _ in range(200):
        records = await posts(emulator)
        if len(records) >= count and all(r["outcome"] != "pending" for r in records):
            return records
        await asyncio.sleep(0.05)
    raise AssertionError(f"POST log did not settle: {await posts(emulator)}")


def self_signed_certificate(name: str = "operator-sp") -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) of a fresh self-signed RSA certificate, as an app
    registration's certificate credential."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def federated_token(expires_in: int = 3600) -> str:
    """What the kubelet projects for workload identity: a one-hour JWT for
    api://AzureADTokenExchange that expires `expires_in` seconds from now (negative: already
    expired), signed by a key Entra does not know (no federated credentials are registered)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    expires = int(time.time()) + expires_in
    return jwt.encode(
        {
            "iss": "https://oidc.example/issuer",
            "sub": "system:serviceaccount:aks-runcommand:operator",
            "aud": ["api://AzureADTokenExchange"],
            "iat": expires - 3600,
            "nbf": expires - 3600,
            "exp": expires,
        },
        key,
        algorithm="RS256",
    )
