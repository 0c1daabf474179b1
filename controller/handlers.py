"""kopf wiring: thin handlers that hand every object to the runtime. Nothing is decided here.

kopf is used for what it does well — watching, login, peering, probes — and not for its change
detection: that would copy the whole spec into an annotation (``last-handled-configuration``),
which pushes large specs past Kubernetes' 256 KiB annotation limit, and runs are decided from
``status.specHash`` anyway. A raw event handler sees every object at start-up and every change;
status-only changes (our own patches) are skipped by generation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import kopf

from controller import health, wiring
from controller.kube import KubeApi
from controller.parents import ParentLoop
from controller.runtime import Runtime
from controller.settings import OperatorConfig, PeeringSettings, WatchSettings
from controller.stopping import Stop
from controller.vocabulary import (
    GROUP,
    RUNCOMMAND_PLURAL,
    SCHEDULE_KIND,
    SCHEDULE_PLURAL,
    SET_KIND,
    SET_LABEL,
    SET_PLURAL,
    VERSION,
)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's change detection is not used (see above), so there is no essence to build or keep.
    kopf's default deep-copies each event's whole body, status included, to build one, and
    throws it away (its share of the CPU shows in `make bench` with BENCH_PROFILE)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The same kubeconfig / in-cluster identity as the `kubernetes` client in kube.py.
    return kopf.login_via_client(**kwargs)


async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Tune kopf, wait for the API server, build the parts (controller/wiring.py) and start
    them. `memo.config` and `memo.stop` are the operator's (see __main__.operate)."""
    config: OperatorConfig = memo.config
    tune(settings, config.watching, config.peering)
    memo.kube = kube = KubeApi.from_environment()
    # Before any watch: an API server not ready yet is waited for, one line per try, and a
    # watched namespace that does not exist is said (else the operator idles silently).
    await health.wait_for_api(kube, config.watching.namespaces, config.health)
    memo.parts = parts = wiring.build(config, kube, memo.stop)
    memo.runtime, memo.fleet, memo.schedules = parts.runtime, parts.fleet, parts.schedules
    memo.generations = {}  # uid -> metadata.generation last handed to the runtime
    await parts.start()


def tune(
    settings: kopf.OperatorSettings, watching: WatchSettings, peering: PeeringSettings
) -> None:
    """kopf's settings, from the operator's (controller/settings.py says why each is set)."""
    # The runtime posts its own events (submitted/succeeded/failed); kopf's are noise.
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = watching.server_timeout
    # kopf runs one worker task per object while its events arrive; every status patch is an
    # event. Bound them and let idle ones go soon, so thousands of RunCommands do not mean
    # thousands of tasks. Waiting for ARM costs no task (see scheduler.py).
    settings.queueing.worker_limit = watching.worker_limit
    settings.queueing.idle_timeout = watching.idle_timeout
    # A cold start over many objects: list them in chunks, and let each worker go as soon as
    # its object's events are handled (above), so objects are handled as they arrive instead
    # of piling up in kopf's per-object backlogs (make bench, memory).
    settings.watching.chunk_size = watching.chunk_size
    if watching.label_selector is not None:
        # Sharding, filtered by the API server: other shards' objects never reach this process
        # (no event, no memory), as Flux's --watch-label-selector.
        for plural in (RUNCOMMAND_PLURAL, SET_PLURAL, SCHEDULE_PLURAL):
            settings.watching.label_selectors[GROUP, plural] = watching.label_selector
    settings.peering.priority = peering.priority
    settings.peering.mandatory = peering.name is not None


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    # kopf runs this once its watchers and workers are gone; it returns once every submission
    # in flight has ARM's answer recorded (the drain), without blocking the loop.
    parts: wiring.Parts | None = memo.get("parts")
    if parts is not None:
        await parts.close()


def worth_a_look(
    event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any
) -> bool:
    """Deletions and spec changes, not status-only changes (mostly our own patches): those are
    filtered before kopf invokes, or logs, anything. Except for the children of a set or
    schedule: a child's run ending is a status-only change, and its parent must hear of it."""
    generations: dict[str, Any] = memo.generations
    return (
        event["type"] == "DELETED"
        or body.metadata.get("deletionTimestamp") is not None
        or generations.get(uid) != body.metadata.get("generation")
        or _parented(body)
    )


async def watch(event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    generations: dict[str, Any] = memo.generations
    if body.metadata.get("ownerReferences") or SET_LABEL in (body.metadata.get("labels") or {}):
        memo.fleet.child_changed(body)  # a set's child: its owner plans again (cheap)
        memo.schedules.child_changed(body)  # or a schedule's
    # A set's child whose status alone changed has no new generation: its set was told above.
    if _spec_changed(event, body, uid, generations, runtime.forget):
        await runtime.reconcile(body)


async def watch_sets(
    event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any
) -> None:
    if body.metadata.get("ownerReferences"):
        memo.schedules.child_changed(body)  # a schedule's child: its round may have ended
    _hand_to(memo.fleet, event, body, uid, memo.generations)


async def watch_schedules(
    event: kopf.RawEvent, body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any
) -> None:
    _hand_to(memo.schedules, event, body, uid, memo.generations)


async def api(memo: kopf.Memo, **_: Any) -> str:
    """Liveness: the API server answers a list of RunCommands, as the watches need. A failed
    probe handler makes kopf's endpoint answer 500 instead of 200."""
    kube: KubeApi | None = memo.get("kube")
    if kube is None:
        raise kopf.PermanentError("not started")
    config: OperatorConfig = memo.config
    try:
        await health.check_api(kube, config.watching.namespaces, config.health)
    except health.Unhealthy as error:
        raise kopf.PermanentError(str(error)) from None
    return "ok"


async def scheduled(memo: kopf.Memo, **_: Any) -> int:
    """RunCommands waiting for their next poll, retry or TTL deletion."""
    runtime: Runtime | None = memo.get("runtime")
    return runtime.scheduled if runtime is not None else 0


async def tasks(**_: Any) -> int:
    """asyncio tasks alive in the operator: flat, however many commands are running."""
    return len(asyncio.all_tasks())


def build_registry() -> kopf.OperatorRegistry:
    """The handlers above, registered under their ids. They find the operator's config and
    stop in kopf's memo (`memo(config, stop)`, handed to kopf.spawn_tasks)."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(id="login", registry=registry)(login)
    kopf.on.startup(id="startup", registry=registry)(start)
    kopf.on.cleanup(id="cleanup", registry=registry)(cleanup)
    on_event = kopf.on.event
    on_event(GROUP, VERSION, RUNCOMMAND_PLURAL, id="watch", registry=registry, when=worth_a_look)(
        watch
    )
    on_event(GROUP, VERSION, SET_PLURAL, id="watch-sets", registry=registry)(watch_sets)
    on_event(GROUP, VERSION, SCHEDULE_PLURAL, id="watch-schedules", registry=registry)(
        watch_schedules
    )
    for probe in (api, scheduled, tasks):
        kopf.on.probe(id=probe.__name__, registry=registry)(probe)
    return registry


def memo(config: OperatorConfig, stop: Stop) -> kopf.Memo:
    """kopf's root memo (each object's is a shallow copy): `stop` is the operator's stop, begun
    by its first SIGTERM (see stopping.py)."""
    return kopf.Memo(config=config, stop=stop)


def _hand_to(
    parents: ParentLoop,
    event: kopf.RawEvent,
    body: kopf.Body,
    uid: str,
    generations: dict[str, Any],
) -> None:
    """A set's or schedule's own event: a deletion (its children go with it: garbage
    collection), or a spec change; status-only changes (mostly our own patches) are skipped."""
    if _spec_changed(event, body, uid, generations, parents.forget):
        parents.reconcile(body)


def _spec_changed(
    event: kopf.RawEvent,
    body: kopf.Body,
    uid: str,
    generations: dict[str, Any],
    forget: Callable[[str], None],
) -> bool:
    """Whether the object has a generation not handed over yet (now recorded as handed). A
    deleted or deleting one is forgotten instead: `forget` drops it."""
    if event["type"] == "DELETED" or body.metadata.get("deletionTimestamp"):
        generations.pop(uid, None)
        forget(uid)
        return False
    generation = body.metadata.get("generation")
    if generations.get(uid) == generation:
        return False
    generations[uid] = generation
    return True


def _parented(body: kopf.Body) -> bool:
    """A RunCommand a RunCommandSet or RunCommandSchedule controls (its child), or one labelled
    as a set's child that none controls (an orphan the set of that name may adopt)."""
    return SET_LABEL in (body.metadata.get("labels") or {}) or any(
        owner.get("kind") in (SET_KIND, SCHEDULE_KIND) and owner.get("controller")
        for owner in body.metadata.get("ownerReferences") or ()
    )
