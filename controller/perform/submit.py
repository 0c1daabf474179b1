"""The claim path: prepare (nothing sent), claim, POST, record ARM's answer.

Everything that can fail without sending is done before the claim is written; the claim is
conditional on the resourceVersion that was read, and the POST follows it at once. From the
claim on, the run is a task of its own, which cancelling the caller (kopf's worker at a stop,
the scheduler's) does not cancel: it gets ARM's answer and records it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from controller import metrics
from controller.arm import ArmClient, ArmError, PreparedSubmission
from controller.core import (
    Decision,
    Observation,
    after_prepare_error,
    after_submit,
    after_submit_error,
)
from controller.core.input_rules import InputFailure
from controller.inputs import InputReader
from controller.kube import ObjectRef
from controller.polltimes import PollTimes

from .logs import log_fields, logger
from .measure import observe_submission_latency
from .writes import StatusWrites

Body = Mapping[str, Any]


class Perform(Protocol):
    """The runtime's step after a decision: write its patch, post its events, schedule next."""

    # Runtime._perform's signature: its docstring says what answer_of and sent mean.
    async def __call__(self, ref: ObjectRef, body: Body, decision: Decision, *,
                       answer_of: str | None = None, sent: float | None = None,
                       ) -> None: ...  # fmt: skip


class Submissions:
    """Claimed runs between their claim and the record of ARM's answer: ``tasks`` (each says
    whether it claimed its run), ``claims`` (uid -> when written, monotonic) and, among them,
    ``posts_in_flight`` awaiting ARM's answer. ``stopping``: once true, nothing more is
    claimed."""

    def __init__(
        self,
        inputs: InputReader,
        writes: StatusWrites,
        polls: PollTimes,
        perform: Perform,
        *,
        stopping: Callable[[], bool],
    ) -> None:
        self._inputs, self._writes, self._polls = inputs, writes, polls
        self._perform, self._stopping = perform, stopping
        self.tasks: set[asyncio.Task[bool]] = set()
        self.claims: dict[str, float] = {}
        self.posts_in_flight = 0

    async def submit(self, ref: ObjectRef, body: Body, seen: Observation, claim: Decision) -> None:
        spec, correlation_id = seen.spec, str(claim.correlation_id)
        try:
            arm = await self._inputs.arm_client(ref.namespace, spec, authorize=True)
            context = await self._inputs.context(ref.namespace, spec)
            command = spec.command
            if claim.fence is not None:  # submitPolicy ExactlyOnce: the wrapper runs it
                command, context = self._inputs.fenced(claim.fence, command, context)
            prepared = await arm.prepare_submission(
                spec.cluster, command, context,
                cluster_token=spec.cluster_token_mode, correlation_id=correlation_id,
            )  # fmt: skip
        except (ArmError, InputFailure) as error:
            where = metrics.target(spec.cluster.resource_id)
            metrics.ARM_ERRORS.labels("prepare", error.code, *where).inc()
            logger.warning(
                "%s/%s: nothing sent: %s: %s", ref.namespace, ref.name, error.code, error.message,
                extra=log_fields(ref, spec, {"correlationId": correlation_id}),
            )  # fmt: skip
            await self._perform(ref, body, after_prepare_error(seen, error))
            return
        # From the claim on, the run is the task's: cancelling the caller (kopf's worker at a
        # stop, the scheduler's) leaves it to get ARM's answer and record it.
        submission = asyncio.create_task(
            self._claim_and_send(ref, body, seen, claim, arm, prepared),
            name=f"submission-{ref.namespace}/{ref.name}",
        )
        self.tasks.add(submission)
        submission.add_done_callback(self.tasks.discard)
        await asyncio.shield(submission)

    async def _claim_and_send(
        self,
        ref: ObjectRef,
        body: Body,
        seen: Observation,
        claim: Decision,
        arm: ArmClient,
        prepared: PreparedSubmission,
    ) -> bool:
        """Claim, POST, record. False when the run was not claimed."""
        if self._stopping():
            # Checked in the same step as the claim's PATCH starts: none starts once the stop
            # has begun. The run is left as it was, and looked at again after the restart.
            logger.info("%s/%s: not claimed: the operator is stopping", ref.namespace, ref.name,
                        extra=log_fields(ref, seen.spec))  # fmt: skip
            return False
        claimed = await self._writes.write(ref, body, claim.patch)
        if claimed is None:
            return False  # gone, or someone else moved it on: decided again from fresh state
        self.claims[ref.uid] = time.monotonic()
        correlation_id = str(claim.correlation_id)
        try:
            await self._send_and_record(ref, claimed, seen, prepared, arm, correlation_id)
        finally:
            self.claims.pop(ref.uid, None)
        return True

    async def _send_and_record(
        self,
        ref: ObjectRef,
        claimed: Body,
        seen: Observation,
        prepared: PreparedSubmission,
        arm: ArmClient,
        correlation_id: str,
    ) -> None:
        spec, where = seen.spec, metrics.target(seen.spec.cluster.resource_id)
        seen = seen.with_status(claimed.get("status") or {})
        self.posts_in_flight += 1
        sent: float | None = asyncio.get_running_loop().time()
        try:
            handle = await arm.send_submission(prepared)
        except ArmError as error:
            outcome = "unknown" if error.outcome_unknown else "refused"
            metrics.SUBMISSIONS.labels(outcome, *where).inc()
            metrics.ARM_ERRORS.labels("submit", error.code, *where).inc()
            logger.warning("%s/%s: submission failed: %s: %s",
                           ref.namespace, ref.name, error.code, error.message,
                           extra=log_fields(ref, spec, seen.status))  # fmt: skip
            decision = after_submit_error(seen, error)
            sent = None
        else:
            metrics.SUBMISSIONS.labels("accepted", *where).inc()
            observe_submission_latency(claimed, seen, where)
            logger.info("%s/%s: submitted to %s as command %s",
                        ref.namespace, ref.name, spec.cluster.name, handle.command_id,
                        extra=log_fields(ref, spec, {"commandId": handle.command_id,
                                                     "correlationId": correlation_id}))  # fmt: skip
            cluster = spec.cluster
            expected = self._polls.submitted(ref.uid, cluster.subscription_id, cluster.resource_id)
            cadence = self._polls.cadence(ref.uid, cluster.subscription_id)
            decision = after_submit(seen, handle, expected, cadence)
            if handle.retry_after is not None:
                sent = None  # Retry-After counts from ARM's answer
        finally:
            self.posts_in_flight -= 1
        await self._perform(ref, claimed, decision, answer_of=correlation_id, sent=sent)
