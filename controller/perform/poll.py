"""The poll path: ask ARM for a submitted command's result and decide from its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from controller import metrics
from controller.arm import ArmError, CommandResult
from controller.core import Observation, after_poll, after_poll_error, command_handle
from controller.core.durations import ended_run
from controller.core.input_rules import InputFailure
from controller.inputs import InputReader
from controller.kube import ObjectRef
from controller.polltimes import PollTimes

from .logs import log_fields, logger
from .submit import Perform

Body = Mapping[str, Any]


class Poller:
    def __init__(self, inputs: InputReader, polls: PollTimes, perform: Perform) -> None:
        self._inputs, self._polls, self._perform = inputs, polls, perform

    async def poll(self, ref: ObjectRef, body: Body, seen: Observation) -> None:
        handle = command_handle(seen.status)
        assert handle is not None  # seen.in_flight
        previous = self._polls.previous_delay(ref.uid)
        sent: float | None = asyncio.get_running_loop().time()
        try:
            arm = await self._inputs.arm_client(ref.namespace, seen.spec, authorize=False)
            answer = await arm.poll(handle)
        except (ArmError, InputFailure) as error:
            where = metrics.target(seen.spec.cluster.resource_id)
            metrics.ARM_ERRORS.labels("poll", error.code, *where).inc()
            logger.warning("%s/%s: polling failed: %s: %s",
                           ref.namespace, ref.name, error.code, error.message,
                           extra=log_fields(ref, seen.spec, seen.status))  # fmt: skip
            decision = after_poll_error(seen, error, previous)
            sent = None  # a retry waits from the failure, and Retry-After from its answer
        else:
            cluster = seen.spec.cluster
            cadence = self._polls.cadence(ref.uid, cluster.subscription_id)
            decision = after_poll(seen, answer, previous, cadence)
            if isinstance(answer, CommandResult):
                ended = ended_run(answer.started_at, answer.finished_at, handle.command_id)
                if ended is not None:
                    self._polls.ended(cluster.subscription_id, cluster.resource_id, ended)
            elif answer.retry_after is not None:
                sent = None  # Retry-After counts from ARM's answer
        await self._perform(ref, body, decision, sent=sent)
