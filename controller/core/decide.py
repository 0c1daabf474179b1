"""What to do next with a RunCommand, and the status patch that records it.

Every entry point is pure and takes one :class:`Observation` (spec, status, generation, now,
settings): ``plan`` (here) when the operator looks at an object (created, changed, resumed, or a
timer fired); ``after_prepare_error`` (backoff.py) when the inputs, credentials or token could
not be had (nothing was claimed or sent); ``after_submit`` / ``after_submit_error``
(submissions.py) when ARM answered the POST; ``after_poll`` / ``after_poll_error`` (polls.py)
when it answered a poll. Each returns a :class:`Decision`; the wiring layer performs it and
decides nothing itself.

The run's life, and who may move it::

    (no run) --plan--> SUBMIT: prepare inputs+token, then write the claim (Submitting,
                       claimedBy, resourceVersion precondition), then POST at once
    Submitting --after_submit--> Running (commandId recorded) --after_poll--> final
    Running + spec changed --> keeps polling (WaitingForRunningCommand); when the run ends it
                       lands in history and the new run starts: runs never overlap
    Submitting, claim by a live holder --> wait for it; a stale claim --> Unknown, or, under
                       submitPolicy ExactlyOnce, the same run again behind its fence (fence.py)

One policy per module, as the Job controller keeps them: claims.py (who may submit),
attempts.py (what an attempt records), submissions.py (what ARM's answer to a POST means),
backoff.py (retries before ARM ran anything), polls.py and results.py (a command in flight, and
its result), deadlines.py (timeoutSeconds), history.py (how a run ends), output.py (its output).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.vocabulary import FINAL_STATES, EventType, Reason, State

from .claims import claim_in_doubt, new_run, suspended
from .conditions import conditions_for
from .deadlines import resumable, resume

# Decision, Event and next_poll_delay are also imported from here (as they were before the
# split): re-exported by name.
from .decision import Action, Patch
from .decision import Decision as Decision
from .decision import Event as Event
from .durations import format_timestamp, parse_timestamp, seconds_after
from .observation import NO_RUN, Observation
from .polls import keep_polling
from .polls import next_poll_delay as next_poll_delay
from .submissions import outcome_unknown


def plan(seen: Observation) -> Decision:
    """Look at an object afresh (created, changed, found again after a restart, timer fired)."""
    status, spec, state = seen.status, seen.spec, seen.state

    if seen.in_flight:
        return keep_polling(seen)
    if seen.claimed:  # whatever the spec says now: a POST may be in flight for the old one
        return claim_in_doubt(seen)

    if state is None or seen.spec_moved_on:
        if state == State.SUBMITTING and status.get("reason") == Reason.SUBMISSION_OUTCOME_UNKNOWN:
            # A resubmission was planned after an unknown outcome: the run it would have sent
            # is no longer the spec's. It ends Unknown, in history, before the new run starts.
            return outcome_unknown(
                seen,
                "the spec changed while this run waited to be submitted again after an unknown "
                "outcome",
            )
        if spec.suspend:
            # A new spec: what status holds belongs to the previous run (kept in history).
            return suspended(
                seen, specHash=spec.run_hash, attempts=None, submittedAt=None, **NO_RUN
            )
        return new_run(seen)

    if state in FINAL_STATES:
        return _settled(seen, State(state))

    # Pending, or Submitting with a retry planned: nothing is in flight.
    if spec.suspend:
        return suspended(seen)
    retry_at = parse_timestamp(status.get("nextAttemptAt"))
    if retry_at is not None and retry_at > seen.now:
        wait = (retry_at - seen.now).total_seconds()
        return Decision(Action.RETRY, seen.observed(), delay=wait)
    return new_run(seen)


def _settled(seen: Observation, state: State) -> Decision:
    """The run ended: resume it if a raised timeout allows, else keep it until its TTL."""
    status, spec = seen.status, seen.spec
    if resumable(seen):
        return resume(seen)
    patch: Patch = {}
    if status.get("observedGeneration") != seen.generation:
        patch = seen.patch(state, status.get("reason", ""), status.get("message", ""))
    if status.get("specHash") != spec.run_hash:
        patch["specHash"] = spec.run_hash  # a legacy hash, renamed once
    finished = parse_timestamp(status.get("finishedAt"))
    if spec.ttl_seconds_after_finished is not None and finished is not None:
        due = seconds_after(finished, spec.ttl_seconds_after_finished)
        return Decision(Action.DELETE, patch, delay=max(0.0, (due - seen.now).total_seconds()))
    return Decision(Action.IDLE, patch)


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
            format_timestamp(now),
            status.get("conditions") or (),
        ),
    }
    event = Event(EventType.WARNING, Reason.INVALID_SPEC, message)
    return Decision(Action.IDLE, patch, events=(event,))
