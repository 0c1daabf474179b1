"""What to do next with a RunCommand, and the status patch that records it.

Every entry point is pure and takes one :class:`Observation` (spec, status, generation, now,
settings): ``plan`` when the operator looks at an object (created, changed, resumed, or a timer
fired); ``after_prepare_error`` when the inputs, credentials or token could not be had (nothing
was claimed or sent); ``after_submit`` / ``after_submit_error`` when ARM answered the POST;
``after_poll`` / ``after_poll_error`` when it answered a poll. Each returns a :class:`Decision`;
the wiring layer performs it and decides nothing itself.

The run's life, and who may move it::

    (no run) --plan--> SUBMIT: prepare inputs+token, then write the claim (Submitting,
                       claimedBy, resourceVersion precondition), then POST at once
    Submitting --after_submit--> Running (commandId recorded) --after_poll--> final
    Running + spec changed --> keeps polling (WaitingForRunningCommand); when the run ends it
                       lands in history and the new run starts: runs never overlap
    Submitting, claim by a live holder --> wait for it; a stale claim --> Unknown, or, under
                       submitPolicy ExactlyOnce, the same run again behind its fence (fence.py)
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from controller.arm.models import CommandHandle, CommandResult, CommandRunning
from controller.vocabulary import EventType, Reason, State

from .conditions import conditions_for
from .durations import first_poll_seconds
from .durations import parse_timestamp as _parse
from .fence import Fence, FenceKind, fence_name, missing_message, unavailable_message, verdict
from .output import OutputRef, OutputWrite, output_name, output_refs
from .spec import RunSpec

ARM_LOG_LIMIT = 512 * 1024  # ARM truncates command output here
FINAL_STATES = frozenset(state.value for state in State if state.final)
Patch = dict[str, Any]


class Failure(Protocol):
    """What the core needs to know of a failed call: ARM errors and input errors alike. Each
    error carries its own classification; the core never inspects exception types."""

    code: str
    message: str
    retryable: bool
    retry_after: float | None
    outcome_unknown: bool  # a POST may have been accepted: never resend it blindly
    accepted: bool  # ARM certainly accepted it (a 202 whose Location cannot be used)


class Action(enum.Enum):
    IDLE = "idle"  # nothing to do until the object changes
    SUBMIT = "submit"  # prepare, write Decision.patch as the claim, then POST at once
    POLL = "poll"  # GET the result after Decision.delay seconds
    RETRY = "retry"  # look again (plan) after Decision.delay seconds
    DELETE = "delete"  # delete the object after Decision.delay seconds (ttlSecondsAfterFinished)


@dataclass(frozen=True)
class Event:
    type: str  # EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    action: Action
    patch: Patch = field(default_factory=dict)
    delay: float = 0.0
    events: tuple[Event, ...] = ()
    correlation_id: str | None = None
    finished: str | None = None  # the final state, when this decision ends a run
    # What the next poll's backoff doubles from, when not ``delay``: a first poll that waited
    # for the expected end of the run backs off from the initial interval if the run is late.
    backoff_from: float | None = None
    # The run's full output, written BEFORE the patch (which names it in logsRef), and the
    # output objects of runs that fell out of history, deleted after the patch landed.
    output: OutputWrite | None = None
    delete_outputs: tuple[OutputRef, ...] = ()
    # submitPolicy ExactlyOnce: the fence this submission ships (the wrapper runs the command).
    fence: Fence | None = None


@dataclass(frozen=True)
class Settings:
    max_log_bytes: int = 16 * 1024
    history_limit: int = 10
    default_timeout_seconds: int = 6 * 3600  # bounds polling when spec.timeoutSeconds is unset
    poll_initial_seconds: float = 1.0
    # A run in flight is polled at least this often while the budget has room (as `az`, which
    # polls every 5 s); the longest the budget may stretch that to is poll_max_seconds.
    poll_interval_seconds: float = 5.0
    poll_max_seconds: float = 30.0
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    # An input that may appear later (a Secret or ConfigMap of the same GitOps sync, applied in no
    # set order) is waited for longer: 30 s, then doubling to retry_max_seconds.
    missing_input_initial_seconds: float = 30.0
    # Who is deciding (one value per operator process), and how long a claim written by another
    # holder is presumed alive: longer than any POST can take (the ARM client's connect, write
    # and read timeouts, plus the time to record its answer).
    holder: str = "operator"
    claim_lease_seconds: float = 180.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(moment: datetime, seconds: float) -> datetime:
    """`moment + seconds`, saturating instead of overflowing past year 9999."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def command_handle(status: Mapping[str, Any]) -> CommandHandle | None:
    """The recorded command, if this status has one: the only place a handle is read back."""
    command_id, location = status.get("commandId"), status.get("location")
    if not command_id or not location:
        return None
    return CommandHandle(str(command_id), str(location), str(status.get("correlationId") or ""))


# What a run leaves in status; cleared (merge patch None) when a new run starts.
_NO_RUN: Patch = dict.fromkeys(
    ("commandId", "location", "provisioningState", "exitCode", "startedAt", "finishedAt",
     "duration", "logs", "logsTruncated", "logsBytes", "logsRef", "nextAttemptAt", "claimedBy",
     "claimedAt", "fence"),
)  # fmt: skip


@dataclass(frozen=True)
class Observation:
    """One look at an object: everything a decision depends on."""

    spec: RunSpec
    status: Mapping[str, Any]
    generation: int
    now: datetime
    settings: Settings
    name: str = ""  # metadata.name: output objects are named after it
    uid: str = ""  # metadata.uid: an ExactlyOnce run's fence is named after it

    def with_status(self, status: Mapping[str, Any]) -> Observation:
        return replace(self, status=status)

    # Reading status ---------------------------------------------------------------------------

    @property
    def state(self) -> str | None:
        value = self.status.get("state")
        return str(value) if value is not None else None

    @property
    def attempts(self) -> int:
        return int(self.status.get("attempts") or 1)

    @property
    def spec_moved_on(self) -> bool:
        """The spec now defines another run than the one status describes."""
        return not self.spec.defines(self.status.get("specHash"))

    @property
    def in_flight(self) -> bool:
        """ARM accepted a command and its id is recorded: it runs until ARM says it ended."""
        return self.state == State.RUNNING and command_handle(self.status) is not None

    @property
    def claimed(self) -> bool:
        """A POST may be on its way: the run is claimed and no retry is planned."""
        return self.state == State.SUBMITTING and not self.status.get("nextAttemptAt")

    @property
    def timeout_seconds(self) -> int:
        return self.spec.timeout_seconds or self.settings.default_timeout_seconds

    def overdue(self) -> bool:
        submitted = _parse(self.status.get("submittedAt"))
        return submitted is not None and self.now >= _later(submitted, self.timeout_seconds)

    def by_the_deadline(self, delay: float) -> float:
        """`delay`, or less: no poll waits past the deadline (timeoutSeconds after the first
        submission), where a command still running ends the watch. Else a first poll planned
        for later would find the command finished, and call a run on time that was not."""
        submitted = _parse(self.status.get("submittedAt"))
        if submitted is None:
            return delay
        left = (_later(submitted, self.timeout_seconds) - self.now).total_seconds()
        return max(0.0, min(delay, left))

    def next_attempt(self) -> int:
        """The attempt a new submission would be: the first of a new run, or the next retry."""
        if self.state is None or self.spec_moved_on or self.state in FINAL_STATES:
            return 1
        return int(self.status.get("attempts") or 0) + 1

    # Writing status ---------------------------------------------------------------------------

    def patch(self, state: State, reason: str, message: str, **fields: Any) -> Patch:
        """The state, its kstatus conditions, and `fields`, as a merge patch of status."""
        conditions = conditions_for(
            state, reason, message, self.generation, _iso(self.now),
            self.status.get("conditions") or (),
        )  # fmt: skip
        return {
            "observedGeneration": self.generation,
            "state": str(state),
            "reason": str(reason),
            "message": message,
            "clusterName": self.spec.cluster.name,
            "clusterId": self.spec.cluster.resource_id,
            "conditions": conditions,
            **fields,
        }

    def _history_entry(self, state: State, reason: str, fields: Mapping[str, Any]) -> Patch:
        merged = {**self.status, **fields}
        entry = {
            "generation": merged.get("runGeneration", self.generation),
            "runToken": merged.get("runToken"),
            "commandId": merged.get("commandId"),
            "state": str(state),
            "exitCode": merged.get("exitCode"),
            "reason": str(reason) or None,
            "startedAt": merged.get("startedAt"),
            "finishedAt": merged.get("finishedAt"),
            "logsRef": merged.get("logsRef"),
        }
        return {key: value for key, value in entry.items() if value is not None}

    def _ended(
        self, state: State, reason: str, fields: Patch
    ) -> tuple[list[Patch], tuple[OutputRef, ...]]:
        """`fields` completed with finishedAt and duration; returns the history with the run,
        and the output objects of the runs that fell out of it."""
        started = _parse({**self.status, **fields}.get("startedAt"))
        finished = _parse(fields.get("finishedAt")) or self.now
        fields.setdefault("finishedAt", _iso(finished))
        if started is not None:
            fields["duration"] = _human_duration((finished - started).total_seconds())
        entry = self._history_entry(state, reason, fields)
        history = [*(self.status.get("history") or ()), entry]
        kept = history[-self.settings.history_limit :] if self.settings.history_limit > 0 else []
        return kept, output_refs(history[: len(history) - len(kept)])

    def finish(
        self,
        state: State,
        reason: str,
        message: str,
        events: tuple[Event, ...],
        output: OutputWrite | None = None,
        **fields: Any,
    ) -> Decision:
        """A run ended: record it and append it to history. When the spec has moved on since
        it started, the next run starts now; otherwise the TTL deletion is scheduled, if any."""
        if output is not None:
            fields["logsRef"] = output.ref
        history, dropped = self._ended(state, reason, fields)
        if self.spec_moved_on:
            # The run that ended is history; status now waits for the next run, so nothing
            # reads Ready for a spec that has not run yet.
            patch = self.patch(
                State.PENDING, Reason.NEXT_RUN_PENDING,
                f"the previous run ended {state} ({reason}); the changed spec runs next",
                history=history, **_NO_RUN,
            )  # fmt: skip
            return Decision(
                Action.RETRY, patch, events=events, finished=str(state),
                output=output, delete_outputs=dropped,
            )  # fmt: skip
        patch = self.patch(state, reason, message, history=history, nextAttemptAt=None, **fields)
        ttl = self.spec.ttl_seconds_after_finished
        action, delay = (Action.IDLE, 0.0) if ttl is None else (Action.DELETE, float(ttl))
        return Decision(
            action, patch, delay=delay, events=events, finished=str(state),
            output=output, delete_outputs=dropped,
        )  # fmt: skip

    def fail(self, reason: str, message: str, event_message: str | None = None) -> Decision:
        event = Event(EventType.WARNING, "Failed", event_message or message)
        return self.finish(State.FAILED, reason, message, (event,))

    def attempt_fields(self, correlation_id: str | None = None) -> Patch:
        """What an attempt records about its run, so retries count against the right run: a
        first attempt clears what the previous run left. An ExactlyOnce run's fence is named
        by the first attempt that submits (`correlation_id`) and kept by every later one."""
        attempts = self.next_attempt()
        first = attempts == 1
        fields: Patch = {
            **(_NO_RUN if first else {}),
            "specHash": self.spec.run_hash,
            "attempts": attempts,
            "runGeneration": self.generation,
            "runToken": self.spec.run_token,
            "submittedAt": _iso(self.now) if first else self.status.get("submittedAt"),
        }
        # A later attempt keeps the fence its run was first submitted behind, whatever
        # submitPolicy says now: the submissions already sent can only be found through it.
        kept = None if first else self.status.get("fence")
        if kept:
            fields["fence"] = kept
        elif self.spec.exactly_once and correlation_id:
            fields["fence"] = fence_name(self.uid, self.spec.run_hash, correlation_id)
        return fields

    def new_run(self) -> Decision:
        """The claim: written (conditionally) only once inputs and token are in hand."""
        correlation_id = str(uuid.uuid4())
        claim = {"correlationId": correlation_id, "claimedBy": self.settings.holder,
                 "claimedAt": _iso(self.now)}  # fmt: skip
        run = self.attempt_fields(correlation_id)
        patch = self.patch(
            State.SUBMITTING, Reason.SUBMITTING,
            f"submitting the command to {self.spec.cluster.name}",
            **{**_NO_RUN, **run, **claim},  # a claim plans no retry
        )  # fmt: skip
        return Decision(Action.SUBMIT, patch, correlation_id=correlation_id, fence=self._fence(run))

    def _fence(self, run: Mapping[str, Any]) -> Fence | None:
        """The fence an ExactlyOnce run's submissions ship (see attempt_fields); its deadlines
        count from the run's first submission, so every submission of the run agrees on them."""
        submitted = _parse(run.get("submittedAt"))
        if not run.get("fence") or submitted is None:
            return None
        deadline = _later(submitted, self.timeout_seconds)
        return Fence.for_run(str(run["fence"]), self._fence_kind, deadline, self.timeout_seconds)

    @property
    def _fence_kind(self) -> FenceKind:
        """A Secret keeps the output private where spec.output asks for it."""
        return "Secret" if self.spec.output == "Secret" else "ConfigMap"

    def suspended(self, **fields: Any) -> Decision:
        message = "spec.suspend is true: nothing is submitted"
        return Decision(Action.IDLE, self.patch(State.PENDING, Reason.SUSPENDED, message, **fields))

    def deadline_exceeded(self) -> Decision:
        command = self.status.get("commandId") or "not submitted"
        return self.fail(
            Reason.DEADLINE_EXCEEDED,
            f"no result after {self.timeout_seconds}s (command {command}); stopped waiting. ARM "
            "has no cancel API, so the command itself may still run; raise "
            "spec.timeoutSeconds to resume watching it",
        )

    def submit_again(self, reason: str, message: str, delay: float) -> Decision:
        """Give the claim up and plan the next attempt in `delay` seconds, with a warning."""
        patch = self.patch(
            State.SUBMITTING, reason, message,
            nextAttemptAt=_iso(_later(self.now, delay)), claimedBy=None, claimedAt=None,
        )  # fmt: skip
        warning = Event(EventType.WARNING, reason, message)
        return Decision(Action.RETRY, patch, delay=delay, events=(warning,))

    def outcome_unknown(self, why: str, *, accepted: bool = False) -> Decision:
        """ARM may have accepted the command. `accepted`: it certainly did (a 202 whose Location
        cannot be used), so AtLeastOnce must not submit it again. ExactlyOnce submits the same
        run again, accepted or not: its fence lets the command run once whatever happens, so
        only spec.retries and the run's deadline bound the resubmissions."""
        spec, attempts = self.spec, self.attempts
        if spec.exactly_once and self.status.get("fence"):  # the submission in doubt was fenced
            return self.resubmit_fenced(why)
        retry = spec.at_least_once and attempts <= spec.retries and not accepted
        if retry and not self.spec_moved_on:
            delay = _retry_backoff(attempts, self.settings)
            message = f"{why}; submitting again in {delay:.0f}s because submitPolicy is AtLeastOnce"
            return self.submit_again(Reason.SUBMISSION_OUTCOME_UNKNOWN, message, delay)
        if spec.exactly_once:
            policy = "it was sent without a fence, before submitPolicy became ExactlyOnce"
        elif spec.at_least_once:
            policy = f"{_attempts(attempts)} made"
        else:
            policy = "submitPolicy is AtMostOnce"
        message = (
            f"{why} (correlation id {self.status.get('correlationId')}). ARM may or may not have "
            f"accepted the command, so it was not submitted again ({policy}). Check the cluster, "
            "then change spec.runToken to run it again."
        )
        event = Event(EventType.WARNING, Reason.SUBMISSION_OUTCOME_UNKNOWN, message)
        return self.finish(State.UNKNOWN, Reason.SUBMISSION_OUTCOME_UNKNOWN, message, (event,))

    @property
    def may_resubmit_fenced(self) -> bool:
        """A resubmission of a fenced run may be sent again: within retries and the deadline."""
        return (
            bool(self.status.get("fence"))
            and self.spec.exactly_once
            and 1 < self.attempts <= self.spec.retries
            and not self.overdue()
            and not self.spec_moved_on
        )

    def resubmit_fenced(self, why: str) -> Decision:
        attempts, retries = self.attempts, self.spec.retries
        fence = self.status.get("fence")
        if attempts <= retries and not self.overdue() and not self.spec_moved_on:
            delay = _retry_backoff(attempts, self.settings)
            message = (
                f"{why}; submitting the same run again in {delay:.0f}s (attempt {attempts + 1} "
                f"of at most {retries + 1}): submitPolicy is ExactlyOnce, and its fence {fence} "
                "in the cluster lets the command run only once"
            )
            return self.submit_again(Reason.SUBMISSION_OUTCOME_UNKNOWN, message, delay)
        if self.spec_moved_on:
            stop = "the spec has changed since"
        elif attempts > retries:
            stop = f"{_attempts(attempts)} made (spec.retries is {retries})"
        else:
            stop = f"the run's deadline ({self.timeout_seconds}s) has passed"
        message = (
            f"{why} (correlation id {self.status.get('correlationId')}). The run was not "
            f"submitted again: {stop}. If the command ran, fence {fence} in namespace "
            "aks-command of the cluster holds its exit code and output; change spec.runToken "
            "to run it again."
        )
        event = Event(EventType.WARNING, Reason.SUBMISSION_OUTCOME_UNKNOWN, message)
        return self.finish(State.UNKNOWN, Reason.SUBMISSION_OUTCOME_UNKNOWN, message, (event,))

    def fence_said(self, where: str, reason: str, detail: str, fields: Patch) -> Decision:
        """The wrapper answered for itself: the user's command did not run in this submission."""
        fence = str(self.status.get("fence"))
        if reason == Reason.FENCE_UNAVAILABLE:
            message = unavailable_message(where, fence, self._fence_kind, detail)
        elif reason == Reason.FENCE_RESULT_MISSING:
            message = missing_message(where, detail)
        else:
            message = f"{where}: {detail}"
        failed = Event(EventType.WARNING, "Failed", message)
        return self.finish(State.FAILED, reason, message, (failed,), **fields)


def _human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s" if minutes else f"{secs}s"
    )


def _observed(seen: Observation) -> Patch:
    return {"observedGeneration": seen.generation}


def plan(seen: Observation) -> Decision:
    """Look at an object afresh (created, changed, found again after a restart, timer fired)."""
    status, spec, state = seen.status, seen.spec, seen.state

    if seen.in_flight:
        return _keep_polling(seen)
    if seen.claimed:  # whatever the spec says now: a POST may be in flight for the old one
        return _claim_in_doubt(seen)

    if state is None or seen.spec_moved_on:
        if state == State.SUBMITTING and status.get("reason") == Reason.SUBMISSION_OUTCOME_UNKNOWN:
            # A resubmission was planned after an unknown outcome: the run it would have sent
            # is no longer the spec's. It ends Unknown, in history, before the new run starts.
            return seen.outcome_unknown(
                "the spec changed while this run waited to be submitted again after an unknown "
                "outcome"
            )
        if spec.suspend:
            # A new spec: what status holds belongs to the previous run (kept in history).
            return seen.suspended(
                specHash=spec.run_hash, attempts=None, submittedAt=None, **_NO_RUN
            )
        return seen.new_run()

    if state in FINAL_STATES:
        if _resumable(seen):
            return _resume(seen)
        patch: Patch = {}
        if status.get("observedGeneration") != seen.generation:
            patch = seen.patch(State(state), status.get("reason", ""), status.get("message", ""))
        if status.get("specHash") != spec.run_hash:
            patch["specHash"] = spec.run_hash  # a legacy hash, renamed once
        finished = _parse(status.get("finishedAt"))
        if spec.ttl_seconds_after_finished is not None and finished is not None:
            due = _later(finished, spec.ttl_seconds_after_finished)
            return Decision(Action.DELETE, patch, delay=max(0.0, (due - seen.now).total_seconds()))
        return Decision(Action.IDLE, patch)

    # Pending, or Submitting with a retry planned: nothing is in flight.
    if spec.suspend:
        return seen.suspended()
    retry_at = _parse(status.get("nextAttemptAt"))
    if retry_at is not None and retry_at > seen.now:
        wait = (retry_at - seen.now).total_seconds()
        return Decision(Action.RETRY, _observed(seen), delay=wait)
    return seen.new_run()


def _keep_polling(seen: Observation) -> Decision:
    """A recorded command runs whatever the spec says now; a new run waits until it ends."""
    status = seen.status
    if seen.spec_moved_on:
        if status.get("reason") == Reason.WAITING_FOR_RUNNING_COMMAND:
            return Decision(Action.POLL, _observed(seen))
        message = (
            f"the spec changed while command {status.get('commandId')} runs; ARM cannot cancel "
            "it, so the new run starts when it ends"
        )
        patch = seen.patch(State.RUNNING, Reason.WAITING_FOR_RUNNING_COMMAND, message)
        return Decision(Action.POLL, patch)
    if status.get("reason") == Reason.WAITING_FOR_RUNNING_COMMAND:  # the change was reverted
        message = f"command {status.get('commandId')} is running on {seen.spec.cluster.name}"
        return Decision(Action.POLL, seen.patch(State.RUNNING, Reason.RUNNING, message))
    return Decision(Action.POLL, _observed(seen))


def _claim_in_doubt(seen: Observation) -> Decision:
    """Submitting with no command id and no retry planned: a POST may be in flight. A claim
    another live holder wrote is left to it; one whose holder is gone (or this process's own,
    which it would never leave behind) is a POST whose fate nobody knows."""
    status = seen.status
    holder, claimed_at = status.get("claimedBy"), _parse(status.get("claimedAt"))
    if holder and holder != seen.settings.holder and claimed_at is not None:
        expires = _later(claimed_at, seen.settings.claim_lease_seconds)
        if expires > seen.now:
            wait = (expires - seen.now).total_seconds()
            if status.get("reason") == Reason.WAITING_FOR_CLAIM:
                return Decision(Action.RETRY, _observed(seen), delay=wait)
            message = (
                f"operator {holder} claimed this run at {status.get('claimedAt')} and is "
                f"submitting it; waiting up to {wait:.0f}s for it to record ARM's answer"
            )
            patch = seen.patch(State.SUBMITTING, Reason.WAITING_FOR_CLAIM, message)
            return Decision(Action.RETRY, patch, delay=wait)
        why = (
            f"operator {holder} claimed this run at {status.get('claimedAt')} and sent its POST "
            "or was about to, then stopped before recording ARM's answer"
        )
    elif holder:  # this operator's own claim: it never leaves one behind while it lives
        why = (
            f"this operator ({holder}) claimed this run at {status.get('claimedAt')} and stopped "
            "before recording ARM's answer to its POST"
        )
    else:
        why = "the operator stopped after submitting and before recording a command id"
    return seen.outcome_unknown(why)


def _resumable(seen: Observation) -> bool:
    """A deadline ends our watch, not ARM's command: with a longer timeout, watch it again."""
    status = seen.status
    return (
        status.get("reason") == Reason.DEADLINE_EXCEEDED
        and command_handle(status) is not None
        and not seen.spec_moved_on
        and not seen.overdue()
    )


def _resume(seen: Observation) -> Decision:
    status = seen.status
    history = list(status.get("history") or ())
    if history and history[-1].get("commandId") == status.get("commandId"):
        history.pop()  # the run is not over after all; it is recorded again when it ends
    message = (
        f"spec.timeoutSeconds is now {seen.timeout_seconds}s: watching command "
        f"{status.get('commandId')} again"
    )
    patch = seen.patch(
        State.RUNNING, Reason.RUNNING, message, history=history, finishedAt=None, duration=None
    )
    return Decision(Action.POLL, patch, events=(Event(EventType.NORMAL, Reason.RESUMED, message),))


def after_prepare_error(seen: Observation, error: Failure) -> Decision:
    """Inputs, credentials, token or cluster lookup failed before anything was claimed or sent:
    retry within spec.retries if the error may pass, fail the run otherwise. Never Unknown."""
    run_fields = seen.attempt_fields()
    attempts = int(run_fields["attempts"])
    counted = seen.with_status(
        {key: value for key, value in {**seen.status, **run_fields}.items() if value is not None}
    )
    if counted.overdue():
        decision = counted.deadline_exceeded()
        return replace(decision, patch={**run_fields, **decision.patch})
    may_appear = error.code in _MAY_APPEAR_LATER
    if error.retryable and attempts <= seen.spec.retries:
        initial = seen.settings.missing_input_initial_seconds if may_appear else None
        delay = max(_retry_backoff(attempts, seen.settings, initial), error.retry_after or 0.0)
        message = (
            f"nothing was sent: {error.code}: {error.message}; trying again in {delay:.0f}s "
            f"({_attempts(attempts)} of {seen.spec.retries + 1})"
        )
        patch = counted.patch(
            State.PENDING, error.code, message,
            **{**run_fields, "nextAttemptAt": _iso(_later(seen.now, delay))},
        )  # fmt: skip
        event = Event(EventType.WARNING, error.code, message)
        return Decision(Action.RETRY, patch, delay=delay, events=(event,))
    suffix = f" after {_attempts(attempts)}; nothing was sent" if error.retryable else ""
    if may_appear:  # nothing watches for it: say how to run once it exists
        suffix += "; once it exists, change spec.runToken to run again"
    message = f"{error.message}{suffix}"
    decision = counted.fail(
        error.code, message, f"{seen.spec.cluster.name}: {error.code}: {message}"
    )
    return replace(decision, patch={**run_fields, **decision.patch})


def after_submit(
    seen: Observation,
    handle: CommandHandle,
    expected_seconds: float | None = None,
    cadence: float | None = None,
) -> Decision:
    """ARM accepted the POST: record the command id before anything else happens.

    The first poll waits a little longer than ``expected_seconds`` (how long recent runs like
    this one took, see core.durations) when known, but no more than half a ``cadence`` (the
    interval the budget allows between polls, see core.pollrate) past it, so a run that ends on
    time is seen well within one cadence; never less than ARM's Retry-After."""
    message = f"command {handle.command_id} submitted to {seen.spec.cluster.name}"
    patch = seen.patch(
        State.RUNNING, Reason.SUBMITTED, message,
        commandId=handle.command_id, location=handle.location,
        correlationId=handle.correlation_id, nextAttemptAt=None,
    )  # fmt: skip
    if expected_seconds is not None:
        within = math.inf if cadence is None else cadence
        delay = max(handle.retry_after or 0.0, first_poll_seconds(expected_seconds, within))
    elif handle.retry_after is not None:
        delay = handle.retry_after
    else:
        delay = seen.settings.poll_initial_seconds
    submitted = Event(EventType.NORMAL, Reason.SUBMITTED, message)
    backoff_from = seen.settings.poll_initial_seconds / 2 if expected_seconds is not None else None
    return Decision(
        Action.POLL,
        patch,
        delay=seen.by_the_deadline(delay),
        events=(submitted,),
        backoff_from=backoff_from,
    )


def after_submit_error(seen: Observation, error: Failure) -> Decision:
    """The POST was refused, or its fate is unknown. Only a certain refusal is retried."""
    if error.outcome_unknown:
        return seen.outcome_unknown(error.message, accepted=error.accepted)
    if seen.overdue():
        return seen.deadline_exceeded()
    attempts = seen.attempts
    if error.retryable and attempts <= seen.spec.retries:
        delay = max(_retry_backoff(attempts, seen.settings), error.retry_after or 0.0)
        message = f"submission failed with {error.code}: {error.message}; retrying in {delay:.0f}s"
        return seen.submit_again(error.code, message, delay)
    suffix = f" after {_attempts(attempts)}" if error.retryable else ""
    message = f"{error.message}{suffix}"
    return seen.fail(error.code, message, f"{seen.spec.cluster.name}: {error.code}: {message}")


def next_poll_delay(
    previous: float, retry_after: float | None, settings: Settings, cadence: float | None = None
) -> float:
    """Retry-After when ARM gives one; otherwise back off from about 1 s to ``cadence``, the
    interval the budget allows now (core.pollrate; unknown: poll_max_seconds)."""
    if retry_after is not None:
        return max(0.0, retry_after)
    ceiling = settings.poll_max_seconds if cadence is None else cadence
    return min(ceiling, max(settings.poll_initial_seconds, previous * 2))


def after_poll(
    seen: Observation,
    answer: CommandRunning | CommandResult,
    previous_delay: float,
    cadence: float | None = None,
) -> Decision:
    status, spec = seen.status, seen.spec
    if isinstance(answer, CommandRunning):
        if seen.overdue():
            return seen.deadline_exceeded()
        patch: Patch = {}
        if (
            status.get("provisioningState") != answer.provisioning_state
            or status.get("startedAt") != answer.started_at
            or status.get("reason") not in (Reason.SUBMITTED, Reason.RUNNING)  # a poll error's
        ) and status.get("reason") != Reason.WAITING_FOR_RUNNING_COMMAND:
            patch = seen.patch(
                State.RUNNING, Reason.RUNNING,
                f"command {status.get('commandId')} is running on {spec.cluster.name}",
                provisioningState=answer.provisioning_state, startedAt=answer.started_at,
            )  # fmt: skip
        delay = next_poll_delay(previous_delay, answer.retry_after, seen.settings, cadence)
        return Decision(Action.POLL, patch, delay=seen.by_the_deadline(delay))

    where = f"command {status.get('commandId')} on {status.get('clusterName', spec.cluster.name)}"
    logs = _logs_fields(answer.logs, seen.settings)
    fields = {
        **logs,
        "provisioningState": answer.provisioning_state,
        "exitCode": answer.exit_code,
        "startedAt": answer.started_at or status.get("startedAt"),
    }
    if answer.finished_at:
        fields["finishedAt"] = answer.finished_at
    output = None
    if spec.output != "None" and seen.name and status.get("commandId"):
        name = output_name(seen.name, str(status["commandId"]))
        output = OutputWrite(spec.output, name, answer.logs)
    truncation = _truncation_note(logs, seen.settings)
    events: tuple[Event, ...] = ()
    if truncation:
        events = (Event(EventType.WARNING, Reason.LOGS_TRUNCATED, truncation),)
    note = f". {truncation}" if truncation else ""
    said = verdict(answer) if status.get("fence") else None  # a fenced command's answer
    if said is not None:
        return seen.fence_said(where, said.reason, said.detail, fields)
    if answer.platform_failed and seen.may_resubmit_fenced:
        # A resubmission's pod mostly finds the fence and replays what it holds: its failing
        # says little of the command, and asking once more is safe behind the same fence.
        why = (
            f"{where}: ARM reports provisioningState Failed ({answer.reason or 'no reason'}) "
            f"for resubmission {seen.attempts} of the run"
        )
        return seen.resubmit_fenced(why)
    if answer.platform_failed:
        reason = answer.reason or Reason.PROVISIONING_FAILED
        message = (
            f"{where}: ARM reports provisioningState Failed ({reason}); "
            "the command did not run to completion"
        )
        failed = Event(EventType.WARNING, "Failed", message)
        return seen.finish(
            State.FAILED, reason, message + note, (failed, *events), output, **fields
        )
    if answer.succeeded:
        message = f"{where} exited 0"
        event = Event(EventType.NORMAL, Reason.SUCCEEDED, message)
        return seen.finish(
            State.SUCCEEDED, Reason.SUCCEEDED, message + note, (event, *events), output, **fields
        )
    message = f"{where} exited {answer.exit_code}"
    event = Event(EventType.WARNING, "Failed", message)
    return seen.finish(
        State.FAILED, Reason.COMMAND_FAILED, message + note, (event, *events), output, **fields
    )


def _logs_fields(logs: str, settings: Settings) -> Patch:
    """Keep the tail: the end of the output is where commands say why they failed."""
    raw = logs.encode(errors="surrogatepass")  # JSON may carry lone surrogates
    tail = raw[-settings.max_log_bytes :].decode(errors="ignore")
    return {
        "logs": tail,
        "logsBytes": len(raw),
        "logsTruncated": len(raw) > settings.max_log_bytes or len(raw) >= ARM_LOG_LIMIT,
    }


def _truncation_note(logs: Patch, settings: Settings) -> str:
    """Say who cut the output, and which part survives."""
    size = int(logs["logsBytes"])
    if size >= ARM_LOG_LIMIT:
        return (
            f"ARM returned {size} bytes of output, its 512 KiB limit, so ARM cut the output "
            "(which part it keeps is not documented); status.logs holds the last "
            f"{settings.max_log_bytes} bytes of what ARM returned"
        )
    if logs["logsTruncated"]:
        return (
            f"the output has {size} bytes; status.logs holds its last "
            f"{settings.max_log_bytes} bytes"
        )
    return ""


def after_poll_error(seen: Observation, error: Failure, previous_delay: float) -> Decision:
    """A poll failed. The command runs on regardless: retryable errors poll again (until the
    deadline) without counting attempts; a fatal one ends our watch."""
    if seen.overdue():
        return seen.deadline_exceeded()
    if error.retryable:
        backoff = min(
            seen.settings.retry_max_seconds,
            max(seen.settings.retry_initial_seconds, previous_delay * 2),
        )
        delay = seen.by_the_deadline(max(backoff, error.retry_after or 0.0))
        message = (
            f"polling command {seen.status.get('commandId')} failed with {error.code}: "
            f"{error.message}; retrying in {delay:.0f}s"
        )
        patch = seen.patch(State(seen.state or State.RUNNING), error.code, message)
        event = Event(EventType.WARNING, error.code, message)
        return Decision(Action.POLL, patch, delay=delay, events=(event,))
    return seen.fail(
        error.code, error.message, f"{seen.spec.cluster.name}: {error.code}: {error.message}"
    )


def _retry_backoff(attempts: int, settings: Settings, initial: float | None = None) -> float:
    exponent = min(max(attempts - 1, 0), 32)  # bounded: 2**32 s already exceeds any ceiling
    first = settings.retry_initial_seconds if initial is None else initial
    return min(settings.retry_max_seconds, first * 2.0**exponent)


# Inputs another object provides, which GitOps may apply after the RunCommand.
_MAY_APPEAR_LATER = frozenset({Reason.FILES_NOT_FOUND, Reason.CREDENTIALS_NOT_FOUND})


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def invalid_spec(
    status: Mapping[str, Any], generation: int, now: datetime, message: str
) -> Decision:
    """A spec the schema let through but the operator cannot run (e.g. an older CRD)."""
    patch: Patch = {
        "observedGeneration": generation,
        "state": str(State.FAILED),
        "reason": str(Reason.INVALID_SPEC),
        "message": message,
        "conditions": conditions_for(
            State.FAILED,
            Reason.INVALID_SPEC,
            message,
            generation,
            _iso(now),
            status.get("conditions") or (),
        ),
    }
    event = Event(EventType.WARNING, Reason.INVALID_SPEC, message)
    return Decision(Action.IDLE, patch, events=(event,))
