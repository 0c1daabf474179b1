"""A RunCommandSet's status: the round's verdict (state, reason and a message a person can act
on), the per-cluster summaries and the conditions. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.core.adoption import describe
from controller.core.conditions import conditions_for
from controller.core.set_children import FINAL_STATES, SetObservation, child_name
from controller.core.set_members import Member
from controller.core.stages import StagePlan, round_verdict
from controller.vocabulary import ClusterState, Reason, SetState, State

MAX_CLUSTER_ENTRIES = 50  # per-cluster summaries kept in status: failures first
_ENTRY_ORDER: Mapping[str, int] = {
    ClusterState.FAILED: 0, ClusterState.UNKNOWN: 1, ClusterState.BLOCKED: 1,
    ClusterState.RUNNING: 2, ClusterState.SUBMITTING: 2, ClusterState.PENDING: 3,
    ClusterState.WAITING: 4,
}  # fmt: skip
# A set's conditions read as a RunCommand's do: Succeeded is Ready, Failed is Stalled,
# Suspended is neither, a rollout in progress is Reconciling.
_AS_RUN: Mapping[str, State] = {
    SetState.SUCCEEDED: State.SUCCEEDED,
    SetState.FAILED: State.FAILED,
    SetState.SUSPENDED: State.PENDING,
}
Verdict = tuple[str, Reason | str, str]  # status.state, reason, message


def cluster_entries(set_name: str, members: Sequence[Member]) -> list[dict[str, Any]]:
    entries = []
    for member in members:
        entry: dict[str, Any] = {
            "clusterId": member.cluster.resource_id,
            "child": child_name(set_name, member.cluster),
            "state": str(member.state),
        }
        child = member.current
        if child is not None and member.state in FINAL_STATES:
            for key in ("exitCode", "commandId", "reason"):
                if child.status.get(key) is not None:
                    entry[key] = child.status[key]
        if member.blocked:
            entry["reason"] = str(Reason.CHILD_OWNED_ELSEWHERE)
        entries.append(entry)
    entries.sort(key=lambda e: (_ENTRY_ORDER.get(e["state"], 3), e["clusterId"].casefold()))
    return entries[:MAX_CLUSTER_ENTRIES]


def round_status(
    seen: SetObservation,
    members: Sequence[Member],
    counts: Mapping[str, int],
    *,
    halted: bool,
    finished: bool,
    overdue: bool = False,
    stage_plan: StagePlan | None = None,
) -> dict[str, Any]:
    spec, status = seen.spec, seen.status
    round_number = int(status.get("round") or 0) + (0 if seen.same_round else 1)
    verdict = (
        round_verdict(stage_plan, finished=finished, round_number=round_number,
                      round_key=spec.round_key, set_name=seen.name)
        if stage_plan is not None
        else None
    )  # fmt: skip
    state: str
    reason: Reason | str
    if overdue:
        state, reason = SetState.FAILED, Reason.PROGRESS_DEADLINE_EXCEEDED
        message = (
            f"round {round_number}: not finished within progressDeadlineSeconds "
            f"({spec.progress_deadline_seconds}); no new cluster starts, runs in flight are "
            "still recorded"
        )
    elif verdict is not None and (finished or verdict[0] != SetState.FAILED):
        state, reason, message = verdict
    else:
        state, reason, message = _verdict(
            seen, members, counts, round_number, halted=halted, finished=finished
        )
    previous = list(status.get("conditions") or [])
    return {
        "observedGeneration": seen.generation,
        "round": round_number,
        "roundKey": spec.round_key,
        "runToken": spec.run_token,
        "state": str(state),
        "reason": str(reason),
        "message": message,
        **{key: value for key, value in counts.items()},
        "clusters": cluster_entries(seen.name, members),
        "conditions": set_conditions(state, reason, message, seen.generation, seen.now, previous),
    }


def _verdict(
    seen: SetObservation,
    members: Sequence[Member],
    counts: Mapping[str, int],
    round_number: int,
    *,
    halted: bool,
    finished: bool,
) -> Verdict:
    """The round's own verdict, when neither its deadline nor a stage decides it."""
    total, failures = counts["total"], counts["failed"] + counts["unknown"]
    if finished and failures == 0 and total > 0:
        message = f"round {round_number}: all {total} clusters succeeded"
        return SetState.SUCCEEDED, Reason.SUCCEEDED, message
    if finished and total > 0:
        reason = Reason.MAX_FAILURES_EXCEEDED if halted else Reason.CLUSTERS_FAILED
        message = f"round {round_number}: {failures} of {total} clusters failed" + (
            "; no new cluster was started after maxFailures was exceeded" if halted else ""
        )
        return SetState.FAILED, reason, message
    if seen.spec.suspend:
        message = f"round {round_number}: suspended; no new cluster starts"
        return SetState.SUSPENDED, Reason.SUSPENDED, message
    if total == 0 and finished:
        message = (
            f"round {round_number}: no cluster matches spec.clusterSelector, so nothing ran; "
            "fix the selector or tag the clusters, then change spec.runToken to list them again"
        )
        return SetState.FAILED, Reason.NO_TARGETS, message
    if total == 0:
        message = "no cluster matches spec.clusterSelector yet; listing again every minute"
        return SetState.PENDING, Reason.NO_TARGETS, message
    held = [describe(m.held_by) for m in members if m.blocked and m.held_by is not None]
    if held:
        message = (
            f"round {round_number}: {len(held)} child(ren) cannot be created because their "
            f"names are taken: {', '.join(held[:3])}{' ...' if len(held) > 3 else ''}. "
            "A set of the same name being deleted? Waiting for garbage collection to remove "
            "them (or delete them); looking again with backoff"
        )
        return SetState.PROGRESSING, Reason.CHILD_OWNED_ELSEWHERE, message
    done = counts["succeeded"] + counts["failed"] + counts["unknown"]
    message = f"round {round_number}: {done} of {total} clusters done"
    return SetState.PROGRESSING, Reason.PROGRESSING, message


def set_conditions(
    state: str, reason: str, message: str, generation: int, now: str, previous: Sequence[Any]
) -> list[dict[str, Any]]:
    as_run = _AS_RUN.get(state, State.RUNNING)
    return conditions_for(as_run, reason, message, generation, now, previous)


def set_problem(
    status: Mapping[str, Any],
    generation: int,
    now: str,
    reason: Reason,
    message: str,
    *,
    stalled: bool,
) -> dict[str, Any]:
    """The set's status when it cannot be planned: an invalid spec (Stalled: it needs an
    edit), or ARM failing to list its clusters (Reconciling: the operator tries again). Nothing
    new starts meanwhile."""
    previous = list(status.get("conditions") or [])
    state = SetState.FAILED if stalled else SetState.PROGRESSING
    patch = {
        "observedGeneration": generation,
        "reason": str(reason),
        "message": message,
        "conditions": set_conditions(state, reason, message, generation, now, previous),
    }
    return {**patch, "state": str(state)} if stalled else patch
