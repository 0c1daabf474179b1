"""Read, decide, perform for RunCommandSets: read the set and its children, discover clusters
through ARM when a round starts (or, with followNewClusters, every minute), ask the core
(core/set_round.py) what to do, create or change children, and patch the set's status.

Children carry the run: each is an ordinary RunCommand that the runtime submits exactly once.
Child names are derived from the set's name and the cluster id, so a create after a restart
finds the child that is there (AlreadyExists) instead of making a twin. Every write is
conditional (resourceVersion); a lost race re-reads and decides again, after a short backoff
that grows while the race keeps being lost.

RunCommands under the set's name that it does not control (its predecessor's children, still
there while garbage collection runs) are never created over: orphans of the same template are
adopted, others are reported in status and with an event, and the set looks again with backoff
(core/adoption.py says why). Nothing here loops on ARM: clusters are listed once per round,
and again at each of those backed-off looks (a held name is a target with no child to say so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from controller import metrics
from controller.arm import ArmError, DiscoveredCluster
from controller.core import InvalidSpec, RunSpec
from controller.core.adoption import Foreign, adoptable
from controller.core.input_rules import InputFailure
from controller.core.set_children import Child, ChildWrite, SetObservation
from controller.core.set_round import SetDecision, plan_set
from controller.core.set_spec import SetSpec
from controller.core.set_status import set_problem
from controller.inputs import InputReader
from controller.kube import Conflict, KubeApi, ObjectRef
from controller.parents import ParentLoop, child_body, object_ref, owned_by
from controller.settings import FleetSettings, ParentSettings
from controller.vocabulary import (
    GROUP,
    RUNCOMMAND_KIND,
    SET_KIND,
    SET_LABEL,
    SET_PLURAL,
    SHARD_LABEL,
    TEMPLATE_LABEL,
    VERSION,
    ClusterState,
    Reason,
    SetState,
)

logger = logging.getLogger("controller.fleet")
Body = Mapping[str, Any]


class Fleet(ParentLoop):
    kind, plural = SET_KIND, SET_PLURAL

    def __init__(
        self,
        kube: KubeApi,
        inputs: InputReader,
        *,
        settings: FleetSettings | None = None,
        parents: ParentSettings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`settings`, `parents`: the operator's (controller/wiring.py), else the defaults."""
        settings, parents = settings or FleetSettings(), parents or ParentSettings()
        super().__init__(
            kube, workers=settings.workers, child_settle_seconds=parents.child_settle_seconds
        )
        self._inputs, self._now, self._settings = inputs, now, settings
        self._discovered_at: dict[str, tuple[str, float]] = {}  # uid -> (round key, monotonic)
        # For the metrics: each set's round state and its clusters' run states, as last written.
        self._rounds: dict[str, tuple[str, Counter[str]]] = {}
        self._backoff: dict[str, float] = {}  # uid -> the last backoff delay, while it grows
        self._sets: dict[tuple[str, str], ObjectRef] = {}  # (namespace, name) -> the live set

    async def start(self) -> None:
        metrics.observe_sets(self._round_states)
        await super().start()

    def _round_states(self) -> Iterator[tuple[str, Counter[str]]]:
        return iter(list(self._rounds.values()))

    # Entry points from kopf -----------------------------------------------------------------

    def reconcile(self, body: Body) -> None:
        """The set was created, its spec changed, or it was found at start-up."""
        ref = object_ref(body)
        self._sets[ref.namespace, ref.name] = ref
        self._plan(ref, 0.0)

    def child_changed(self, child: Body) -> None:
        """A child changed: plan its owner again, soon (several changes, one plan). A child
        of a set's predecessor (another uid, or an orphan now) concerns the set of that name:
        its being collected or orphaned is what a blocked set waits for."""
        metadata = child["metadata"]
        namespace = metadata["namespace"]
        owners = [o for o in metadata.get("ownerReferences") or () if o.get("controller")]
        for owner in owners:
            if owner.get("kind") == SET_KIND:
                ref = ObjectRef(namespace, owner["name"], owner["uid"])
                current = self._sets.get((namespace, ref.name))
                self._plan(current if current is not None else ref, self._child_settle)
        named = (metadata.get("labels") or {}).get(SET_LABEL)
        if not owners and named and (namespace, named) in self._sets:
            self._plan(self._sets[namespace, named], self._child_settle)

    def forget(self, uid: str) -> None:
        """The set is being deleted; its children go with it (garbage collection)."""
        super().forget(uid)
        for key, ref in list(self._sets.items()):
            if ref.uid == uid:
                del self._sets[key]
        self._discovered_at.pop(uid, None)
        self._rounds.pop(uid, None)
        self._backoff.pop(uid, None)

    def _plan_backing_off(self, ref: ObjectRef, trouble: Literal["lost race", "blocked"]) -> float:
        """Plan again after a delay that doubles from the trouble's first delay up to its most
        (FleetSettings) while the same trouble lasts (a success resets it): never a tight loop
        over the API server or ARM."""
        timing = self._settings
        first, most = (
            (timing.retry_first_seconds, timing.retry_max_seconds)
            if trouble == "lost race"
            else (timing.blocked_first_seconds, timing.blocked_max_seconds)
        )
        delay = min(most, max(first, self._backoff.get(ref.uid, 0.0) * 2))
        self._backoff[ref.uid] = delay
        self._plan(ref, delay)
        return delay

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
        foreign = [_foreign(c) for c in listed if not owned_by(c, ref.uid)]
        if await self._adopt(ref, spec, foreign):
            self._plan(ref, 0.0)  # decide with the adopted children as its own
            return
        try:
            discovered = await self._discover(
                ref, spec, status, targets_known=bool(children) and not _held(foreign, status)
            )
        except (ArmError, InputFailure) as error:
            message = f"cannot list managed clusters: {error.code}: {error.message}"
            logger.warning("%s/%s: %s", ref.namespace, ref.name, message)
            problem = set_problem(
                status, generation, now, Reason.DISCOVERY_FAILED, message, stalled=False
            )
            await self._write_status(ref, body, problem)
            self._plan(ref, self._settings.discovery_retry_seconds)
            return
        shard = (body["metadata"].get("labels") or {}).get(SHARD_LABEL)
        seen = SetObservation(
            ref.name, spec, status, generation, children, discovered, now, shard, foreign
        )
        decision = plan_set(seen)
        if not await self._apply_all(ref, decision.writes, children):
            # A child changed or appeared since it was read: decide again on fresh state.
            self._plan_backing_off(ref, "lost race")
            return
        written = await self._write_status(ref, body, decision.status)
        if written and discovered is not None:
            self._discovered_at[ref.uid] = (spec.round_key, time.monotonic())
        if written:
            await self._post_events(ref, decision)
        if decision.blocked:
            delay = self._plan_backing_off(ref, "blocked")
            logger.info("%s/%s: %d child name(s) held by another owner; looking again in %.0fs",
                        ref.namespace, ref.name, len(decision.blocked), delay)  # fmt: skip
        elif written:
            self._backoff.pop(ref.uid, None)
        if decision.wake_after is not None:  # a soak or the progress deadline ends then
            self._plan(ref, decision.wake_after + self._settings.wake_margin_seconds)
        if spec.follow_new_clusters and spec.selector is not None:
            self._plan(ref, self._settings.follow_seconds)

    async def _adopt(self, ref: ObjectRef, spec: SetSpec, foreign: Sequence[Foreign]) -> bool:
        """Take over the orphans made from this set's template (core/adoption.py); True when
        one was adopted. A lost race leaves the orphan as it was for the next look."""
        adopted = False
        for child in foreign:
            if not adoptable(child, spec.template_key):
                continue
            patch = {"metadata": {"ownerReferences": [_owner_reference(ref)]}}
            try:
                await self._kube.patch_runcommand(
                    ref.namespace, child.name, patch, child.resource_version
                )
            except Conflict:
                continue
            logger.info("%s/%s: adopted orphan %s", ref.namespace, ref.name, child.name)
            adopted = True
        return adopted

    async def _post_events(self, ref: ObjectRef, decision: SetDecision) -> None:
        for event in decision.events:
            try:
                await self._kube.post_event(ref, event.type, event.reason, event.message, SET_KIND)
            except Exception as error:  # an event is best effort; the status says it all
                logger.warning("%s/%s: could not post event %s: %s",
                               ref.namespace, ref.name, event.reason, error)  # fmt: skip

    async def _discover(
        self, ref: ObjectRef, spec: SetSpec, status: Mapping[str, Any], *, targets_known: bool
    ) -> list[DiscoveredCluster] | None:
        """List the selector's clusters when a round starts, and with followNewClusters once
        per interval; None when this look needs no discovery."""
        if spec.selector is None:
            return None
        last = self._discovered_at.get(ref.uid)
        round_started = status.get("roundKey") == spec.round_key
        # A round whose own children do not say who all its targets are lists again
        # (core/set_members.py takes its targets from a list, or from its own children): it
        # has none yet, or a target has no child because another owner held its name.
        # Otherwise they do, after a restart too.
        if round_started and last is not None and last[0] == spec.round_key and targets_known:
            due = time.monotonic() - last[1] >= self._settings.follow_seconds
            if not (spec.follow_new_clusters and due):
                return None
        elif round_started and not spec.follow_new_clusters and targets_known:
            return None
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
        """All writes, FleetSettings.write_concurrency at a time: a round over hundreds of
        clusters is not hundreds of API server round trips in a row. The writes are
        independent (one child each), and each is safe to repeat, so a partial failure only
        means deciding again."""
        gate = asyncio.Semaphore(self._settings.write_concurrency)

        async def one(write: ChildWrite) -> bool:
            async with gate:
                return await self._apply(ref, write, children)

        return all(await asyncio.gather(*(one(write) for write in writes)))

    async def _apply(self, ref: ObjectRef, write: ChildWrite, children: list[Child]) -> bool:
        """Create or change one child. False when the world moved on (a child appeared or
        changed since it was read): the caller decides again from fresh state."""
        if write.create:
            created = await self._kube.create_runcommand(
                ref.namespace,
                child_body(ref, SET_KIND, RUNCOMMAND_KIND, write.name, write.labels, write.spec),
            )
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

    async def _write_status(self, ref: ObjectRef, body: Body, status: Mapping[str, Any]) -> bool:
        written = await super()._write_status(ref, body, status)
        if written:
            before = body.get("status") or {}
            self._saw_round(ref.uid, before, {**before, **status})
        return written

    def _saw_round(self, uid: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        state = str(after.get("state") or SetState.PENDING)
        clusters = Counter(str(entry.get("state")) for entry in after.get("clusters") or ())
        self._rounds[uid] = (state, clusters)
        ended = state in (SetState.SUCCEEDED, SetState.FAILED)
        was = (before.get("state"), before.get("roundKey"))
        if ended and was != (state, after.get("roundKey")):
            metrics.SET_ROUNDS_FINISHED.labels(state, str(after.get("reason") or "")).inc()


def _held(foreign: Sequence[Foreign], status: Mapping[str, Any]) -> bool:
    """Whether a name under the set is held by another owner (a predecessor's child, being
    collected), or was at the last look (a Blocked cluster in status: collected since, and
    not created yet); either way that target has no child of its own."""
    entries = status.get("clusters") or ()
    return bool(foreign) or any(e.get("state") == ClusterState.BLOCKED for e in entries)


def _foreign(child: Body) -> Foreign:
    metadata = child.get("metadata") or {}
    owners = metadata.get("ownerReferences") or ()
    controller = next((o for o in owners if o.get("controller")), None)
    return Foreign(
        name=str(metadata.get("name", "")),
        owner=f"{controller.get('kind')}/{controller.get('name')}" if controller else None,
        template_key=(metadata.get("labels") or {}).get(TEMPLATE_LABEL),
        resource_version=str(metadata.get("resourceVersion", "")),
    )


def _owner_reference(owner: ObjectRef) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": SET_KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


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
