"""What to do next with a RunCommand, and the status patch that records it.

Three entry points, each pure: ``plan`` when the operator looks at an object (create, update,
resume), ``after_submit`` / ``after_poll`` / ``after_error`` when ARM answered. Each returns a
:class:`Decision`; the wiring layer performs it and never decides anything itself.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from controller.arm import (
    CommandHandle,
    CommandResult,
    CommandRunning,
    MalformedLocationError,
    SubmissionOutcomeUnknown,
)

from .conditions import conditions_for
from .spec import RunSpec

ARM_LOG_LIMIT = 512 * 1024  # ARM truncates command output here
FINAL_STATES = frozenset({"Succeeded", "Failed", "Unknown"})
Patch = dict[str, Any]


class Failure(Protocol):
    """What the core needs to know of a failed call: ARM errors and input errors alike."""

    code: str
    message: str
    retryable: bool
    retry_after: float | None


class Action(enum.Enum):
    IDLE = "idle"  # nothing to do until the object changes
    SUBMIT = "submit"  # POST runCommand now (Decision.correlation_id)
    POLL = "poll"  # GET the result after Decision.delay seconds
    RETRY = "retry"  # look again (plan) after Decision.delay seconds
    DELETE = "delete"  # delete the object after Decision.delay seconds (ttlSecondsAfterFinished)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
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


@dataclass(frozen=True)
class Settings:
    max_log_bytes: int = 16 * 1024
    history_limit: int = 10
    default_timeout_seconds: int = 6 * 3600  # bounds polling when spec.timeoutSeconds is unset
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 30.0
    retry_initial_seconds: float = 5.0
    retry_max_seconds: float = 300.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A timestamp without offset (ARM's are UTC) must not crash arithmetic with an aware `now`.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Seen:
    """One look at an object: what every helper below needs, passed once."""

    spec: RunSpec
    status: Mapping[str, Any]
    generation: int
    now: datetime
    settings: Settings

    def patch(self, state: str, reason: str, message: str, **fields: Any) -> Patch:
        """The state, its kstatus conditions, and `fields`, as a merge patch of status."""
        conditions = conditions_for(
            state, reason, message, self.generation, _iso(self.now),
            self.status.get("conditions") or (),
        )  # fmt: skip
        return {
            "observedGeneration": self.generation,
            "state": state,
            "reason": reason,
            "message": message,
            "clusterName": self.spec.cluster.name,
            "clusterId": self.spec.cluster.resource_id,
            "conditions": conditions,
            **fields,
        }

    def overdue(self) -> bool:
        submitted = _parse(self.status.get("submittedAt"))
        limit = self.spec.timeout_seconds or self.settings.default_timeout_seconds
        return submitted is not None and self.now >= submitted + timedelta(seconds=limit)

    def finish(
        self, state: str, reason: str, message: str, event: Event, **fields: Any
    ) -> Decision:
        """A run ended: record it, append it to history, and schedule the TTL deletion if any."""
        merged = {**self.status, **fields}
        started = _parse(merged.get("startedAt"))
        finished = _parse(merged.get("finishedAt")) or self.now
        fields.setdefault("finishedAt", _iso(finished))
        if started is not None:
            fields["duration"] = _human_duration((finished - started).total_seconds())
        entry = {
            key: value
            for key, value in {
                "generation": self.generation,
                "runToken": self.spec.run_token,
                "commandId": merged.get("commandId"),
                "state": state,
                "exitCode": merged.get("exitCode"),
                "reason": reason or None,
                "startedAt": merged.get("startedAt"),
                "finishedAt": fields["finishedAt"],
            }.items()
            if value is not None
        }
        history = [*(self.status.get("history") or ()), entry][-self.settings.history_limit :]
        patch = self.patch(state, reason, message, history=history, nextAttemptAt=None, **fields)
        ttl = self.spec.ttl_seconds_after_finished
        action, delay = (Action.IDLE, 0.0) if ttl is None else (Action.DELETE, float(ttl))
        return Decision(action, patch, delay=delay, events=(event,), finished=state)

    def fail(self, reason: str, message: str, event_message: str | None = None) -> Decision:
        event = Event("Warning", "Failed", event_message or message)
        return self.finish("Failed", reason, message, event)

    def new_run(self, attempts: int) -> Decision:
        correlation_id = str(uuid.uuid4())
        patch = self.patch(
            "Submitting", "Submitting", f"submitting the command to {self.spec.cluster.name}",
            specHash=self.spec.run_hash, correlationId=correlation_id, attempts=attempts,
            **_NO_RUN,
            submittedAt=self.status.get("submittedAt") if attempts > 1 else _iso(self.now),
        )  # fmt: skip
        return Decision(Action.SUBMIT, patch, correlation_id=correlation_id)

    def suspended(self, **fields: Any) -> Decision:
        message = "spec.suspend is true: nothing is submitted"
        return Decision(Action.IDLE, self.patch("Pending", "Suspended", message, **fields))

    def deadline_exceeded(self) -> Decision:
        limit = self.spec.timeout_seconds or self.settings.default_timeout_seconds
        command = self.status.get("commandId") or "not submitted"
        return self.fail(
            "DeadlineExceeded",
            f"no result after {limit}s (command {command}); stopped waiting. ARM has no cancel "
            "API, so the command itself may still run",
        )

    def outcome_unknown(self, why: str, *, accepted: bool = False) -> Decision:
        """ARM may have accepted the command. `accepted`: it certainly did (a 202 whose Location
        cannot be used), so even AtLeastOnce must not submit it again."""
        spec, attempts = self.spec, int(self.status.get("attempts") or 1)
        if spec.at_least_once and attempts <= spec.retries and not accepted:
            delay = _retry_backoff(attempts, self.settings)
            message = f"{why}; submitting again in {delay:.0f}s because submitPolicy is AtLeastOnce"
            retry_at = _iso(self.now + timedelta(seconds=delay))
            patch = self.patch(
                "Submitting", "SubmissionOutcomeUnknown", message, nextAttemptAt=retry_at
            )
            warning = Event("Warning", "SubmissionOutcomeUnknown", message)
            return Decision(Action.RETRY, patch, delay=delay, events=(warning,))
        policy = (
            "submitPolicy is AtMostOnce"
            if not spec.at_least_once
            else f"{_attempts(attempts)} made"
        )
        message = (
            f"{why} (correlation id {self.status.get('correlationId')}). ARM may or may not have "
            f"accepted the command, so it was not submitted again ({policy}). Check the cluster, "
            "then change spec.runToken to run it again."
        )
        event = Event("Warning", "SubmissionOutcomeUnknown", message)
        return self.finish("Unknown", "SubmissionOutcomeUnknown", message, event)


def _human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s" if minutes else f"{secs}s"
    )


# What a run leaves in status; cleared (merge patch None) when a new run starts.
_NO_RUN: Patch = dict.fromkeys(
    ("commandId", "location", "provisioningState", "exitCode", "startedAt", "finishedAt",
     "duration", "logs", "logsTruncated", "logsBytes", "nextAttemptAt"),
)  # fmt: skip


def plan(
    spec: RunSpec, status: Mapping[str, Any], generation: int, now: datetime, settings: Settings
) -> Decision:
    """Look at an object afresh (created, changed, or found again after a restart)."""
    seen = _Seen(spec, status, generation, now, settings)
    state = status.get("state")
    if status.get("specHash") != spec.run_hash or state is None:
        if spec.suspend:
            # A new spec: what status holds belongs to the previous run (kept in history).
            return seen.suspended(
                specHash=spec.run_hash, attempts=None, submittedAt=None, **_NO_RUN
            )
        return seen.new_run(attempts=1)

    if state in FINAL_STATES:
        unchanged = status.get("observedGeneration") == generation
        patch = (
            {}
            if unchanged
            else seen.patch(state, status.get("reason", ""), status.get("message", ""))
        )
        finished = _parse(status.get("finishedAt"))
        if spec.ttl_seconds_after_finished is not None and finished is not None:
            due = finished + timedelta(seconds=spec.ttl_seconds_after_finished)
            return Decision(Action.DELETE, patch, delay=max(0.0, (due - now).total_seconds()))
        return Decision(Action.IDLE, patch)

    if state == "Running" and status.get("commandId"):
        return Decision(Action.POLL, {"observedGeneration": generation})

    if state == "Pending" or (state == "Submitting" and status.get("nextAttemptAt")):
        if spec.suspend:
            return seen.suspended()
        retry_at = _parse(status.get("nextAttemptAt"))
        if retry_at is not None and retry_at > now:
            wait = (retry_at - now).total_seconds()
            return Decision(Action.RETRY, {"observedGeneration": generation}, delay=wait)
        return seen.new_run(attempts=int(status.get("attempts") or 0) + 1)

    # Submitting with no retry planned: the operator stopped after (maybe) sending the POST
    # and before recording a command id. Only the policy can say what to do.
    return seen.outcome_unknown(
        "the operator stopped after submitting and before recording a command id"
    )


def after_submit(
    spec: RunSpec,
    status: Mapping[str, Any],
    handle: CommandHandle,
    generation: int,
    now: datetime,
    settings: Settings,
) -> Decision:
    """ARM accepted the POST: record the command id before anything else happens."""
    seen = _Seen(spec, status, generation, now, settings)
    message = f"command {handle.command_id} submitted to {spec.cluster.name}"
    patch = seen.patch(
        "Running", "Submitted", message,
        commandId=handle.command_id, location=handle.location,
        correlationId=handle.correlation_id, nextAttemptAt=None,
    )  # fmt: skip
    delay = handle.retry_after if handle.retry_after is not None else settings.poll_initial_seconds
    submitted = Event("Normal", "Submitted", message)
    return Decision(Action.POLL, patch, delay=delay, events=(submitted,))


def next_poll_delay(previous: float, retry_after: float | None, settings: Settings) -> float:
    """Retry-After when ARM gives one; otherwise back off from about 1 s to the ceiling."""
    if retry_after is not None:
        return max(0.0, retry_after)
    return min(settings.poll_max_seconds, max(settings.poll_initial_seconds, previous * 2))


def after_poll(
    spec: RunSpec,
    status: Mapping[str, Any],
    answer: CommandRunning | CommandResult,
    generation: int,
    now: datetime,
    settings: Settings,
    previous_delay: float,
) -> Decision:
    seen = _Seen(spec, status, generation, now, settings)
    if isinstance(answer, CommandRunning):
        if seen.overdue():
            return seen.deadline_exceeded()
        patch: Patch = {}
        if (
            status.get("provisioningState") != answer.provisioning_state
            or status.get("startedAt") != answer.started_at
            or status.get("reason") not in ("Submitted", "Running")  # e.g. a poll error's
        ):
            patch = seen.patch(
                "Running", "Running",
                f"command {status.get('commandId')} is running on {spec.cluster.name}",
                provisioningState=answer.provisioning_state, startedAt=answer.started_at,
            )  # fmt: skip
        delay = next_poll_delay(previous_delay, answer.retry_after, settings)
        return Decision(Action.POLL, patch, delay=delay)

    where = f"command {status.get('commandId')} on {spec.cluster.name}"
    fields = {
        **_logs_fields(answer.logs, settings),
        "provisioningState": answer.provisioning_state,
        "exitCode": answer.exit_code,
        "startedAt": answer.started_at or status.get("startedAt"),
    }
    if answer.finished_at:
        fields["finishedAt"] = answer.finished_at
    if answer.platform_failed:
        reason = answer.reason or "ProvisioningFailed"
        message = (
            f"{where}: ARM reports provisioningState Failed ({reason}); "
            "the command did not run to completion"
        )
        return seen.finish("Failed", reason, message, Event("Warning", "Failed", message), **fields)
    if answer.succeeded:
        message = f"{where} exited 0"
        event = Event("Normal", "Succeeded", message)
        return seen.finish("Succeeded", "Succeeded", message, event, **fields)
    message = f"{where} exited {answer.exit_code}"
    event = Event("Warning", "Failed", message)
    return seen.finish("Failed", "CommandFailed", message, event, **fields)


def _logs_fields(logs: str, settings: Settings) -> Patch:
    """Keep the tail: the end of the output is where commands say why they failed."""
    raw = logs.encode()
    tail = raw[-settings.max_log_bytes :].decode(errors="ignore")
    return {
        "logs": tail,
        "logsBytes": len(raw),
        "logsTruncated": len(raw) > settings.max_log_bytes or len(raw) >= ARM_LOG_LIMIT,
    }


def after_error(
    spec: RunSpec,
    status: Mapping[str, Any],
    error: Failure,
    generation: int,
    now: datetime,
    settings: Settings,
    *,
    submitting: bool,
    previous_delay: float = 0.0,
) -> Decision:
    """An ARM call failed: retry what is retryable (within spec.retries), end the run otherwise."""
    seen = _Seen(spec, status, generation, now, settings)
    if isinstance(error, SubmissionOutcomeUnknown):
        accepted = isinstance(error, MalformedLocationError)
        return seen.outcome_unknown(error.message, accepted=accepted)
    if seen.overdue():
        return seen.deadline_exceeded()
    attempts = int(status.get("attempts") or 1)
    if error.retryable and (not submitting or attempts <= spec.retries):
        if submitting:
            backoff = _retry_backoff(attempts, settings)
        else:  # polls do not count attempts: grow from the last poll delay instead
            backoff = min(
                settings.retry_max_seconds, max(settings.retry_initial_seconds, previous_delay * 2)
            )
        delay = max(backoff, error.retry_after or 0.0)
        what = "submission" if submitting else f"polling command {status.get('commandId')}"
        message = f"{what} failed with {error.code}: {error.message}; retrying in {delay:.0f}s"
        state = str(status.get("state") or "Submitting")
        fields: Patch = (
            {"nextAttemptAt": _iso(now + timedelta(seconds=delay))} if submitting else {}
        )
        patch = seen.patch(state, error.code, message, **fields)
        action = Action.RETRY if submitting else Action.POLL
        return Decision(action, patch, delay=delay, events=(Event("Warning", error.code, message),))
    suffix = f" after {_attempts(attempts)}" if error.retryable else ""
    message = f"{error.message}{suffix}"
    return seen.fail(error.code, message, f"{spec.cluster.name}: {error.code}: {message}")


def _retry_backoff(attempts: int, settings: Settings) -> float:
    return min(settings.retry_max_seconds, settings.retry_initial_seconds * 2.0 ** (attempts - 1))


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def invalid_spec(
    status: Mapping[str, Any], generation: int, now: datetime, message: str
) -> Decision:
    """A spec the schema let through but the operator cannot run (e.g. an older CRD)."""
    patch: Patch = {
        "observedGeneration": generation,
        "state": "Failed",
        "reason": "InvalidSpec",
        "message": message,
        "conditions": conditions_for(
            "Failed", "InvalidSpec", message, generation, _iso(now), status.get("conditions") or ()
        ),
    }
    return Decision(Action.IDLE, patch, events=(Event("Warning", "InvalidSpec", message),))
