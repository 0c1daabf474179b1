"""A Microsoft Entra ID token endpoint over HTTPS on 127.0.0.1, in the test's own event loop, so
the real azure-identity credentials can sign in against it (or be refused); and the sign-in
material the tests use."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiohttp import web

from tests.controlplane.pki import create_pki
from tests.emulator.emulator_harness import self_signed_certificate

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cr3t-VALUE~not-for-logs"

# "token": a new access token per request; "refuse": 401 invalid_client, as for a wrong secret;
# "unavailable": 503 with a tiny Retry-After, so azure-core's retries do not slow the test down.
Answer = Literal["token", "refuse", "unavailable"]


@dataclass
class FakeEntra:
    port: int
    ca_file: str
    answer: Answer = "token"
    # The form of every token request, in order.
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    def issued(self, number: int) -> str:
        return f"entra-token-{number}"

    async def answer_token_request(self, request: web.Request) -> web.Response:
        self.requests.append(dict(await request.post()))  # type: ignore[arg-type]
        if self.answer == "refuse":
            error = {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
            return web.json_response(error, status=401)
        if self.answer == "unavailable":
            error = {"error": "temporarily_unavailable", "error_description": "AADSTS50196"}
            return web.json_response(error, status=503, headers={"Retry-After": "0.01"})
        token = self.issued(len(self.requests))
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3600, "access_token": token}
        )


@asynccontextmanager
async def running_entra(directory: Path, answer: Answer = "token") -> AsyncIterator[FakeEntra]:
    pki = create_pki(directory, "entra")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.serving_cert, pki.serving_key)
    app = web.Application()
    runner = web.AppRunner(app)
    entra = FakeEntra(port=0, ca_file=str(pki.ca_cert), answer=answer)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", entra.answer_token_request)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        entra.port = runner.addresses[0][1]
        yield entra
    finally:
        await runner.cleanup()


def pem_certificate() -> bytes:
    """A self-signed client certificate followed by its private key, both PEM."""
    key, certificate = self_signed_certificate("operator-test")
    return certificate + key
