"""The client owns its timeouts: a runCommand POST that ARM holds for 45 s (its proxy allows
60 s) is accepted, whatever http client the caller built; the runtime's former 30 s client made
it a false "outcome unknown".

ARM here is a small HTTP server over a real socket in the test's own event loop, and that loop's
clock can jump: "45 s" pass at once. httpx's timeouts are armed (by anyio) on this clock, so they
see the jump, which the control test proves by timing out a 30 s client against the same server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from arm_doubles import CLUSTER, COMMAND_ID, SUBSCRIPTION, FakeCredential, submit

from controller.arm import (
    DEFAULT_TIMEOUT,
    ArmClient,
    Cloud,
    SubmissionOutcomeUnknown,
    new_http_client,
)
from tests.helpers import SkippingLoop

T = TypeVar("T")
# How runtime.py built its shared client before the client owned its timeouts.
RUNTIME_30S_CLIENT = httpx.Timeout(30.0, connect=10.0)


class HoldingArm:
    """Answers every request 202 with a Location, after holding it ``hold`` seconds of loop
    time. Only the socket is real: enough for httpx's own transport and timeouts."""

    def __init__(self, loop: SkippingLoop, hold: float) -> None:
        self.loop, self.hold = loop, hold
        self.methods: list[str] = []
        self.endpoint = ""
        self.answering: set[asyncio.Task[None]] = set()

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        return server

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.answering.add(task)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().casefold() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        self.methods.append(head.split(" ", 1)[0])
        self.loop.skipped += self.hold  # ARM starts the command pod meanwhile
        # Let the loop run its now-due timers before the answer exists: a timeout that fires in
        # the same iteration as the answer arrives loses to it.
        await asyncio.sleep(0.01)
        location = (
            f"{self.endpoint}/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-demo/providers/"
            f"Microsoft.ContainerService/managedClusters/aks-demo/commandResults/{COMMAND_ID}"
        )
        writer.write(
            f"HTTP/1.1 202 Accepted\r\nLocation: {location}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


def run_held(hold: float, scenario: Callable[[HoldingArm], Awaitable[T]]) -> T:
    loop = SkippingLoop()

    async def main() -> T:
        arm = HoldingArm(loop, hold)
        async with await arm.start():
            try:
                return await scenario(arm)
            finally:
                # An answer to a client that gave up may still be under way (or fail): let it end.
                await asyncio.gather(*arm.answering, return_exceptions=True)

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def owned(arm: HoldingArm) -> ArmClient:
    return ArmClient(FakeCredential(), cloud=Cloud.custom(arm.endpoint))


def shared(arm: HoldingArm) -> ArmClient:
    # As the runtime should build its pool: the factory in arm/ (left open: a test).
    return ArmClient(
        FakeCredential(), cloud=Cloud.custom(arm.endpoint), http_client=new_http_client()
    )


def runtime_30s(arm: HoldingArm) -> ArmClient:
    borrowed = httpx.AsyncClient(timeout=RUNTIME_30S_CLIENT)
    return ArmClient(FakeCredential(), cloud=Cloud.custom(arm.endpoint), http_client=borrowed)


@pytest.mark.parametrize("make", [owned, shared, runtime_30s])
def test_a_post_held_45_seconds_is_accepted(make: Callable[[HoldingArm], ArmClient]) -> None:
    async def held_submit(arm: HoldingArm) -> str:
        async with make(arm) as client:
            handle = await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")
        assert arm.methods == ["POST"]
        return handle.command_id

    assert run_held(45.0, held_submit) == COMMAND_ID


def test_control_a_30_second_read_timeout_gives_up_on_the_same_server() -> None:
    async def post(arm: HoldingArm) -> None:
        async with httpx.AsyncClient(timeout=RUNTIME_30S_CLIENT) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(f"{arm.endpoint}/runCommand", json={"command": "x"})

    run_held(45.0, post)


def test_a_post_held_past_the_read_timeout_is_outcome_unknown_and_not_resent() -> None:
    async def held_submit(arm: HoldingArm) -> None:
        async with owned(arm) as client:
            with pytest.raises(SubmissionOutcomeUnknown, match="ReadTimeout"):
                await submit(client, CLUSTER, "kubectl get ns", cluster_token="never")
        assert arm.methods == ["POST"]

    run_held(95.0, held_submit)


async def test_new_http_client_has_the_designed_timeouts_and_follows_no_redirect() -> None:
    async with new_http_client() as http:
        assert http.timeout == DEFAULT_TIMEOUT
        assert DEFAULT_TIMEOUT.read is not None and DEFAULT_TIMEOUT.read > 60  # ARM's proxy
        assert not http.follow_redirects
