"""kstatus conditions for a one-shot resource: Ready always; Reconciling and Stalled only while
True (Flux's convention), so kstatus reads InProgress, Current or Failed at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Condition = dict[str, Any]


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
    before = {str(c.get("type")): c for c in previous}
    result: list[Condition] = []
    for type_, status in wanted.items():
        old = before.get(type_)
        changed = old is None or old.get("status") != status
        result.append(
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": now
                if changed or old is None
                else old.get("lastTransitionTime", now),
            }
        )
    return result
