"""ARM clients by identity: one ArmClient per identity version, all sharing one HTTP connection
pool and one throttle. The clusterToken mode is an argument of each submission, not a client.

Each client builds its azure-identity credential from the version's configuration on first use
and owns it (it replaces it when ARM refuses a token). A Secret that changes (a rotated client
secret) is a new version: the old client, with its credential, is retired and closed after a
grace period, so in-flight calls finish and rotations leak nothing.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from controller.arm import (
    ArmClient,
    ArmThrottle,
    Cloud,
    CredentialConfig,
    build_credential,
)

# ("operator",) for the operator's own identity, ("secret", namespace, name) for a Secret's.
Identity = tuple[str, ...]
# build_credential's signature: (config, cloud, *, connection_verify) -> credential.
BuildCredential = Callable[..., AsyncTokenCredential]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Version:
    version: str
    client: ArmClient


class ArmClients:
    def __init__(
        self,
        cloud: Cloud,
        http: httpx.AsyncClient,
        throttle: ArmThrottle,
        *,
        ca_file: str | None = None,
        retire_after: float = 60.0,
        build: BuildCredential = build_credential,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`sleep`: what a retired client waits out its grace period with (a test's clock)."""
        self._cloud, self._http, self._throttle = cloud, http, throttle
        self._ca_file, self._retire_after, self._build = ca_file, retire_after, build
        self._sleep = sleep
        self._current: dict[Identity, _Version] = {}
        self._retiring: dict[asyncio.Task[None], _Version] = {}

    def get(self, identity: Identity, version: str, config: CredentialConfig) -> ArmClient:
        """The client of ``identity`` at ``version``. Never raises for bad credential material:
        that surfaces as CredentialError from the client's first call."""
        current = self._current.get(identity)
        if current is not None and current.version == version:
            return current.client
        if current is not None:
            self._retire(current)
        factory = functools.partial(
            self._build, config, self._cloud, connection_verify=self._ca_file
        )
        client = ArmClient(
            credential_factory=factory,
            cloud=self._cloud,
            http_client=self._http,
            throttle=self._throttle,
        )
        self._current[identity] = _Version(version, client)
        return client

    def _retire(self, old: _Version) -> None:
        task = asyncio.get_running_loop().create_task(self._close_later(old))
        self._retiring[task] = old
        task.add_done_callback(self._retiring.pop)

    async def _close_later(self, old: _Version) -> None:
        await self._sleep(self._retire_after)  # let calls already in flight finish
        await old.client.aclose()

    async def aclose(self) -> None:
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        await asyncio.gather(*(task for task, _ in retiring), return_exceptions=True)
        for task, version in retiring:
            if task.cancelled():  # a task cancelled before it ran never reaches its own close
                await version.client.aclose()
        for current in self._current.values():
            await current.client.aclose()  # borrowed http client: left open for the others
        self._current.clear()
