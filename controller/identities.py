"""ARM clients by identity: one azure-identity credential per identity version and one ArmClient
per clusterToken mode, all sharing one HTTP connection pool and one throttle.

A Secret that changes (a rotated client secret) is a new version: its old credential and clients
are retired and closed after a grace period, so in-flight calls finish and rotations leak nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from azure.core.credentials_async import AsyncTokenCredential

from controller.arm import (
    ArmClient,
    ArmThrottle,
    Cloud,
    ClusterTokenMode,
    CredentialConfig,
    build_credential,
)

# ("operator",) for the operator's own identity, ("secret", namespace, name) for a Secret's.
Identity = tuple[str, ...]
CredentialFactory = Callable[..., AsyncTokenCredential]


@dataclass
class _Version:
    version: str
    credential: AsyncTokenCredential
    clients: dict[ClusterTokenMode, ArmClient] = field(default_factory=dict)


class ArmClients:
    def __init__(
        self,
        cloud: Cloud,
        http: httpx.AsyncClient,
        throttle: ArmThrottle,
        *,
        ca_file: str | None = None,
        retire_after: float = 60.0,
        build: CredentialFactory = build_credential,
    ) -> None:
        self._cloud, self._http, self._throttle = cloud, http, throttle
        self._ca_file, self._retire_after, self._build = ca_file, retire_after, build
        self._current: dict[Identity, _Version] = {}
        self._retiring: dict[asyncio.Task[None], _Version] = {}

    @property
    def credentials(self) -> int:
        """Credentials open now, retiring ones included."""
        return len(self._current) + len(self._retiring)

    def get(
        self,
        identity: Identity,
        version: str,
        config: CredentialConfig,
        cluster_token_mode: ClusterTokenMode,
    ) -> ArmClient:
        current = self._current.get(identity)
        if current is not None and current.version != version:
            self._retire(current)
            current = None
        if current is None:
            credential = self._build(config, self._cloud, connection_verify=self._ca_file)
            current = self._current[identity] = _Version(version, credential)
        client = current.clients.get(cluster_token_mode)
        if client is None:
            client = current.clients[cluster_token_mode] = ArmClient(
                current.credential,
                cloud=self._cloud,
                cluster_token_mode=cluster_token_mode,
                http_client=self._http,
                throttle=self._throttle,
            )
        return client

    def _retire(self, old: _Version) -> None:
        task = asyncio.get_running_loop().create_task(self._close_later(old))
        self._retiring[task] = old
        task.add_done_callback(self._retiring.pop)

    async def _close_later(self, old: _Version) -> None:
        await asyncio.sleep(self._retire_after)  # let calls already in flight finish
        await _close(old)

    async def aclose(self) -> None:
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        await asyncio.gather(*(task for task, _ in retiring), return_exceptions=True)
        for task, version in retiring:
            if task.cancelled():  # a task cancelled before it ran never reaches its own close
                await _close(version)
        for current in self._current.values():
            await _close(current)
        self._current.clear()


async def _close(version: _Version) -> None:
    for client in version.clients.values():
        await client.aclose()  # borrowed http client: left open for the others
    await version.credential.close()
