"""kopf wiring: thin handlers that hand every object to the runtime. Nothing is decided here."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from controller.config import OperatorConfig
from controller.kube import GROUP, PLURAL, VERSION, KubeApi
from controller.runtime import Runtime

ANNOTATION_PREFIX = "aks.gitops.dev"


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    runtimes: list[Runtime] = []  # set at start-up; a list so the closures share it

    def runtime() -> Runtime:
        return runtimes[0]

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same kubeconfig / in-cluster identity as the `kubernetes` client in kube.py.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(id="startup", registry=registry)
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf's own bookkeeping lives in annotations under our prefix, never in status:
        # the CRD's strict status schema would prune it, and GitOps tools ignore annotations.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"
        # The runtime posts its own events (submitted/succeeded/failed); kopf's are noise.
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        # kopf runs one worker task per object while its events arrive; every status patch is
        # an event. Bound them and let idle ones go soon, so thousands of RunCommands do not
        # mean thousands of tasks. Waiting for ARM costs no task (see runtime.py).
        settings.batching.worker_limit = 128
        settings.batching.idle_timeout = 1.0
        settings.peering.priority = config.priority
        settings.peering.mandatory = config.peering is not None
        runtimes.append(Runtime(config, KubeApi.from_environment()))
        await runtime().start()

    @kopf.on.cleanup(id="cleanup", registry=registry)
    async def stop(**_: Any) -> None:
        if runtimes:
            await runtimes.pop().close()

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="resume", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="create", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="update", registry=registry, field="spec")
    async def reconcile(body: kopf.Body, **_: Any) -> None:
        await runtime().reconcile(body)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="forget", registry=registry, optional=True)
    async def forget(uid: str, **_: Any) -> None:
        runtime().forget(uid)

    @kopf.on.probe(id="scheduled", registry=registry)
    async def scheduled(**_: Any) -> int:
        """RunCommands waiting for their next poll, retry or TTL deletion."""
        return runtime().scheduled if runtimes else 0

    @kopf.on.probe(id="tasks", registry=registry)
    async def tasks(**_: Any) -> int:
        """asyncio tasks alive in the operator: flat, however many commands are running."""
        return len(asyncio.all_tasks())

    return registry
