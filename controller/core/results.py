"""What a command's final result means: exit 0 succeeds, another exit code fails the command,
ARM's provisioningState Failed fails the run (or, for an ExactlyOnce resubmission, asks again
behind the same fence), and a fenced wrapper's own answer says the command did not run. The
output's tail goes to status.logs, the whole of it to the object spec.output names."""

from __future__ import annotations

from controller.arm.models import CommandResult
from controller.vocabulary import EventType, Reason, State

from .attempts import fence_kind
from .decision import Decision, Event, Patch
from .fence import missing_message, unavailable_message, verdict
from .history import finish
from .observation import Observation
from .output import OutputWrite, logs_fields, output_name, truncation_note
from .submissions import may_resubmit_fenced, resubmit_fenced


def after_result(seen: Observation, answer: CommandResult) -> Decision:
    """ARM says the command ended: record how, with its output."""
    status, spec = seen.status, seen.spec
    where = f"command {status.get('commandId')} on {status.get('clusterName', spec.cluster.name)}"
    logs = logs_fields(answer.logs, seen.settings)
    fields = {
        **logs,
        "provisioningState": answer.provisioning_state,
        "exitCode": answer.exit_code,
        "startedAt": answer.started_at or status.get("startedAt"),
    }
    if answer.finished_at:
        fields["finishedAt"] = answer.finished_at
    said = verdict(answer) if status.get("fence") else None  # a fenced command's answer
    if said is not None:
        return _fence_said(seen, where, said.reason, said.detail, fields)
    if answer.platform_failed and may_resubmit_fenced(seen):
        # A resubmission's pod mostly finds the fence and replays what it holds: its failing
        # says little of the command, and asking once more is safe behind the same fence.
        why = (
            f"{where}: ARM reports provisioningState Failed ({answer.reason or 'no reason'}) "
            f"for resubmission {seen.attempts} of the run"
        )
        return resubmit_fenced(seen, why)
    truncation = truncation_note(logs, seen.settings)
    events: tuple[Event, ...] = ()
    if truncation:
        events = (Event(EventType.WARNING, Reason.LOGS_TRUNCATED, truncation),)
    note = f". {truncation}" if truncation else ""
    output = _output(seen, answer)
    if answer.platform_failed:
        reason = answer.reason or Reason.PROVISIONING_FAILED
        message = (
            f"{where}: ARM reports provisioningState Failed ({reason}); "
            "the command did not run to completion"
        )
        failed = Event(EventType.WARNING, Reason.FAILED, message)
        return finish(
            seen, State.FAILED, reason, message + note, (failed, *events), output, **fields
        )
    if answer.succeeded:
        message = f"{where} exited 0"
        event = Event(EventType.NORMAL, Reason.SUCCEEDED, message)
        return finish(
            seen, State.SUCCEEDED, Reason.SUCCEEDED, message + note, (event, *events), output,
            **fields,
        )  # fmt: skip
    message = f"{where} exited {answer.exit_code}"
    event = Event(EventType.WARNING, Reason.FAILED, message)
    return finish(
        seen, State.FAILED, Reason.COMMAND_FAILED, message + note, (event, *events), output,
        **fields,
    )  # fmt: skip


def _output(seen: Observation, answer: CommandResult) -> OutputWrite | None:
    """The whole output, kept where spec.output says (nothing for None)."""
    command_id = seen.status.get("commandId")
    if seen.spec.output == "None" or not seen.name or not command_id:
        return None
    return OutputWrite(seen.spec.output, output_name(seen.name, str(command_id)), answer.logs)


def _fence_said(seen: Observation, where: str, reason: str, detail: str, fields: Patch) -> Decision:
    """The wrapper answered for itself: the user's command did not run in this submission."""
    fence = str(seen.status.get("fence"))
    if reason == Reason.FENCE_UNAVAILABLE:
        message = unavailable_message(where, fence, fence_kind(seen), detail)
    elif reason == Reason.FENCE_RESULT_MISSING:
        message = missing_message(where, detail)
    else:
        message = f"{where}: {detail}"
    failed = Event(EventType.WARNING, Reason.FAILED, message)
    return finish(seen, State.FAILED, reason, message, (failed,), **fields)
