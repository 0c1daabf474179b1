"""The one catalogue of states and reasons the operator writes, in the manner of Flux's
``fluxcd/pkg/runtime/conditions``: conditions, decisions, metrics and the README's reason table
all name them from here, and a test checks the README lists every reason.

ARM error codes (``ResourceNotFound``, ``AuthorizationFailed``, ...) are passed through as
reasons verbatim: they are ARM's vocabulary, open-ended, and are not listed here.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """``status.state``: where the current run is."""

    PENDING = "Pending"  # nothing in flight: suspended, waiting for inputs, or between runs
    SUBMITTING = "Submitting"  # claimed: the POST is being sent, or a retry is planned
    RUNNING = "Running"  # ARM accepted it; its command id is recorded and polled
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"  # ARM may or may not have accepted the POST

    @property
    def final(self) -> bool:
        return self in (State.SUCCEEDED, State.FAILED, State.UNKNOWN)


class Reason(StrEnum):
    """``status.reason`` and the conditions' reason, when the operator (not ARM) names it."""

    # The run's life.
    SUBMITTING = "Submitting"
    SUBMITTED = "Submitted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    COMMAND_FAILED = "CommandFailed"  # it ran and exited non-zero
    PROVISIONING_FAILED = "ProvisioningFailed"  # ARM's Failed without a reason of its own
    SUSPENDED = "Suspended"
    NEXT_RUN_PENDING = "NextRunPending"  # the previous run ended; a changed spec starts next
    # Ends without a result.
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    SUBMISSION_OUTCOME_UNKNOWN = "SubmissionOutcomeUnknown"
    # submitPolicy ExactlyOnce's fence in the target cluster (core/fence.py): nothing ran here.
    FENCE_UNAVAILABLE = "FenceUnavailable"  # the fence could not be claimed (RBAC): not run
    FENCE_RESULT_MISSING = "FenceResultMissing"  # an earlier submission claimed it, no result
    INVALID_SPEC = "InvalidSpec"
    # Waiting, while another run or claim is in flight.
    WAITING_FOR_RUNNING_COMMAND = "WaitingForRunningCommand"
    WAITING_FOR_CLAIM = "WaitingForClaim"
    # Inputs and credentials: nothing was sent.
    CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
    INVALID_CREDENTIALS = "InvalidCredentials"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    TOKEN_ENDPOINT_UNREACHABLE = "TokenEndpointUnreachable"  # noqa: S105 - a reason, not a secret
    FILES_NOT_FOUND = "FilesNotFound"
    INVALID_CONTEXT_PATH = "InvalidContextPath"
    INVALID_CONTEXT = "InvalidContext"
    CONTEXT_TOO_LARGE = "ContextTooLarge"
    CLOUD_MISMATCH = "CloudMismatch"
    POLICY_DENIED = "PolicyDenied"  # the operator-identity allowance or a RunCommandPolicy
    # RunCommandSet rounds (status.reason of a set).
    PROGRESSING = "Progressing"  # the rollout is starting and following children
    CLUSTERS_FAILED = "ClustersFailed"  # the round ended; at least one cluster failed
    MAX_FAILURES_EXCEEDED = "MaxFailuresExceeded"  # more failed than maxFailures: no new starts
    NO_TARGETS = "NoTargets"  # no cluster matches the set's clusters or selector
    DISCOVERY_FAILED = "DiscoveryFailed"  # listing managed clusters through ARM failed
    CHILD_OWNED_ELSEWHERE = "ChildOwnedElsewhere"  # a child's name is held by another owner
    ROUND_STARTED = "RoundStarted"  # an event: a set's new round began
    # Staged rounds (spec.stages).
    WAITING_FOR_APPROVAL = "WaitingForApproval"  # a stage needs spec.approvals for this round
    SOAKING = "Soaking"  # a stage succeeded; its soak gates the next
    STAGE_FAILED = "StageFailed"  # a stage went past its maxFailures: the round ends
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"  # not finished in time
    NO_MATCHING_STAGE = "NoMatchingStage"  # a target no stage selects: not run
    STAGE_STARTED = "StageStarted"  # events
    STAGE_SUCCEEDED = "StageSucceeded"
    STAGE_APPROVED = "StageApproved"
    STAGE_WAITING_FOR_APPROVAL = "StageWaitingForApproval"
    # RunCommandSchedule ticks (status.reason of a schedule, and its events).
    SCHEDULED = "Scheduled"  # no run has finished yet; the next tick is planned
    RUN_CREATED = "RunCreated"  # an event: a tick's child was created
    RUN_ALREADY_ACTIVE = "RunAlreadyActive"  # Forbid: a tick skipped while a run is active
    MISSED_SCHEDULE = "MissedSchedule"  # ticks that passed unstarted (downtime, deadline)
    RUN_DELETED = "RunDeleted"  # an event: a finished child beyond the history limits
    # Output.
    LOGS_TRUNCATED = "LogsTruncated"  # an event: ARM cut the output at its limit


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
