"""What every parent kind shares (a RunCommandSet owns RunCommands, a RunCommandSchedule owns
RunCommands or sets, as a CronJob owns Jobs): a look per parent on the operator's scheduler,
under the parent's lock, soon after a child changes; conditional status writes; errors as a
line and a retry; and children created with a controller ownerReference, so garbage collection
takes them with their parent.

Subclasses say what a look is (``_look``): read, ask the core, perform. Nothing here decides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from controller.kube import Conflict, KubeApi, ObjectRef, transient
from controller.scheduler import Job, Scheduler
from controller.vocabulary import API_VERSION

Body = Mapping[str, Any]


class ParentLoop:
    kind: str  # the parent's kind, as its children's ownerReferences name it
    plural: str

    def __init__(self, kube: KubeApi, *, workers: int, child_settle_seconds: float) -> None:
        """`child_settle_seconds`: child events within this window are one look."""
        self._kube, self._child_settle = kube, child_settle_seconds
        self._scheduler: Scheduler[ObjectRef] = Scheduler(
            self._run, self._on_error, workers=workers
        )
        self._due: dict[str, float] = {}  # uid -> when its pending look runs (monotonic)
        self._logger = logging.getLogger(type(self).__module__)

    async def start(self) -> None:
        await self._scheduler.start()

    async def close(self) -> None:
        await self._scheduler.close()

    def reconcile(self, body: Body) -> None:
        """The parent was created, its spec changed, or it was found at start-up."""
        self._plan(object_ref(body), 0.0)

    def child_changed(self, child: Body) -> None:
        """A child changed: its owner looks again, soon (several changes, one look)."""
        for owner in child["metadata"].get("ownerReferences") or ():
            if owner.get("kind") == self.kind and owner.get("controller"):
                ref = ObjectRef(child["metadata"]["namespace"], owner["name"], owner["uid"])
                self._plan(ref, self._child_settle)

    def forget(self, uid: str) -> None:
        """The parent is being deleted; its children go with it (garbage collection)."""
        self._scheduler.unschedule(uid)
        self._due.pop(uid, None)

    def _plan(self, ref: ObjectRef, delay: float) -> None:
        """Look at the parent in `delay` seconds, unless a look is due sooner already: a burst
        of child changes is one look, and a far-off timer never holds a child change back."""
        due = time.monotonic() + delay
        sooner = self._due.get(ref.uid)
        if self._scheduler.is_pending(ref.uid) and sooner is not None and sooner <= due:
            return
        self._due[ref.uid] = due
        self._scheduler.schedule(ref.uid, "plan", ref, delay)

    async def _run(self, job: Job[ObjectRef]) -> None:
        self._due.pop(job.payload.uid, None)
        await self._look(job.payload)

    async def _look(self, ref: ObjectRef) -> None:
        raise NotImplementedError

    async def _write_status(self, ref: ObjectRef, body: Body, status: Mapping[str, Any]) -> bool:
        """Write the status unless it would change nothing (lastTransitionTime aside); False
        when the parent changed since it was read (looked at again at once) or is gone."""
        current = body.get("status") or {}
        if all(current.get(key) == value for key, value in status.items()):
            return True
        try:
            written = await self._kube.patch_status(
                ref, dict(status), str(body["metadata"]["resourceVersion"]), self.plural
            )
        except Conflict:
            self._plan(ref, 0.0)
            return False
        if written is None:
            self.forget(ref.uid)
        return written is not None

    def _on_error(self, job: Job[ObjectRef], error: Exception) -> float:
        ref = job.payload
        if transient(error):
            self._logger.warning(
                "%s/%s: the Kubernetes API is unavailable (%s); looking again in 5s",
                ref.namespace, ref.name, error,
            )  # fmt: skip
            return 5.0
        self._logger.exception(
            "unexpected error while handling %s %s/%s; looking again in 30s",
            self.kind, ref.namespace, ref.name,
        )  # fmt: skip
        return 30.0


def object_ref(body: Body) -> ObjectRef:
    metadata = body["metadata"]
    return ObjectRef(metadata["namespace"], metadata["name"], metadata["uid"])


def owned_by(child: Body, uid: str) -> bool:
    owners = child.get("metadata", {}).get("ownerReferences") or ()
    return any(o.get("uid") == uid and o.get("controller") for o in owners)


def child_body(
    owner: ObjectRef,
    owner_kind: str,
    kind: str,
    name: str,
    labels: Mapping[str, str],
    spec: Mapping[str, Any],
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A child owned by `owner` (controller ownerReference, blocking its deletion)."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": dict(labels),
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": owner_kind,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": dict(spec),
    }
