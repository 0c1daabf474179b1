"""The operator's one vocabulary: every name it writes where others read it.

States and reasons (as Flux's ``fluxcd/pkg/runtime/conditions`` keeps them in one catalogue),
event types, the operator's own error codes, the API group and its kinds, and the labels and
annotations it sets. Conditions, decisions, metrics, the docs' reference and the reasons tables
all name them from here; a test fails on a state or reason literal anywhere else, and this module
imports only the standard library (an import contract).

ARM's error codes (``ResourceNotFound``, ``AuthorizationFailed``, ...) are passed through as
reasons verbatim: they are ARM's vocabulary, open-ended, and are not listed here.
"""

from __future__ import annotations

from enum import StrEnum

# The API ---------------------------------------------------------------------------------------

GROUP = "aks.gitops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
RUNCOMMAND_KIND, RUNCOMMAND_PLURAL = "RunCommand", "runcommands"
SET_KIND, SET_PLURAL = "RunCommandSet", "runcommandsets"
SCHEDULE_KIND, SCHEDULE_PLURAL = "RunCommandSchedule", "runcommandschedules"
POLICY_KIND, POLICY_PLURAL = "RunCommandPolicy", "runcommandpolicies"

# Labels and annotations --------------------------------------------------------------------------

SET_LABEL = f"{GROUP}/runcommandset"  # on a set's children: the set's name
CLUSTER_LABEL = f"{GROUP}/cluster-hash"  # on a set's children: which target
ROUND_LABEL = f"{GROUP}/round"  # on a set's children: the round that made them
TEMPLATE_LABEL = f"{GROUP}/template"  # hash of the set's template: orphans adopted by it
RETRY_LABEL = f"{GROUP}/retry"  # the retryFailedToken (hashed) a child last obeyed
STAGE_LABEL = f"{GROUP}/stage"  # on a set's children: the stage that selected the target
# Sharding, the Kubernetes way: an operator started with --shard-key handles only objects with
# this label set to its key; a parent's children carry the parent's value, so they land on its
# shard.
SHARD_LABEL = f"sharding.{GROUP}/key"
SCHEDULE_LABEL = f"{GROUP}/runcommandschedule"  # on a schedule's children: its name
TICK_LABEL = f"{GROUP}/scheduled-minute"  # the tick's unix minutes, for selectors
SCHEDULED_TIME_ANNOTATION = f"{GROUP}/scheduled-time"  # the tick, RFC 3339 UTC
# Set on children made by `kubectl runcommand trigger`, as cronjob.kubernetes.io/instantiate.
INSTANTIATE_ANNOTATION = f"{GROUP}/instantiate"
OUTPUT_LABEL = f"{GROUP}/runcommand"  # on a run's output ConfigMap: the RunCommand's name
FENCE_LABEL = f"{GROUP}/fence"  # on the ExactlyOnce fence in the target cluster
EXPIRES_LABEL = f"{GROUP}/fence-expires"  # when the fence may be cleaned up
REPORTING_COMPONENT = f"{GROUP}/runcommand-operator"  # events' reportingComponent



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


FINAL_STATES = frozenset(state for state in State if state.final)


class SetState(StrEnum):
    """``status.state`` of a RunCommandSet: where its round is."""

    PENDING = "Pending"  # no target yet (none matched while discovery is retried)
    PROGRESSING = "Progressing"
    WAITING_FOR_APPROVAL = "WaitingForApproval"  # a stage waits for spec.approvals
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


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
    # Events of a run's life.
    FAILED = "Failed"  # an event (Warning): the run ended Failed, whatever the reason
    RESUMED = "Resumed"  # a raised timeoutSeconds resumed watching a run past its old deadline
    ANSWER_NOT_RECORDED = "AnswerNotRecorded"  # ARM answered a run given up: not in status


# What each state and reason means, for a person: the docs' generated reference renders these,
# and a test fails on a member without one.
STATE_DESCRIPTIONS: dict[State, str] = {
    State.PENDING: "Nothing in flight: suspended, waiting for inputs or a token (nothing sent), "
    "or a changed spec runs next.",
    State.SUBMITTING: "Claimed and being submitted, or waiting for a retry after a certain "
    "refusal.",
    State.RUNNING: "ARM accepted the command; its command id is recorded and polled.",
    State.SUCCEEDED: "The command exited 0.",
    State.FAILED: "A non-zero exit, an ARM failure, the deadline, or bad input.",
    State.UNKNOWN: "The operator cannot tell whether ARM accepted the POST; it is not sent again "
    "under submitPolicy AtMostOnce.",
}

DESCRIPTIONS: dict[Reason, str] = {
    Reason.SUBMITTING: "The run is claimed and its POST is being sent.",
    Reason.SUBMITTED: "ARM accepted the POST; the command id is recorded.",
    Reason.RUNNING: "The command runs in the target cluster; the operator polls its result.",
    Reason.SUCCEEDED: "The command exited 0 (a set: every target succeeded).",
    Reason.COMMAND_FAILED: "The command ran and exited non-zero (ARM says provisioningState "
    "Succeeded). Read status.logs.",
    Reason.PROVISIONING_FAILED: "ARM reported provisioningState Failed or Canceled without a "
    "reason of its own: AKS could not run the command.",
    Reason.SUSPENDED: "spec.suspend is true: nothing new is submitted (or, for a set, started).",
    Reason.NEXT_RUN_PENDING: "The previous run ended (it is in status.history); the changed spec "
    "is submitted next.",
    Reason.DEADLINE_EXCEEDED: "spec.timeoutSeconds passed (6 h if unset); the command may still "
    "run, as ARM has no cancel.",
    Reason.SUBMISSION_OUTCOME_UNKNOWN: "The POST's fate cannot be known: the claiming operator "
    "stopped before ARM's answer, or the POST timed out, dropped or got a 5xx after being sent.",
    Reason.INVALID_SPEC: "The schema accepted the spec, but the operator cannot run it (for "
    "example an older CRD, or a set's template that names a cluster).",
    Reason.WAITING_FOR_RUNNING_COMMAND: "A field that defines a run changed while a command "
    "runs; ARM cannot cancel it, so the new run starts when it ends.",
    Reason.WAITING_FOR_CLAIM: "Another operator claimed this submission; this one waits for the "
    "claim's lease (--claim-lease-seconds).",
    Reason.CREDENTIALS_NOT_FOUND: "spec.credentials names a Secret missing from the namespace. "
    "Retried within spec.retries; nothing was sent.",
    Reason.INVALID_CREDENTIALS: "The credentials Secret has unknown keys, no tenantId or "
    "clientId, not exactly one secret kind, or a mode not allowed from a Secret.",
    Reason.AUTHENTICATION_FAILED: "Entra ID refused the credential (unknown tenant, wrong secret, "
    "bad assertion, expired federated token). Nothing was sent.",
    Reason.TOKEN_ENDPOINT_UNREACHABLE: "The sign-in endpoint could not be reached. Retried "
    "within spec.retries; nothing was sent.",
    Reason.FILES_NOT_FOUND: "A filesFrom ConfigMap or Secret, or one of its keys, is missing. "
    "Retried within spec.retries; nothing was sent.",
    Reason.INVALID_CONTEXT_PATH: "A file path is unsafe (absolute, .., backslash), given twice, "
    "or both a file and a directory. Nothing was sent.",
    Reason.INVALID_CONTEXT: "spec.context is not base64 of a zip. Nothing was sent.",
    Reason.CONTEXT_TOO_LARGE: "The files exceed --max-context-bytes. Nothing was sent.",
    Reason.CLOUD_MISMATCH: "spec.cluster.cloud names another cloud than the operator's --cloud. "
    "Nothing was sent.",
    Reason.POLICY_DENIED: "The namespace may not use the operator's identity, or a "
    "RunCommandPolicy forbids the cluster, the Secret files or the identity. Nothing was sent.",
    Reason.PROGRESSING: "A RunCommandSet's round is rolling out.",
    Reason.CLUSTERS_FAILED: "A set's round ended with at least one failed or Unknown cluster, "
    "within maxFailures.",
    Reason.MAX_FAILURES_EXCEEDED: "More of a set's clusters failed than maxFailures: no new "
    "cluster was started.",
    Reason.NO_TARGETS: "No cluster matches the set's spec.clusters or spec.clusterSelector.",
    Reason.DISCOVERY_FAILED: "Listing managed clusters through ARM failed (the message has ARM's "
    "code); tried again in 30 s.",
    Reason.LOGS_TRUNCATED: "An event: ARM cut the output at its 512 KiB limit.",
    Reason.FENCE_UNAVAILABLE: "submitPolicy ExactlyOnce: the fence in the target's aks-command "
    "namespace could not be claimed (the message names the RBAC the identity needs). Nothing of "
    "the command ran.",
    Reason.FENCE_RESULT_MISSING: "submitPolicy ExactlyOnce: an earlier submission claimed the "
    "fence and recorded no result by the run's deadline (its pod was evicted, for example).",
    Reason.CHILD_OWNED_ELSEWHERE: "A child's name is held by a RunCommand another owner controls "
    "(a predecessor's, during garbage collection): it is not created over; looked at again with "
    "backoff.",
    Reason.ROUND_STARTED: "An event: a set's new round began.",
    Reason.WAITING_FOR_APPROVAL: "A stage with approval: Required waits for spec.approvals to "
    "name it for this round (kubectl runcommand approve).",
    Reason.SOAKING: "A stage succeeded; its soakSeconds run before the next stage starts.",
    Reason.STAGE_FAILED: "A stage went past its maxFailures: the round ends, later stages never "
    "start; retryFailedToken retries its failed clusters.",
    Reason.PROGRESS_DEADLINE_EXCEEDED: "The round did not finish within progressDeadlineSeconds: "
    "nothing new starts; runs in flight are still recorded.",
    Reason.NO_MATCHING_STAGE: "A target no stage selects: it is not run (listed in "
    "status.unmatched).",
    Reason.STAGE_STARTED: "An event: a stage's first cluster started.",
    Reason.STAGE_SUCCEEDED: "An event: a stage ended within its maxFailures.",
    Reason.STAGE_APPROVED: "An event: spec.approvals names a waiting stage for this round.",
    Reason.STAGE_WAITING_FOR_APPROVAL: "An event: a stage waits for its approval.",
    Reason.SCHEDULED: "A schedule whose first run has not finished yet; the next tick is planned.",
    Reason.RUN_CREATED: "An event: a schedule's tick created its child.",
    Reason.RUN_ALREADY_ACTIVE: "concurrencyPolicy Forbid: a tick was skipped while the previous "
    "child runs (counted in status.skippedTicks).",
    Reason.MISSED_SCHEDULE: "Ticks passed unstarted (downtime, or past startingDeadlineSeconds); "
    "counted in status.missedTicks, never started late.",
    Reason.RUN_DELETED: "An event: a finished child beyond the history limits was deleted.",
    Reason.FAILED: "An event (Warning): the run ended Failed; the message names the cluster, the "
    "command id once there is one, and why.",
    Reason.RESUMED: "An event: a raised spec.timeoutSeconds resumed watching a run that had "
    "ended DeadlineExceeded.",
    Reason.ANSWER_NOT_RECORDED: "An event: ARM answered a submission after its run had been "
    "given up and a new one started; the answer is not recorded in status.",
}


class ConditionType(StrEnum):
    """The kstatus conditions a RunCommand carries (core/conditions.py)."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    FINISHED = "Finished"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class ErrorCode(StrEnum):
    """The operator's own error codes, for answers ARM gave no code to: they reach
    ``status.reason`` as an ARM code does."""

    INVALID_NEXT_LINK = "InvalidNextLink"  # a list page's nextLink left ARM's host
    MALFORMED_RESPONSE = "MalformedResponse"  # ARM's body was not the JSON its contract says
    INVALID_COMMAND_HANDLE = "InvalidCommandHandle"  # a recorded command id that cannot be polled


# The states of a set's clusters and stages, and of a schedule ----------------------------------


class ClusterState(StrEnum):
    """``status.clusters[].state`` of a RunCommandSet: a target as its round sees it, its
    child's run state once started."""

    WAITING = "Waiting"  # not started yet: its child is suspended, or not created
    BLOCKED = "Blocked"  # its child cannot be created: another owner holds the name
    PENDING = "Pending"  # started: its child's status does not describe the run yet
    SUBMITTING = "Submitting"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class StageState(StrEnum):
    """``status.stages[].state`` of a RunCommandSet with spec.stages."""

    PENDING = "Pending"  # not reached yet
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    PROGRESSING = "Progressing"
    SOAKING = "Soaking"  # succeeded; its soakSeconds gate the next stage
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # past its maxFailures: the round ends


class ScheduleState(StrEnum):
    """``status.state`` of a RunCommandSchedule: its last run's outcome."""

    SCHEDULED = "Scheduled"  # no run has ended yet
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
