"""Value types of the runCommand API. Frozen, typed, free of I/O.

Timestamps (``started_at``, ``finished_at``) are kept as the ISO 8601 strings ARM sent,
verbatim: the operator copies them into Kubernetes status, and re-formatting would only lose
precision or invent a time zone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "ArmCode",
    "BudgetRoom",
    "ClusterRef",
    "ClusterTokenMode",
    "CommandHandle",
    "CommandResult",
    "CommandRunning",
    "CommandStatus",
    "ManagedCluster",
    "PreparedSubmission",
    "ProvisioningState",
]

# Whether a runCommand POST carries a clusterToken: ``auto`` reads the cluster once (cached per
# client) and sends one to AAD-managed clusters; ``always`` and ``never`` do not read it.
ClusterTokenMode = Literal["auto", "always", "never"]
CLUSTER_TOKEN_MODES: tuple[ClusterTokenMode, ...] = ("auto", "always", "never")
_REPR_COMMAND_CHARS = 60

_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")


def _valid_resource_group(name: str) -> bool:
    """ARM's rule: 1-90 characters, each a letter or digit (Unicode ones too: .NET's
    Char.IsLetterOrDigit, categories L and Nd), '_', '-', '.', '(' or ')'; no final '.'."""
    return (
        0 < len(name) <= 90
        and not name.endswith(".")
        and all(c in "_-.()" or unicodedata.category(c) in _LETTER_OR_DIGIT for c in name)
    )


_LETTER_OR_DIGIT = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"})
_PROVIDER = "Microsoft.ContainerService"
_CLUSTER_TYPE = "managedClusters"
_RESOURCE_ID_FIXED_SEGMENTS = [
    segment.casefold()
    for segment in ("subscriptions", "resourceGroups", "providers", _PROVIDER, _CLUSTER_TYPE)
]


@dataclass(frozen=True)
class BudgetRoom:
    """What one client-side bucket that polls draw from says now (see throttle.py)."""

    tokens: float  # spare now; negative while submissions hold reservations
    refill_per_second: float
    blocked_seconds: float = 0.0  # a 429's Retry-After still holds the bucket this long


class ProvisioningState(StrEnum):
    """ARM's provisioningState of a runCommand result: ARM's vocabulary, not the operator's
    (its states are ``controller.vocabulary.State``). A free string whose case varies
    (``Succeeded`` vs ``succeeded``): compare with :meth:`matches`."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @staticmethod
    def matches(state: str | None, expected: str) -> bool:
        return state is not None and state.casefold() == expected.casefold()

    @staticmethod
    def is_terminal(state: str | None) -> bool:
        return state is not None and state.casefold() in _TERMINAL


# ARM's terminal states for long-running operations. Anything else counts as still running.
_TERMINAL = frozenset(
    state.casefold()
    for state in (ProvisioningState.SUCCEEDED, ProvisioningState.FAILED, ProvisioningState.CANCELED)
)


class ArmCode(StrEnum):
    """The ARM error codes the client acts on (ARM's vocabulary; compared casefolded)."""

    THROTTLED = "Throttled"  # the AKS resource provider's 429 (ARM's own says TooManyRequests)
    # An AAD-managed cluster, and no clusterToken was sent.
    MISSING_AAD_CLUSTER_TOKEN = "MissingAADClusterToken"  # noqa: S105 - a code, not a secret
    # The command pod was being started when ARM answered: it may still run the command.
    KUBERNETES_OPERATION_ERROR = "KubernetesOperationError"
    KUBERNETES_PERFORMANCE_ERROR = "KubernetesPerformanceError"


@dataclass(frozen=True)
class ClusterRef:
    """Identifies an AKS managed cluster. Validated on construction."""

    subscription_id: str
    resource_group: str
    name: str

    def __post_init__(self) -> None:
        if not _UUID.match(self.subscription_id):
            raise ValueError(f"subscription id must be a UUID, got {self.subscription_id!r}")
        if not _valid_resource_group(self.resource_group):
            raise ValueError(
                f"invalid resource group name {self.resource_group!r}: 1-90 letters or digits "
                "(Unicode ones too), '_', '-', '.', '(' or ')', not ending with '.', as ARM allows"
            )
        if not _CLUSTER_NAME.match(self.name):
            raise ValueError(
                f"invalid cluster name {self.name!r}: 1-63 letters, digits, '-' or '_', "
                "starting and ending with a letter or digit"
            )

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{_PROVIDER}/{_CLUSTER_TYPE}/{self.name}"
        )

    @property
    def cache_key(self) -> str:
        """Resource ids are case-insensitive in ARM."""
        return self.resource_id.casefold()

    @classmethod
    def parse(cls, resource_id: str) -> ClusterRef:
        """Parse an ARM resource id of a managed cluster (segment names in any case)."""
        parts = resource_id.strip().strip("/").split("/")
        # Segment names are case-insensitive in ARM ("resourcegroups" is common).
        fixed = [parts[i].casefold() for i in (0, 2, 4, 5, 6)] if len(parts) == 8 else []
        if fixed != _RESOURCE_ID_FIXED_SEGMENTS:
            raise ValueError(
                f"not an AKS cluster resource id: {resource_id!r}; expected /subscriptions/<uuid>"
                f"/resourceGroups/<group>/providers/{_PROVIDER}/{_CLUSTER_TYPE}/<name>"
            )
        return cls(subscription_id=parts[1], resource_group=parts[3], name=parts[7])


@dataclass(frozen=True, repr=False)
class PreparedSubmission:
    """A runCommand POST ready to send: the cluster read and every token already obtained.

    Made by ``ArmClient.prepare_submission`` and sent, soon after and by the same client, with
    ``send_submission``. It holds the clusterToken (when one is sent), so ``repr`` shows neither
    it nor the context, only their presence and size.
    """

    cluster: ClusterRef
    command: str
    context: str | None
    cluster_token_mode: ClusterTokenMode
    correlation_id: str
    cluster_token: str | None = None
    budget_reserved: bool = False  # prepare_submission took the POST's share of the write budget

    def body(self) -> dict[str, str]:
        body = {"command": self.command}
        if self.context:
            body["context"] = self.context
        if self.cluster_token is not None:
            body["clusterToken"] = self.cluster_token
        return body

    def __repr__(self) -> str:
        command = self.command
        if len(command) > _REPR_COMMAND_CHARS:
            command = command[: _REPR_COMMAND_CHARS - 1] + "…"
        context = "None" if self.context is None else f"<{len(self.context)} chars>"
        token = "None" if self.cluster_token is None else "<redacted>"
        return (
            f"PreparedSubmission(cluster={self.cluster.resource_id!r}, command={command!r}, "
            f"context={context}, cluster_token_mode={self.cluster_token_mode!r}, "
            f"correlation_id={self.correlation_id!r}, cluster_token={token})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class CommandHandle:
    """What the operator must persist to find a submitted command again (status.commandId,
    location and correlationId; the core rebuilds it from them). ``retry_after`` is the 202's
    hint (seconds) for the first poll, if ARM sent one.
    """

    command_id: str
    location: str
    correlation_id: str
    retry_after: float | None = None


@dataclass(frozen=True)
class CommandRunning:
    """The command has not finished. ``provisioning_state`` is None when ARM sent no body."""

    started_at: str | None
    retry_after: float | None
    provisioning_state: str | None


@dataclass(frozen=True)
class CommandResult:
    """A finished command (terminal provisioningState)."""

    provisioning_state: str
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    logs: str
    reason: str | None

    @property
    def succeeded(self) -> bool:
        """The command ran and exited 0."""
        return self._ran and self.exit_code == 0

    @property
    def platform_failed(self) -> bool:
        """AKS could not run the command (Failed, e.g. ImagePullBackoff, or Canceled)."""
        return not self._ran

    @property
    def _ran(self) -> bool:
        # ARM reports Succeeded whenever the command ran to its end, whatever its exit code.
        return ProvisioningState.matches(self.provisioning_state, ProvisioningState.SUCCEEDED)


CommandStatus = CommandRunning | CommandResult


def command_status_from_json(body: Mapping[str, Any], retry_after: float | None) -> CommandStatus:
    """Interpret a commandResults body. A missing or unknown state counts as running."""
    properties = body.get("properties")
    props: Mapping[str, Any] = properties if isinstance(properties, dict) else {}
    state = _str_or_none(props.get("provisioningState"))
    started_at = _str_or_none(props.get("startedAt"))
    if state is None or not ProvisioningState.is_terminal(state):
        return CommandRunning(
            started_at=started_at, retry_after=retry_after, provisioning_state=state
        )
    exit_code = props.get("exitCode")
    if isinstance(exit_code, bool) or not isinstance(exit_code, int):
        exit_code = None
    return CommandResult(
        provisioning_state=state,
        exit_code=exit_code,
        started_at=started_at,
        finished_at=_str_or_none(props.get("finishedAt")),
        logs=_str_or_none(props.get("logs")) or "",
        reason=_str_or_none(props.get("reason")),
    )


@dataclass(frozen=True)
class ManagedCluster:
    """The parts of a managedClusters resource that matter to run commands."""

    aad_managed: bool
    disable_run_command: bool
    power_state: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ManagedCluster:
        properties = body.get("properties")
        props: Mapping[str, Any] = properties if isinstance(properties, dict) else {}
        return cls(
            aad_managed=_nested(props, "aadProfile", "managed") is True,
            disable_run_command=_nested(props, "apiServerAccessProfile", "disableRunCommand")
            is True,
            power_state=_str_or_none(_nested(props, "powerState", "code")),
        )


@dataclass(frozen=True)
class DiscoveredCluster:
    """One entry of a managedClusters list: where it is and how it is tagged."""

    ref: ClusterRef
    tags: Mapping[str, str]

    @property
    def resource_id(self) -> str:
        return self.ref.resource_id

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def resource_group(self) -> str:
        return self.ref.resource_group

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DiscoveredCluster:
        """Raises ValueError when the entry has no usable managed cluster id."""
        resource_id = body.get("id")
        if not isinstance(resource_id, str):
            raise ValueError("a managedClusters list entry has no id")
        tags = body.get("tags")
        clean = (
            {str(k): str(v) for k, v in tags.items() if isinstance(v, str)}
            if isinstance(tags, dict)
            else {}
        )
        return cls(ClusterRef.parse(resource_id), clean)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _nested(mapping: Mapping[str, Any], *keys: str) -> object:
    value: object = mapping
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
