"""Who may submit a run: one owner per run, as the Job controller has. A run is claimed by a
conditional status write (claimedBy, claimedAt, a resourceVersion precondition) only once its
inputs and token are in hand, and its POST follows at once. A claim another live holder wrote is
left to it for claim_lease_seconds; one whose holder is gone is a POST nobody knows the fate of.
"""

from __future__ import annotations

import uuid
from typing import Any

from controller.vocabulary import Reason, State

from .attempts import attempt_fields, run_fence
from .decision import Action, Decision
from .durations import parse_timestamp, seconds_after
from .observation import NO_RUN, Observation
from .submissions import outcome_unknown


def new_run(seen: Observation) -> Decision:
    """The claim: written (conditionally) only once inputs and token are in hand."""
    correlation_id = str(uuid.uuid4())
    claim = {"correlationId": correlation_id, "claimedBy": seen.settings.holder,
             "claimedAt": seen.now_text}  # fmt: skip
    run = attempt_fields(seen, correlation_id)
    patch = seen.patch(
        State.SUBMITTING, Reason.SUBMITTING,
        f"submitting the command to {seen.spec.cluster.name}",
        **{**NO_RUN, **run, **claim},  # a claim plans no retry
    )  # fmt: skip
    return Decision(Action.SUBMIT, patch, correlation_id=correlation_id, fence=run_fence(seen, run))


def suspended(seen: Observation, **fields: Any) -> Decision:
    message = "spec.suspend is true: nothing is submitted"
    return Decision(Action.IDLE, seen.patch(State.PENDING, Reason.SUSPENDED, message, **fields))


def claim_in_doubt(seen: Observation) -> Decision:
    """Submitting with no command id and no retry planned: a POST may be in flight. A claim
    another live holder wrote is left to it; one whose holder is gone (or this process's own,
    which it would never leave behind) is a POST whose fate nobody knows."""
    status = seen.status
    holder, claimed_at = status.get("claimedBy"), parse_timestamp(status.get("claimedAt"))
    if holder and holder != seen.settings.holder and claimed_at is not None:
        expires = seconds_after(claimed_at, seen.settings.claim_lease_seconds)
        if expires > seen.now:
            return _wait_for_claim(seen, str(holder), (expires - seen.now).total_seconds())
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
    return outcome_unknown(seen, why)


def _wait_for_claim(seen: Observation, holder: str, wait: float) -> Decision:
    """Another live holder is submitting: look again when its lease ends."""
    if seen.status.get("reason") == Reason.WAITING_FOR_CLAIM:
        return Decision(Action.RETRY, seen.observed(), delay=wait)
    message = (
        f"operator {holder} claimed this run at {seen.status.get('claimedAt')} and is "
        f"submitting it; waiting up to {wait:.0f}s for it to record ARM's answer"
    )
    patch = seen.patch(State.SUBMITTING, Reason.WAITING_FOR_CLAIM, message)
    return Decision(Action.RETRY, patch, delay=wait)
