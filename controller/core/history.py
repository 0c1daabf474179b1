"""How a run ends: its last status, its entry in status.history (bounded by history_limit, the
output objects of runs that fall out of it deleted), and what happens next: the changed spec's
run, the TTL deletion, or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.vocabulary import EventType, Reason, State

from .decision import Action, Decision, Event, Patch
from .durations import format_timestamp, parse_timestamp
from .observation import NO_RUN, Observation
from .output import OutputRef, OutputWrite, output_refs


def finish(
    seen: Observation,
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
    history, dropped = _ended(seen, state, reason, fields)
    if seen.spec_moved_on:
        # The run that ended is history; status now waits for the next run, so nothing
        # reads Ready for a spec that has not run yet.
        patch = seen.patch(
            State.PENDING, Reason.NEXT_RUN_PENDING,
            f"the previous run ended {state} ({reason}); the changed spec runs next",
            history=history, **NO_RUN,
        )  # fmt: skip
        return Decision(
            Action.RETRY, patch, events=events, finished=str(state),
            output=output, delete_outputs=dropped,
        )  # fmt: skip
    patch = seen.patch(state, reason, message, history=history, nextAttemptAt=None, **fields)
    ttl = seen.spec.ttl_seconds_after_finished
    action, delay = (Action.IDLE, 0.0) if ttl is None else (Action.DELETE, float(ttl))
    return Decision(
        action, patch, delay=delay, events=events, finished=str(state),
        output=output, delete_outputs=dropped,
    )  # fmt: skip


def fail(
    seen: Observation, reason: str, message: str, event_message: str | None = None
) -> Decision:
    event = Event(EventType.WARNING, Reason.FAILED, event_message or message)
    return finish(seen, State.FAILED, reason, message, (event,))


def _ended(
    seen: Observation, state: State, reason: str, fields: Patch
) -> tuple[list[Patch], tuple[OutputRef, ...]]:
    """`fields` completed with finishedAt and duration; returns the history with the run,
    and the output objects of the runs that fell out of it."""
    started = parse_timestamp({**seen.status, **fields}.get("startedAt"))
    finished = parse_timestamp(fields.get("finishedAt")) or seen.now
    fields.setdefault("finishedAt", format_timestamp(finished))
    if started is not None:
        fields["duration"] = _human_duration((finished - started).total_seconds())
    entry = _history_entry(seen, state, reason, fields)
    history = [*(seen.status.get("history") or ()), entry]
    limit = seen.settings.history_limit
    kept = history[-limit:] if limit > 0 else []
    return kept, output_refs(history[: len(history) - len(kept)])


def _history_entry(
    seen: Observation, state: State, reason: str, fields: Mapping[str, Any]
) -> Patch:
    merged = {**seen.status, **fields}
    entry = {
        "generation": merged.get("runGeneration", seen.generation),
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


def _human_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s" if minutes else f"{secs}s"
    )
