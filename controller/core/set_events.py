"""The events a set posts, from its status before and after a decision: one per change a person
watching `kubectl describe` wants to see (a round starting and ending, a child it cannot
create, a stage moving on). Derived from the two statuses, so a decision repeated after a
restart or a lost race posts nothing new."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.core.decide import Event as SetEvent
from controller.vocabulary import EventType, Reason, SetState

_FINAL = (SetState.SUCCEEDED, SetState.FAILED)


def round_events(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[SetEvent]:
    events: list[SetEvent] = []
    if before.get("roundKey") != after.get("roundKey"):
        events.append(
            SetEvent(
                EventType.NORMAL,
                Reason.ROUND_STARTED,
                f"round {after.get('round')} started on {after.get('total', 0)} clusters",
            )
        )
    moved = (before.get("state"), before.get("reason")) != (after.get("state"), after.get("reason"))
    message = str(after.get("message", ""))
    if moved and after.get("state") in _FINAL:
        kind = EventType.NORMAL if after["state"] == SetState.SUCCEEDED else EventType.WARNING
        events.append(SetEvent(kind, str(after.get("reason")), message))
    elif moved and after.get("reason") == Reason.CHILD_OWNED_ELSEWHERE:
        events.append(SetEvent(EventType.WARNING, Reason.CHILD_OWNED_ELSEWHERE, message))
    return events
