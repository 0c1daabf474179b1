"""Read, decide, perform: the runtime reads a RunCommand afresh, asks the core what to do, and
does it — ARM calls, conditional status patches, events — then hands the next step to the
scheduler.

Exactly once, as performed here:
- everything that can fail without sending (inputs, credentials, token, cluster lookup) is done
  before the claim is written; the claim is conditional on the resourceVersion that was read,
  and the POST follows it at once;
- every status write is conditional; a lost race re-reads and decides again, never submits on
  stale state;
- ARM's answer to a POST is written whatever it takes while this process lives: a management
  API server outage delays the record, it never drops the command id;
- a stop (SIGTERM) claims nothing more, drops polls and timers (a restart resumes them), and
  waits for every submission already claimed to get ARM's answer and record it: claim, POST and
  record run in a task of their own, which cancelling the caller (kopf's worker, the
  scheduler's) does not cancel.

The runtime takes its collaborators (the Kubernetes API, the inputs and their ARM clients);
they are built and closed in one place, controller/wiring.py. What it performs lives in
controller/perform/, one concern a module: the claim path, the poll, status writes, output,
events, metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from controller import metrics
from controller.config import OperatorConfig
from controller.core import Action, Decision, InvalidSpec, Observation, RunSpec, invalid_spec, plan
from controller.inputs import InputReader
from controller.kube import KubeApi, ObjectRef, transient
from controller.perform.events import post_event
from controller.perform.logs import log_fields, one_line
from controller.perform.measure import run_ended
from controller.perform.output_writes import delete_output, write_output
from controller.perform.poll import Poller
from controller.perform.submit import Submissions
from controller.perform.writes import StatusWrites
from controller.polltimes import PollTimes, Room
from controller.scheduler import Job, Scheduler
from controller.vocabulary import State

__all__ = ["Runtime", "log_fields"]

logger = logging.getLogger("controller.runtime")
Body = Mapping[str, Any]


class Runtime:
    def __init__(
        self,
        config: OperatorConfig,
        kube: KubeApi,
        inputs: InputReader,
        *,
        poll_room: Room | None = None,
    ) -> None:
        """`poll_room`: what the shared ARM budget says per subscription (the throttle's
        read-only ArmThrottle.poll_room); polls are paced by it."""
        self._config, self._kube, self._inputs = config, kube, inputs
        self._scheduler: Scheduler[ObjectRef] = Scheduler(
            self._run, self._on_error, workers=config.runtime.workers
        )
        # The object as last seen (our own write, or the event) for those with a next step
        # scheduled: a poll need not read it again. Every write is conditional on its
        # resourceVersion, so a stale one costs a 409 and a re-read, never a wrong write.
        self._latest: dict[str, Body] = {}
        self._polls = PollTimes(
            config.settings,
            lambda uid, delay: self._scheduler.advance(uid, "poll", delay),
            room=poll_room,
            wave=config.polls.wave,
        )
        self._writes = StatusWrites(
            kube,
            decide_again=lambda ref: self._scheduler.schedule(ref.uid, "plan", ref, 0.0),
            forget=self.forget,
            record_backoff=config.runtime.record_backoff,
        )
        # Claimed runs between their claim and the record of ARM's answer (see perform/submit).
        self._submissions = Submissions(
            inputs, self._writes, self._polls, self._perform,
            stopping=lambda: self._stopping is not None,
        )  # fmt: skip
        self._poller = Poller(inputs, self._polls, self._perform)
        self._at_stop: list[asyncio.Task[bool]] = []  # those in flight when the stop began
        self._stopping: float | None = None  # when the stop began (monotonic)
        # Each followed RunCommand's state, for the metrics; an object not in it has been
        # forgotten, and a job that ends for it schedules nothing (_schedule_next).
        self._states: dict[str, str] = {}

    async def start(self) -> None:
        metrics.watch_waiting(lambda: self.scheduled)
        metrics.observe_runtime(
            metrics.RuntimeView(
                states=lambda: list(self._states.values()),
                claim_ages=self._claim_ages,
                in_flight=lambda: self._submissions.posts_in_flight,
                claim_lease_seconds=self._config.settings.claim_lease_seconds,
            )
        )
        await self._scheduler.start()

    def begin_stop(self) -> None:
        """Stop at once claiming runs, polling and firing timers; submissions already claimed
        go on until ARM answers and the answer is recorded (`close` waits for them)."""
        if self._stopping is not None:
            return
        self._stopping = time.monotonic()
        self._at_stop = list(self._submissions.tasks)
        self._scheduler.stop()
        logger.info(
            "stopping: no new run is claimed; waiting for ARM's answer to %d submission(s) in "
            "flight", len(self._at_stop),
        )  # fmt: skip

    async def close(self) -> None:
        """Stop (if not begun), and return once every submission in flight is recorded."""
        self.begin_stop()
        ended = await asyncio.gather(*self._at_stop, return_exceptions=True)
        await self._scheduler.close()
        for error in ended:  # no caller is left to hear of these
            if isinstance(error, Exception) and transient(error):
                # Only the claim's write lets one out (the record retries): nothing was sent.
                logger.warning("a submission in flight at the stop was not sent: its claim "
                               "could not be written (%s)", one_line(error))  # fmt: skip
            elif isinstance(error, BaseException):
                logger.error("a submission in flight at the stop failed", exc_info=error)
        assert self._stopping is not None
        logger.info(
            "stopped in %.1fs: %d submission(s) in flight at the stop answered and recorded",
            time.monotonic() - self._stopping, sum(1 for claimed in ended if claimed is True),
        )  # fmt: skip

    @property
    def in_flight(self) -> int:
        """Submissions between their claim and the record of ARM's answer."""
        return len(self._submissions.tasks)

    @property
    def scheduled(self) -> int:
        return self._scheduler.pending

    def _claim_ages(self) -> list[float]:
        now = time.monotonic()
        return [now - claimed for claimed in list(self._submissions.claims.values())]

    def _saw(self, uid: str, body: Body) -> None:
        state = (body.get("status") or {}).get("state")
        self._states[uid] = str(state) if state else State.PENDING

    # Entry points from kopf -----------------------------------------------------------------

    async def reconcile(self, body: Body) -> None:
        """The object was created, its spec changed, or it was found at start-up."""
        metadata = body["metadata"]
        ref = ObjectRef(metadata["namespace"], metadata["name"], metadata["uid"])
        job = Job(ref.uid, "plan", ref)
        # Durations survive restarts: the runs this object's history records (kopf's initial
        # listing hands every object here at start-up, so this costs no request).
        self._polls.read_history(body.get("status") or {})
        try:
            async with self._scheduler.locked(ref.uid):
                self._scheduler.unschedule(ref.uid)
                # The event's body is at least as new as the spec change it reports; if our own
                # patches have moved on since, the conditional write says so and we re-read.
                self._latest[ref.uid] = body
                self._saw(ref.uid, body)
                await self._run(job)
        except Exception as error:
            self._scheduler.schedule(ref.uid, "plan", ref, self._on_error(job, error))

    def forget(self, uid: str) -> None:
        """The object is being deleted: stop following it. ARM has no cancel; nothing else to do."""
        self._scheduler.unschedule(uid)
        self._latest.pop(uid, None)
        self._polls.forget(uid)
        self._states.pop(uid, None)

    # Read -----------------------------------------------------------------------------------

    async def _run(self, job: Job[ObjectRef]) -> None:
        ref = job.payload
        if job.work == "delete":
            logger.info(
                "deleting %s/%s: ttlSecondsAfterFinished has passed", ref.namespace, ref.name
            )
            await self._kube.delete_runcommand(ref)
            return
        body = self._latest.pop(ref.uid, None) or await self._kube.read_runcommand(ref)
        if body is None:
            self.forget(ref.uid)
            return
        try:
            spec = RunSpec.parse(body.get("spec") or {})
        except InvalidSpec as error:
            status = body.get("status") or {}
            generation = int(body["metadata"].get("generation", 0))
            await self._perform(
                ref, body, invalid_spec(status, generation, datetime.now(UTC), str(error))
            )
            return
        seen = Observation(
            spec,
            body.get("status") or {},
            int(body["metadata"].get("generation", 0)),
            datetime.now(UTC),
            self._config.settings,
            ref.name,
            ref.uid,
        )
        if job.work == "poll" and seen.in_flight:
            await self._poller.poll(ref, body, seen)
            return
        decision = plan(seen)
        if decision.action is Action.SUBMIT:
            await self._submissions.submit(ref, body, seen, decision)
        else:
            await self._perform(ref, body, decision)

    def _on_error(self, job: Job[ObjectRef], error: Exception) -> float:
        """An API server hiccup is a one-line warning and a short wait; anything else is a bug
        worth its traceback. Either way the object is looked at again."""
        ref = job.payload
        if transient(error):
            logger.warning(
                "%s/%s: the Kubernetes API is unavailable (%s); looking again in 5s",
                ref.namespace, ref.name, one_line(error), extra=log_fields(ref),
            )  # fmt: skip
            return 5.0
        logger.exception("unexpected error while handling %s/%s; looking again in 30s",
                         ref.namespace, ref.name, extra=log_fields(ref))  # fmt: skip
        return 30.0

    # Perform --------------------------------------------------------------------------------

    async def _perform(
        self,
        ref: ObjectRef,
        body: Body,
        decision: Decision,
        *,
        answer_of: str | None = None,
        sent: float | None = None,
    ) -> None:
        """Write the decision's patch, post its events, schedule its next step. `answer_of`:
        the patch records ARM's answer to the claim with that correlation id, and must land.
        `sent`: when the request this decision answers went out (loop time); the next poll is
        due that long after it, so waiting for ARM and writing status do not stretch the
        interval between polls (None: from now, as after an error or a Retry-After)."""
        if decision.output is not None:
            retry_in = self._config.settings.retry_initial_seconds
            if not await write_output(self._kube, ref, body.get("status"), decision, retry_in):
                self._scheduler.schedule(ref.uid, "poll", ref, retry_in)
                return
        if decision.patch:
            if answer_of is None:
                written = await self._writes.write(ref, body, decision.patch)
            else:
                written = await self._writes.record(ref, body, decision.patch, answer_of)
            if written is None:
                return
            body = written
            self._saw(ref.uid, written)
            if decision.finished:
                run_ended(ref, decision.finished, decision.patch, written.get("status") or {})
        for dropped in decision.delete_outputs:
            await delete_output(self._kube, ref, dropped.kind, dropped.name)
        for event in decision.events:
            await post_event(self._kube, ref, event.type, event.reason, event.message)
        self._schedule_next(ref, body, decision, sent)

    def _schedule_next(
        self, ref: ObjectRef, body: Body, decision: Decision, sent: float | None
    ) -> None:
        if ref.uid not in self._states:
            # Forgotten (deleted) while this job waited for ARM: an answer with nothing to write
            # meets no 404 that would say so, and a poll scheduled now would follow a ghost.
            return
        if decision.action in (Action.POLL, Action.RETRY):
            self._latest[ref.uid] = body
        if decision.action is not Action.POLL:
            self._polls.forget(ref.uid)
        if decision.action is Action.POLL:
            backoff_from = decision.backoff_from
            self._polls.polled_in(ref.uid, decision.delay if backoff_from is None else backoff_from)
            spent = 0.0 if sent is None else asyncio.get_running_loop().time() - sent
            self._scheduler.schedule(ref.uid, "poll", ref, max(0.0, decision.delay - spent))
        elif decision.action is Action.RETRY:
            self._scheduler.schedule(ref.uid, "plan", ref, decision.delay)
        elif decision.action is Action.DELETE:
            self._scheduler.schedule(ref.uid, "delete", ref, decision.delay)
