"""The aiohttp transport under httpx (controller/arm/transport.py), against raw loopback sockets:
what each way of failing maps to. Exactly-once rests on one line — only a connection that was
never made may be reported as "not sent" (ConnectError/ConnectTimeout)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from controller.arm.transport import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handle: Handler) -> AsyncIterator[str]:
    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listening.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length")),
        0,
    )  # fmt: skip
    return head, await reader.readexactly(length)


def client(read: float = 5.0) -> httpx.AsyncClient:
    timeout = httpx.Timeout(connect=2.0, read=read, write=2.0, pool=2.0)
    return httpx.AsyncClient(transport=AiohttpTransport(ssl.create_default_context()),
                             timeout=timeout)  # fmt: skip


async def test_answer_status_headers_and_body_come_through() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        seen.extend((head, body))
        payload = json.dumps({"echo": json.loads(body)}).encode()
        writer.write(b"HTTP/1.1 202 Accepted\r\nLocation: https://arm/x\r\nRetry-After: 7\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)  # fmt: skip
        await writer.drain()
        writer.close()

    async with server(handle) as url, client() as http:
        response = await http.post(url + "/runCommand", json={"command": "ls"},
                                   headers={"x-ms-correlation-request-id": "c-1"})  # fmt: skip
    assert response.status_code == 202
    assert response.headers["location"] == "https://arm/x"
    assert response.headers["retry-after"] == "7"
    assert response.json() == {"echo": {"command": "ls"}}
    assert b"POST /runCommand" in seen[0]
    assert b"x-ms-correlation-request-id: c-1" in seen[0].lower()


async def test_a_connection_never_made_is_not_sent() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"http://127.0.0.1:{port}/runCommand", json={})


async def test_a_post_dropped_after_it_was_read_is_not_reported_as_unsent() -> None:
    """The case httpx-aiohttp 0.2.0 gets wrong (ConnectTimeout): the server read the POST."""
    bodies: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies.append((await read_request(reader))[1])
        writer.close()

    async with server(handle) as url, client() as http:
        with pytest.raises(httpx.TransportError) as raised:
            await http.post(url + "/runCommand", json={"command": "ls"})
    assert not isinstance(raised.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert isinstance(raised.value, httpx.RemoteProtocolError)
    assert bodies == [b'{"command":"ls"}']  # sent once: aiohttp does not resend a POST


async def test_no_answer_in_time_is_a_read_timeout() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async with server(handle) as url, client(read=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url + "/runCommand", json={})


async def test_the_proxy_environment_is_honoured_as_httpx_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP(S)_PROXY sends the request through the proxy; NO_PROXY exempts a host."""
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        lines.append(head.split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with server(proxy) as url:
        for variable in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(variable, url)
        monkeypatch.setenv("NO_PROXY", "exempt.invalid")
        async with client() as http:
            response = await http.get("http://arm.invalid/subscriptions")
            with pytest.raises(httpx.ConnectError):  # not proxied: its name does not resolve
                await http.get("http://exempt.invalid/subscriptions")
    assert response.status_code == 204
    assert lines == [b"GET http://arm.invalid/subscriptions HTTP/1.1"]
