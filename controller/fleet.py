"""Read, decide, perform for RunCommandSets: read the set and its children, discover clusters
through ARM when a round starts (or, with followNewClusters, every minute), ask the core
(core/fleet.py) what to do, create or change children, and patch the set's status.

Children carry the run: each is an ordinary RunCommand that the runtime submits exactly once.
Child names are derived from the set's name and the cluster id, so a create after a restart
finds the child that is there (AlreadyExists) instead of making a twin. Every write is
conditional (resourceVersion); a lost race re-reads and decides again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from controller.arm import ArmError, DiscoveredCluster
from controller.core import InvalidSpec, RunSpec
from controller.core.fleet import (
    SET_LABEL,
    SHARD_LABEL,
    Child,
    ChildWrite,
    SetObservation,
    SetSpec,
    plan_set,
    set_problem,
)
from controller.core.inputs import InputFailure
from controller.core.reasons import Reason
from controller.inputs import InputReader
from controller.kube import SET_KIND, SET_PLURAL, Conflict, KubeApi, ObjectRef
from controller.parents import ParentLoop, child_body, owned_by

logger = logging.getLogger("controller.fleet")
Body = Mapping[str, Any]
FOLLOW_INTERVAL_SECONDS = 60.0  # rediscovery with followNewClusters
DISCOVERY_RETRY_SECONDS = 30.0
WRITE_CONCURRENCY = 16  # child creates/patches in flight at once for one set


class Fleet(ParentLoop):
    kind, plural = SET_KIND, SET_PLURAL

    def __init__(
        self,
        kube: KubeApi,
        inputs: InputReader,
        *,
        workers: int = 4,
        follow_interval: float = FOLLOW_INTERVAL_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(kube, workers=workers)
        self._inputs, self._now = inputs, now
        self._follow_interval = follow_interval
        self._discovered_at: dict[str, tuple[str, float]] = {}  # uid -> (round key, monotonic)

    def forget(self, uid: str) -> None:
        super().forget(uid)
        self._discovered_at.pop(uid, None)

    # Read, decide, perform -----------------------------------------------------------------

    async def _look(self, ref: ObjectRef) -> None:
        body = await self._kube.read_runcommand(ref, SET_PLURAL)
        if body is None:
            self.forget(ref.uid)
            return
        status: Mapping[str, Any] = body.get("status") or {}
        generation = int(body["metadata"].get("generation", 0))
        now = _iso(self._now())
        try:
            spec = SetSpec.parse(body.get("spec") or {})
        except InvalidSpec as error:
            problem = set_problem(
                status, generation, now, Reason.INVALID_SPEC, str(error), stalled=True
            )
            await self._write_status(ref, body, problem)
            return
        listed = await self._kube.list_runcommands(ref.namespace, f"{SET_LABEL}={ref.name}")
        children = [Child.from_body(c) for c in listed if owned_by(c, ref.uid)]
        try:
            discovered = await self._discover(ref, spec, status)
        except (ArmError, InputFailure) as error:
            message = f"cannot list managed clusters: {error.code}: {error.message}"
            logger.warning("%s/%s: %s", ref.namespace, ref.name, message)
            problem = set_problem(
                status, generation, now, Reason.DISCOVERY_FAILED, message, stalled=False
            )
            await self._write_status(ref, body, problem)
            self._plan(ref, DISCOVERY_RETRY_SECONDS)
            return
        shard = (body["metadata"].get("labels") or {}).get(SHARD_LABEL)
        seen = SetObservation(ref.name, spec, status, generation, children, discovered, now, shard)
        decision = plan_set(seen)
        if not await self._apply_all(ref, decision.writes, children):
            self._plan(ref, 0.0)  # decide again on fresh state
            return
        if await self._write_status(ref, body, decision.status) and discovered is not None:
            self._discovered_at[ref.uid] = (spec.round_key, time.monotonic())
        if spec.follow_new_clusters and spec.selector is not None:
            self._plan(ref, self._follow_interval)

    async def _discover(
        self, ref: ObjectRef, spec: SetSpec, status: Mapping[str, Any]
    ) -> list[DiscoveredCluster] | None:
        """List the selector's clusters when a round starts, and with followNewClusters once
        per interval; None when this look needs no discovery."""
        if spec.selector is None:
            return None
        last = self._discovered_at.get(ref.uid)
        round_started = status.get("roundKey") == spec.round_key
        if round_started and last is not None and last[0] == spec.round_key:
            due = time.monotonic() - last[1] >= self._follow_interval
            if not (spec.follow_new_clusters and due):
                return None
        elif round_started and not spec.follow_new_clusters:
            return None  # after a restart: the round's children say who its targets are
        template = {**spec.template, "cluster": {"resourceId": _any_cluster(spec)}}
        arm = await self._inputs.discovery_client(ref.namespace, RunSpec.parse(template))
        found: list[DiscoveredCluster] = []
        for subscription, group in spec.selector.scopes():
            found.extend(await arm.list_clusters(subscription, group))
        logger.info("%s/%s: %d managed clusters listed", ref.namespace, ref.name, len(found))
        return found

    async def _apply_all(
        self, ref: ObjectRef, writes: Sequence[ChildWrite], children: list[Child]
    ) -> bool:
        """All writes, WRITE_CONCURRENCY at a time: a round over hundreds of clusters is not
        hundreds of API server round trips in a row. The writes are independent (one child
        each), and each is safe to repeat, so a partial failure only means deciding again."""
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(write: ChildWrite) -> bool:
            async with gate:
                return await self._apply(ref, write, children)

        return all(await asyncio.gather(*(one(write) for write in writes)))

    async def _apply(self, ref: ObjectRef, write: ChildWrite, children: list[Child]) -> bool:
        """Create or change one child. False when the world moved on (a child appeared or
        changed since it was read): the caller decides again from fresh state."""
        if write.create:
            created = await self._kube.create_runcommand(ref.namespace, _child_body(ref, write))
            if created is not None:
                logger.info("%s/%s: created child %s for %s", ref.namespace, ref.name,
                            write.name, write.cluster.name)  # fmt: skip
            return created is not None
        version = next((c.resource_version for c in children if c.name == write.name), "")
        try:
            await self._kube.patch_runcommand(ref.namespace, write.name, write.patch, version)
        except Conflict:
            return False
        return True


def _child_body(owner: ObjectRef, write: ChildWrite) -> dict[str, Any]:
    return child_body(owner, SET_KIND, "RunCommand", write.name, write.labels, write.spec)


def _any_cluster(spec: SetSpec) -> str:
    """A cluster id to parse the template with: credentials do not depend on the cluster."""
    if spec.clusters:
        return spec.clusters[0].resource_id
    assert spec.selector is not None
    return (
        f"/subscriptions/{spec.selector.subscriptions[0]}/resourceGroups/any"
        "/providers/Microsoft.ContainerService/managedClusters/any"
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
