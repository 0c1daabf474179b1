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
they are built and closed in one place, controller/wiring.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from controller import metrics
from controller.arm import ArmClient, ArmError, CommandResult, PreparedSubmission
from controller.config import OperatorConfig
from controller.core import (
    Action,
    Decision,
    InvalidSpec,
    Observation,
    RunSpec,
    after_poll,
    after_poll_error,
    after_prepare_error,
    after_submit,
    after_submit_error,
    command_handle,
    invalid_spec,
    plan,
)
from controller.core.durations import ended_run, parse_timestamp, run_seconds
from controller.core.inputs import InputFailure
from controller.inputs import InputReader
from controller.kube import Conflict, KubeApi, ObjectRef, transient
from controller.polltimes import PollTimes, Room
from controller.scheduler import Job, Scheduler
from controller.vocabulary import API_VERSION, RUNCOMMAND_KIND, EventType, Reason

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
        self._record_backoff = config.runtime.record_backoff
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
        # Claimed runs between their claim and the record of ARM's answer (see _submit); each
        # task says whether it claimed the run.
        self._submissions: set[asyncio.Task[bool]] = set()
        self._at_stop: list[asyncio.Task[bool]] = []  # those in flight when the stop began
        self._stopping: float | None = None  # when the stop began (monotonic)
        # For the metrics: each followed RunCommand's state, and the claims this process holds
        # (uid -> when written, monotonic) with the POSTs among them that await ARM's answer.
        self._states: dict[str, str] = {}
        self._claims: dict[str, float] = {}
        self._posts_in_flight = 0

    async def start(self) -> None:
        metrics.watch_waiting(lambda: self.scheduled)
        metrics.observe_runtime(
            metrics.RuntimeView(
                states=lambda: list(self._states.values()),
                claim_ages=self._claim_ages,
                in_flight=lambda: self._posts_in_flight,
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
        self._at_stop = list(self._submissions)
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
                               "could not be written (%s)", _one_line(error))  # fmt: skip
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
        return len(self._submissions)

    @property
    def scheduled(self) -> int:
        return self._scheduler.pending

    def _claim_ages(self) -> list[float]:
        now = time.monotonic()
        return [now - claimed for claimed in list(self._claims.values())]

    def _saw(self, uid: str, body: Body) -> None:
        state = (body.get("status") or {}).get("state")
        self._states[uid] = str(state) if state else "Pending"

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
            await self._poll(ref, body, seen)
            return
        decision = plan(seen)
        if decision.action is Action.SUBMIT:
            await self._submit(ref, body, seen, decision)
        else:
            await self._perform(ref, body, decision)

    def _on_error(self, job: Job[ObjectRef], error: Exception) -> float:
        """An API server hiccup is a one-line warning and a short wait; anything else is a bug
        worth its traceback. Either way the object is looked at again."""
        ref = job.payload
        if transient(error):
            logger.warning(
                "%s/%s: the Kubernetes API is unavailable (%s); looking again in 5s",
                ref.namespace, ref.name, _one_line(error), extra=log_fields(ref),
            )  # fmt: skip
            return 5.0
        logger.exception("unexpected error while handling %s/%s; looking again in 30s",
                         ref.namespace, ref.name, extra=log_fields(ref))  # fmt: skip
        return 30.0

    # Decide and perform ---------------------------------------------------------------------

    async def _submit(self, ref: ObjectRef, body: Body, seen: Observation, claim: Decision) -> None:
        spec, correlation_id = seen.spec, str(claim.correlation_id)
        where = metrics.target(spec.cluster.resource_id)
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
            metrics.ARM_ERRORS.labels("prepare", error.code, *where).inc()
            logger.warning(
                "%s/%s: nothing sent: %s: %s",
                ref.namespace,
                ref.name,
                error.code,
                error.message,
                extra=log_fields(ref, spec, {"correlationId": correlation_id}),
            )
            await self._perform(ref, body, after_prepare_error(seen, error))
            return
        # From the claim on, the run is the task's: cancelling the caller (kopf's worker at a
        # stop, the scheduler's) leaves it to get ARM's answer and record it.
        submission = asyncio.create_task(
            self._claim_and_send(ref, body, seen, claim, arm, prepared),
            name=f"submission-{ref.namespace}/{ref.name}",
        )
        self._submissions.add(submission)
        submission.add_done_callback(self._submissions.discard)
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
        spec, correlation_id = seen.spec, str(claim.correlation_id)
        if self._stopping is not None:
            # Checked in the same step as the claim's PATCH starts: none starts once the stop
            # has begun. The run is left as it was, and looked at again after the restart.
            logger.info("%s/%s: not claimed: the operator is stopping", ref.namespace, ref.name,
                        extra=log_fields(ref, spec))  # fmt: skip
            return False
        claimed = await self._write(ref, body, claim.patch)
        if claimed is None:
            return False  # gone, or someone else moved it on: decided again from fresh state
        self._claims[ref.uid] = time.monotonic()
        try:
            await self._send_and_record(ref, claimed, seen, prepared, arm, correlation_id)
        finally:
            self._claims.pop(ref.uid, None)
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
        self._posts_in_flight += 1
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
            _observe_submission_latency(claimed, seen, where)
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
            self._posts_in_flight -= 1
        await self._perform(ref, claimed, decision, answer_of=correlation_id, sent=sent)

    async def _poll(self, ref: ObjectRef, body: Body, seen: Observation) -> None:
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
        if decision.output is not None and not await self._write_output(ref, body, decision):
            return
        if decision.patch:
            write = self._write if answer_of is None else self._record
            written = await write(ref, body, decision.patch, answer_of)
            if written is None:
                return
            body = written
            self._saw(ref.uid, written)
            status = written.get("status") or {}
            if decision.finished:
                where = metrics.target(status.get("clusterId"))
                reason = status.get("reason", "")
                metrics.RUNS_FINISHED.labels(decision.finished, reason, *where).inc()
                _observe_run_end(decision.finished, decision.patch, where)
                logger.info(
                    "%s/%s: run ended %s (%s)",
                    ref.namespace,
                    ref.name,
                    decision.finished,
                    status.get("reason", ""),
                    extra=log_fields(ref, None, status),
                )
        for dropped in decision.delete_outputs:
            await self._delete_output(ref, dropped.kind, dropped.name)
        for event in decision.events:
            await self._event(ref, event.type, event.reason, event.message)
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

    # Writes ---------------------------------------------------------------------------------

    async def _write(
        self, ref: ObjectRef, body: Body, patch: Mapping[str, Any], _: str | None = None
    ) -> Body | None:
        """A conditional status patch. A lost race is decided again from fresh state."""
        try:
            written = await self._kube.patch_status(ref, dict(patch), _version(body))
        except Conflict:
            logger.info("%s/%s changed while deciding; deciding again", ref.namespace, ref.name)
            self._scheduler.schedule(ref.uid, "plan", ref, 0.0)
            return None
        if written is None:
            self.forget(ref.uid)
        return written

    async def _record(
        self, ref: ObjectRef, body: Body, patch: Mapping[str, Any], correlation_id: str | None
    ) -> Body | None:
        """Write ARM's answer to our claim, retrying while the API server is away and after lost
        races, for as long as the status still describes our claim."""
        attempt = 0
        while True:
            try:
                written = await self._kube.patch_status(ref, dict(patch), _version(body))
            except Conflict:
                fresh = await self._kube.read_runcommand(ref)
                if fresh is None:
                    self.forget(ref.uid)
                    return None
                if (fresh.get("status") or {}).get("correlationId") != correlation_id:
                    await self._superseded(ref, patch)
                    return None
                body = fresh  # still our claim (an edit, or a peer's verdict): write again
                continue
            except Exception as error:
                if not transient(error):
                    raise
                delay = self._record_backoff[min(attempt, len(self._record_backoff) - 1)]
                attempt += 1
                logger.warning(
                    "%s/%s: cannot record ARM's answer yet (%s); trying again in %.1fs",
                    ref.namespace, ref.name, _one_line(error), delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            if written is None:
                self.forget(ref.uid)
            return written

    async def _superseded(self, ref: ObjectRef, patch: Mapping[str, Any]) -> None:
        """Our claim was given up by a peer (its lease ran out) and a new run has started since:
        the answer has no place in status any more, so it is said where people look."""
        message = (
            f"ARM answered a submission (command {patch.get('commandId') or 'none'}, "
            f"{patch.get('reason')}) after this run had been given up and a new one started; "
            "that answer is not recorded in status"
        )
        logger.warning(
            "%s/%s: %s", ref.namespace, ref.name, message, extra=log_fields(ref, None, patch)
        )
        await self._event(ref, EventType.WARNING, Reason.ANSWER_NOT_RECORDED, message)

    async def _write_output(self, ref: ObjectRef, body: Body, decision: Decision) -> bool:
        """Write the run's output before the patch that names it: a crash in between rewrites
        the same object (create-or-replace, named from the command id). When it cannot be
        written (API server away, quota, RBAC), nothing is recorded: the run stays Running and
        is polled again, so its result is never lost."""
        output = decision.output
        assert output is not None
        text, raw = output.payload()
        try:
            await self._kube.write_output(ref, output.kind, output.name, text, raw)
        except Exception as error:
            delay = self._config.settings.retry_initial_seconds
            logger.warning(
                "%s/%s: cannot write the output to %s %s yet (%s); polling again in %.0fs",
                ref.namespace, ref.name, output.kind, output.name, _one_line(error), delay,
                extra=log_fields(ref, None, body.get("status")),
            )  # fmt: skip
            self._scheduler.schedule(ref.uid, "poll", ref, delay)
            return False
        return True

    async def _delete_output(self, ref: ObjectRef, kind: str, name: str) -> None:
        """Best effort: a left-over output object is garbage-collected with its RunCommand."""
        try:
            await self._kube.delete_output(ref.namespace, kind, name)
        except Exception as error:
            logger.warning("%s/%s: could not delete %s %s: %s",
                           ref.namespace, ref.name, kind, name, _one_line(error))  # fmt: skip

    async def _event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        try:
            await self._kube.post_event(ref, type_, reason, message)
        except Exception as error:  # an event is best effort; the status already says it all
            logger.warning("%s/%s: could not post event %s: %s",
                           ref.namespace, ref.name, reason, _one_line(error))  # fmt: skip


def log_fields(
    ref: ObjectRef, spec: RunSpec | None = None, status: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`extra=` for a log line about one RunCommand. kopf's JSON format (--log-format json)
    turns k8s_ref into an `object` field (namespace, name, uid) as for its own lines, and keeps
    the rest as fields: cluster (the ARM id), commandId and correlationId when there are any."""
    fields: dict[str, Any] = {
        "k8s_ref": {"apiVersion": API_VERSION, "kind": RUNCOMMAND_KIND,
                    "namespace": ref.namespace, "name": ref.name, "uid": ref.uid},
    }  # fmt: skip
    if spec is not None:
        fields["cluster"] = spec.cluster.resource_id
    elif status and status.get("clusterId"):
        fields["cluster"] = status["clusterId"]
    for key in ("commandId", "correlationId"):
        if status and status.get(key):
            fields[key] = status[key]
    return fields


def _observe_submission_latency(body: Body, seen: Observation, where: tuple[str, ...]) -> None:
    """Creation to submission, for an object's first run only: later runs start at a spec
    change, whose moment is not recorded anywhere."""
    created = parse_timestamp(body["metadata"].get("creationTimestamp"))
    if created is not None and seen.attempts == 1 and not seen.status.get("history"):
        seconds = (datetime.now(UTC) - created).total_seconds()
        metrics.SUBMISSION_LATENCY.labels(*where).observe(max(0.0, seconds))


def _observe_run_end(state: str, patch: Mapping[str, Any], where: tuple[str, ...]) -> None:
    """A result recorded now: how long the command ran, and how long after ARM's end we knew.
    Runs that never reached ARM (nothing sent) have neither."""
    if patch.get("exitCode") is None:
        return  # nothing ran to an end in ARM: refused, abandoned or never sent
    seconds = run_seconds(patch.get("startedAt"), patch.get("finishedAt"))
    if seconds is not None:
        metrics.RUN_DURATION.labels(state, *where).observe(seconds)
    finished = parse_timestamp(patch.get("finishedAt"))
    if finished is not None:
        late = (datetime.now(UTC) - finished).total_seconds()
        metrics.RECORD_LATENCY.labels(*where).observe(max(0.0, late))


def _version(body: Body) -> str:
    return str(body["metadata"]["resourceVersion"])


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
