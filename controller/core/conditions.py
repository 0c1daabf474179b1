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

Condition = dict[str, Any]
FINISHED = "Finished"
_FINAL = ("Succeeded", "Failed", "Unknown")
# The condition types, for a person: the docs' generated reference renders them.
CONDITION_DESCRIPTIONS = {
    "Ready": "Always present. True when the current run succeeded (a set: every cluster did).",
    "Reconciling": "Present only while True: a run is pending, being submitted or polled.",
    "Stalled": "Present only while True: the run ended Failed or Unknown and will not go on.",
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
    if state == "Succeeded":
        wanted = {"Ready": "True"}
    elif state in ("Failed", "Unknown"):
        wanted = {"Ready": "False", "Stalled": "True"}
    elif state == "Pending" and reason == "Suspended":
        wanted = {"Ready": "False"}
    else:
        wanted = {"Ready": "False", "Reconciling": "True"}
    wanted[FINISHED] = "True" if state in _FINAL else "False"
    before = {str(c.get("type")): c for c in previous}
    result: list[Condition] = []
    for type_, status in wanted.items():
        old = before.get(type_)
        changed = old is None or old.get("status") != status
        result.append(
            {
                "type": type_,
                "status": status,
                "reason": state if type_ == FINISHED else reason,
                "message": f"{reason}: {message}" if type_ == FINISHED and reason else message,
                "observedGeneration": generation,
                "lastTransitionTime": now
                if changed or old is None
                else old.get("lastTransitionTime", now),
            }
        )
    return result
