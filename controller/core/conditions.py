"""kstatus conditions for a one-shot resource: Ready always; Reconciling and Stalled only while
True (Flux's convention), so kstatus reads InProgress, Current or Failed at a glance.

Finished is always present, like Ready: True once the current generation's run has ended,
whatever the outcome, so `kubectl wait --for=condition=Finished` ends on failure too. Its reason
is the final state (Succeeded, Failed, Unknown), or the state the run is in while False; the
detailed reason stays on Ready and Stalled. It is named after the Job controller's notion of a
finished Job (Complete or Failed), not Job's own Complete, which means success only. kstatus and
Argo CD ignore it: their verdicts come from Ready, Reconciling and Stalled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.vocabulary import FINAL_STATES, ConditionStatus, ConditionType, Reason, State

Condition = dict[str, Any]
FINISHED = ConditionType.FINISHED
_TRUE, _FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
# The condition types, for a person: the docs' generated reference renders them.
CONDITION_DESCRIPTIONS = {
    ConditionType.READY: "Always present. True when the current run succeeded (a set: every "
    "cluster did).",
    ConditionType.RECONCILING: "Present only while True: a run is pending, being submitted or "
    "polled.",
    ConditionType.STALLED: "Present only while True: the run ended Failed or Unknown and will "
    "not go on.",
    FINISHED: "Always present. True once the current generation's run has ended, whatever the "
    "outcome; its reason is the state. For kubectl wait; kstatus and Argo CD do not read it.",
}


def conditions_for(
    state: str,
    reason: str,
    message: str,
    generation: int,
    now: str,
    previous: Sequence[Mapping[str, Any]] = (),
) -> list[Condition]:
    """The full conditions list for `state`; lastTransitionTime survives unchanged statuses."""
    wanted: dict[str, str]
    if state == State.SUCCEEDED:
        wanted = {ConditionType.READY: _TRUE}
    elif state in (State.FAILED, State.UNKNOWN):
        wanted = {ConditionType.READY: _FALSE, ConditionType.STALLED: _TRUE}
    elif state == State.PENDING and reason == Reason.SUSPENDED:
        wanted = {ConditionType.READY: _FALSE}
    else:
        wanted = {ConditionType.READY: _FALSE, ConditionType.RECONCILING: _TRUE}
    wanted[FINISHED] = _TRUE if state in FINAL_STATES else _FALSE
    before = {str(c.get("type")): c for c in previous}
    result: list[Condition] = []
    for type_, status in wanted.items():
        old = before.get(type_)
        changed = old is None or old.get("status") != status
        result.append(
            {
                "type": str(type_),
                "status": str(status),
                "reason": state if type_ == FINISHED else reason,
                "message": f"{reason}: {message}" if type_ == FINISHED and reason else message,
                "observedGeneration": generation,
                "lastTransitionTime": now
                if changed or old is None
                else old.get("lastTransitionTime", now),
            }
        )
    return result
