"""Performs what the core decides: ARM calls, status patches, events, and the polling schedule.

At scale, waiting costs no task: each waiting RunCommand is one timer handle on the event loop;
a fixed pool of workers does the polls, and the ARM client's token buckets keep the request
rate inside ARM's read budget, however many commands are running.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from controller import metrics
from controller.arm import (
    ArmClient,
    ArmError,
    ArmThrottle,
    ClusterTokenMode,
    CommandHandle,
    ContextTooLargeError,
    CredentialConfig,
    SubmissionOutcomeUnknown,
    build_context,
)
from controller.config import OperatorConfig
from controller.core import (
    Action,
    Decision,
    InvalidSpec,
    RunSpec,
    after_error,
    after_poll,
    after_submit,
    invalid_spec,
    plan,
)
from controller.identities import ArmClients, Identity
from controller.kube import KubeApi, ObjectRef

logger = logging.getLogger("controller.runtime")
Work = Literal["plan", "poll", "delete"]
_TOKEN_MODES: dict[str, ClusterTokenMode] = {"Auto": "auto", "Always": "always", "Never": "never"}


class InputError(Exception):
    """A RunCommand's inputs (files, credentials) are missing or unusable. Missing ones may
    appear later (GitOps applies in any order), so they are retried like transient ARM errors."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable
        self.retry_after: float | None = None


@dataclass
class _Pending:
    ref: ObjectRef
    work: Work
    timer: asyncio.TimerHandle | None = None


class Runtime:
    def __init__(
        self,
        config: OperatorConfig,
        kube: KubeApi,
        *,
        workers: int = 16,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._kube = kube
        self._now = now
        self._worker_count = workers
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=config.arm_ca_file) if config.arm_ca_file else True
        )
        self._http = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(30.0, connect=10.0))
        # One connection pool, and one ARM budget per subscription, shared by all identities.
        self._arm = ArmClients(config.cloud, self._http, ArmThrottle(), ca_file=config.arm_ca_file)
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, _Pending] = {}
        self._poll_delays: dict[str, float] = {}
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    # Lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        metrics.watch_waiting(lambda: self.scheduled)
        self._workers = [
            asyncio.create_task(self._work(), name=f"runcommand-worker-{i}")
            for i in range(self._worker_count)
        ]

    async def close(self) -> None:
        for pending in self._pending.values():
            if pending.timer:
                pending.timer.cancel()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._arm.aclose()
        await self._http.aclose()

    @property
    def scheduled(self) -> int:
        return len(self._pending)

    # Entry points from kopf -----------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """The object was created, changed, or found at start-up: look at it afresh."""
        ref = _ref(body)
        async with self._lock(ref.uid):
            self._unschedule(ref.uid)
            # kopf's body may predate a status patch made while we waited for the lock; a
            # stale "Submitting" would look like a crash mid-submission. Decide on fresh state.
            fresh = await self._kube.read_runcommand(ref)
            if fresh is None:
                self.forget(ref.uid)
                return
            await self._plan_and_perform(ref, fresh)

    def forget(self, uid: str) -> None:
        """The object is being deleted: stop polling it. ARM has no cancel, nothing else to do."""
        self._unschedule(uid)
        self._locks.pop(uid, None)
        self._poll_delays.pop(uid, None)

    # Scheduling -----------------------------------------------------------------------------

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _schedule(self, ref: ObjectRef, work: Work, delay: float) -> None:
        self._unschedule(ref.uid)
        pending = _Pending(ref, work)
        pending.timer = asyncio.get_running_loop().call_later(
            max(0.0, delay), self._queue.put_nowait, pending
        )
        self._pending[ref.uid] = pending

    def _unschedule(self, uid: str) -> None:
        pending = self._pending.pop(uid, None)
        if pending and pending.timer:
            pending.timer.cancel()

    async def _work(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                async with self._lock(pending.ref.uid):
                    if self._pending.get(pending.ref.uid) is not pending:
                        continue  # superseded by a newer decision while queued
                    del self._pending[pending.ref.uid]
                    await self._run(pending)
            except Exception:
                logger.exception(
                    "unexpected error while handling %s/%s; retrying in 30s",
                    pending.ref.namespace,
                    pending.ref.name,
                )
                self._schedule(pending.ref, "plan", 30.0)

    async def _run(self, pending: _Pending) -> None:
        ref = pending.ref
        if pending.work == "delete":
            logger.info(
                "deleting %s/%s: ttlSecondsAfterFinished has passed", ref.namespace, ref.name
            )
            await self._kube.delete_runcommand(ref)
            return
        body = await self._kube.read_runcommand(ref)
        if body is None:
            self.forget(ref.uid)
            return
        if pending.work == "plan":
            await self._plan_and_perform(ref, body)
        else:
            await self._poll(ref, body)

    # Performing decisions -------------------------------------------------------------------

    async def _plan_and_perform(self, ref: ObjectRef, body: Mapping[str, Any]) -> None:
        status = body.get("status") or {}
        generation = int(body["metadata"].get("generation", 0))
        try:
            spec = RunSpec.parse(body.get("spec") or {})
        except InvalidSpec as error:
            decision = invalid_spec(status, generation, self._now(), str(error))
            if await self._patch(ref, decision.patch) is not None:
                for event in decision.events:
                    await self._event(ref, event.type, event.reason, event.message)
            return
        decision = plan(spec, status, generation, self._now(), self._config.settings)
        await self._perform(ref, spec, status, generation, decision)

    async def _perform(
        self,
        ref: ObjectRef,
        spec: RunSpec,
        status: Mapping[str, Any],
        generation: int,
        decision: Decision,
    ) -> None:
        while True:
            if decision.patch:
                patched = await self._patch(ref, decision.patch)
                if patched is None:
                    self.forget(ref.uid)
                    return
                status = patched
            if decision.finished:
                metrics.RUNS_FINISHED.labels(decision.finished, status.get("reason", "")).inc()
            for event in decision.events:
                await self._event(ref, event.type, event.reason, event.message)
            if decision.action is Action.SUBMIT:
                decision = await self._submit(
                    ref, spec, status, generation, decision.correlation_id
                )
                continue
            if decision.action is Action.POLL:
                self._poll_delays[ref.uid] = decision.delay
                self._schedule(ref, "poll", decision.delay)
            elif decision.action is Action.RETRY:
                self._schedule(ref, "plan", decision.delay)
            elif decision.action is Action.DELETE:
                self._schedule(ref, "delete", decision.delay)
            return

    async def _patch(self, ref: ObjectRef, patch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        body = await self._kube.patch_status(ref, dict(patch))
        return None if body is None else body.get("status") or {}

    async def _event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        try:
            await self._kube.post_event(ref, type_, reason, message)
        except Exception as error:  # an event is best effort; the status already says it all
            logger.warning(
                "could not post event %s for %s/%s: %s", reason, ref.namespace, ref.name, error
            )

    async def _submit(
        self,
        ref: ObjectRef,
        spec: RunSpec,
        status: Mapping[str, Any],
        generation: int,
        correlation_id: str | None,
    ) -> Decision:
        settings = self._config.settings
        try:
            self._check_cloud(spec)
            arm = await self._arm_client(ref.namespace, spec)
            context = await self._context(ref.namespace, spec)
            handle = await arm.submit(
                spec.cluster, spec.command, context, correlation_id=correlation_id
            )
        except (ArmError, InputError) as error:
            unknown = isinstance(error, SubmissionOutcomeUnknown)
            metrics.SUBMISSIONS.labels("unknown" if unknown else "refused").inc()
            metrics.ARM_ERRORS.labels("submit", error.code).inc()
            logger.warning(
                "submitting %s/%s failed: %s: %s",
                ref.namespace,
                ref.name,
                error.code,
                error.message,
            )
            return after_error(
                spec, status, error, generation, self._now(), settings, submitting=True
            )
        metrics.SUBMISSIONS.labels("accepted").inc()
        logger.info(
            "submitted %s/%s to %s as command %s",
            ref.namespace,
            ref.name,
            spec.cluster.name,
            handle.command_id,
        )
        return after_submit(spec, status, handle, generation, self._now(), settings)

    async def _poll(self, ref: ObjectRef, body: Mapping[str, Any]) -> None:
        status = body.get("status") or {}
        generation = int(body["metadata"].get("generation", 0))
        try:
            spec = RunSpec.parse(body.get("spec") or {})
        except InvalidSpec:
            await self._plan_and_perform(ref, body)  # records the error in status
            return
        if status.get("specHash") != spec.run_hash or not status.get("commandId"):
            await self._plan_and_perform(ref, body)  # the spec moved on while we waited
            return
        handle = CommandHandle(
            str(status["commandId"]), str(status["location"]), str(status["correlationId"])
        )
        previous = self._poll_delays.get(ref.uid, self._config.settings.poll_initial_seconds)
        try:
            arm = await self._arm_client(ref.namespace, spec)
            answer = await arm.poll(handle)
        except (ArmError, InputError) as error:
            metrics.ARM_ERRORS.labels("poll", error.code).inc()
            logger.warning(
                "polling %s/%s failed: %s: %s", ref.namespace, ref.name, error.code, error.message
            )
            decision = after_error(
                spec,
                status,
                error,
                generation,
                self._now(),
                self._config.settings,
                submitting=False,
                previous_delay=previous,
            )
        else:
            decision = after_poll(
                spec, status, answer, generation, self._now(), self._config.settings, previous
            )
        await self._perform(ref, spec, status, generation, decision)

    # Inputs: credentials and files ----------------------------------------------------------

    async def _arm_client(self, namespace: str, spec: RunSpec) -> ArmClient:
        """Most specific identity wins: the spec's Secret, the namespace default, the operator's.
        Secrets are only ever read from the RunCommand's own namespace."""
        secret_name = spec.credentials_secret or self._config.default_credentials_secret
        found = await self._kube.read_secret(namespace, secret_name)
        if found is None and spec.credentials_secret:
            raise InputError(
                "CredentialsNotFound", f"credentials Secret {namespace}/{secret_name} not found"
            )
        if found is None:
            identity: Identity = ("operator",)
            version = ""
            config = self._config.credential
        else:
            identity, version = ("secret", namespace, secret_name), found.resource_version
            try:
                config = CredentialConfig.from_secret_data(found.data)
            except ValueError as error:
                raise InputError(
                    "InvalidCredentials",
                    f"credentials Secret {namespace}/{secret_name}: {error}",
                    retryable=False,
                ) from error
            if (
                config.mode == "workload-identity"
                and not self._config.workload_identity_from_secrets
            ):
                # It would exchange the operator's own service-account token for any client id
                # a Secret names: every namespace could borrow every identity that trusts it.
                raise InputError(
                    "InvalidCredentials",
                    f"credentials Secret {namespace}/{secret_name} asks for workload identity, "
                    "which uses the operator's own token; the operator refuses it unless started "
                    "with --allow-workload-identity-from-secrets",
                    retryable=False,
                )
        return self._arm.get(identity, version, config, _TOKEN_MODES[spec.cluster_token])

    def _check_cloud(self, spec: RunSpec) -> None:
        """One operator talks to one ARM endpoint: a cluster in another cloud is unreachable."""
        operator_cloud = self._config.cloud.name
        if spec.cloud and operator_cloud != "Custom" and spec.cloud != operator_cloud:
            raise InputError(
                "CloudMismatch",
                f"spec.cluster.cloud is {spec.cloud} but this operator serves {operator_cloud}; "
                "run an operator for that cloud",
                retryable=False,
            )

    async def _context(self, namespace: str, spec: RunSpec) -> str | None:
        if spec.context is not None:
            if len(spec.context) > self._config.max_context_bytes:
                raise ContextTooLargeError(len(spec.context), self._config.max_context_bytes)
            return spec.context
        files: dict[str, bytes] = {path: content.encode() for path, content in spec.files.items()}
        for source in spec.files_from:
            read: Callable[[str, str], Awaitable[Any]] = (
                self._kube.read_configmap if source.kind == "ConfigMap" else self._kube.read_secret
            )
            found = await read(namespace, source.name)
            if found is None:
                raise InputError(
                    "FilesNotFound",
                    f"{source.kind} {namespace}/{source.name} named in spec.filesFrom not found",
                )
            keys = source.keys or tuple(sorted(found.data))
            missing = [key for key in keys if key not in found.data]
            if missing:
                raise InputError(
                    "FilesNotFound",
                    f"{source.kind} {namespace}/{source.name} has no key {', '.join(missing)}",
                )
            prefix = source.path_prefix.strip("/")
            for key in keys:
                files[f"{prefix}/{key}" if prefix else key] = found.data[key]
        return build_context(files, self._config.max_context_bytes) if files else None


def _ref(body: Mapping[str, Any]) -> ObjectRef:
    metadata = body["metadata"]
    return ObjectRef(metadata["namespace"], metadata["name"], metadata["uid"])
