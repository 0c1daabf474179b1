"""The operator's settings: one tree of frozen dataclasses, as kopf's ``OperatorSettings``.

Every knob lives here once, with its default and what it is for; ``controller/config.py`` maps
flags and environment variables onto it, and ``controller/wiring.py`` hands each part its
branch. The core's ``Settings`` (logs, history, claims and leases, poll and retry timings) is
one branch, ``OperatorConfig.settings``: the core decides with it and imports nothing of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from controller.arm import AZURE_PUBLIC_CLOUD, Cloud, CredentialConfig
from controller.core import Settings
from controller.core.policy import OperatorIdentityAllowance

DEFAULT_CREDENTIALS_SECRET = "aks-runcommand-credentials"  # noqa: S105 - a Secret's name


@dataclass(frozen=True)
class ArmSettings:
    cloud: Cloud = AZURE_PUBLIC_CLOUD
    """The Azure cloud (or a custom ARM endpoint, such as the local emulator) commands go to."""

    ca_file: str | None = None
    """A CA bundle for the ARM and sign-in endpoints' TLS; None: the system's."""

    budget: Literal["aks", "arm"] = "aks"
    """The request budget kept to. "aks": ARM's buckets plus the AKS resource provider's "all
    other APIs" budget (60, then 1/s per subscription, submits and polls together); "arm":
    ARM's buckets only."""


@dataclass(frozen=True)
class IdentitySettings:
    credential: CredentialConfig = field(default_factory=lambda: CredentialConfig(mode="default"))
    """The operator's own identity, from azure-identity's standard AZURE_* variables."""

    default_credentials_secret: str = DEFAULT_CREDENTIALS_SECRET
    """The credentials Secret a RunCommand without one names, in its own namespace."""

    workload_identity_from_secrets: bool = False
    """Whether a credentials Secret may select workload identity with another client id."""

    operator_identity: OperatorIdentityAllowance = field(
        default_factory=lambda: OperatorIdentityAllowance(frozenset(), None)
    )
    """The namespaces whose RunCommands may use the operator's own identity."""


@dataclass(frozen=True)
class InputSettings:
    max_context_bytes: int = 1024 * 1024
    """The largest base64 context (script and files) sent to ARM."""

    secret_reuse_seconds: float = 5.0
    """How old a read of a credentials Secret a poll may reuse; a submission reads afresh."""


@dataclass(frozen=True)
class RuntimeSettings:
    workers: int = 16
    """Polls and retries run at once; ARM's budget, not this, sets the pace."""

    record_backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """Seconds between tries to record ARM's answer to a POST (the last one repeats)."""


@dataclass(frozen=True)
class PollSettings:
    wave: int = 10
    """More runs than this in flight in one subscription, never polled yet, are a wave: a new
    one is first polled no sooner than the oldest has been running."""


@dataclass(frozen=True)
class ParentSettings:
    child_settle_seconds: float = 0.2
    """Child events within this window are one look at their parent."""


@dataclass(frozen=True)
class FleetSettings:
    follow_seconds: float = 60.0
    """How often a RunCommandSet with followNewClusters lists its clusters again."""

    workers: int = 4
    """Sets looked at once."""

    discovery_retry_seconds: float = 30.0
    """A cluster discovery that failed is tried again after this."""

    write_concurrency: int = 16
    """Child creates and patches in flight at once for one set."""

    retry_first_seconds: float = 0.5
    """A lost race: decide again this soon, then back off."""

    retry_max_seconds: float = 30.0
    """The longest back-off after lost races."""

    blocked_first_seconds: float = 5.0
    """A child's name held by another owner: look again after this, backing off."""

    blocked_max_seconds: float = 300.0
    """The longest back-off while a child's name is held by another owner."""

    wake_margin_seconds: float = 1.0
    """Status times have whole seconds: look just after a deadline, not just before."""


@dataclass(frozen=True)
class ScheduleSettings:
    workers: int = 2
    """Schedules looked at once."""

    tick_delay_seconds: float = 0.1
    """Wake just after the tick (CronJob's nextScheduleDelta)."""

    max_sleep_seconds: float = 300.0
    """Look again at least this often: a wall clock that jumps is caught."""


@dataclass(frozen=True)
class WatchSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces watched; empty: all."""

    label_selector: str | None = None
    """The API server sends only RunCommands, sets and schedules matching this selector (a
    shard, e.g. sharding.aks.gitops.dev/key=blue); None: all."""

    server_timeout: int = 300
    """Seconds a watch request stays open before kopf starts another."""

    worker_limit: int = 128
    """kopf's worker tasks at once (one per object while its events arrive)."""

    idle_timeout: float = 0.1
    """Seconds an idle kopf worker lingers: thousands of objects do not mean thousands of tasks."""

    chunk_size: int = 200
    """Objects per page of kopf's initial list: a cold start over many objects handles them as
    they arrive."""


@dataclass(frozen=True)
class PeeringSettings:
    name: str | None = None
    """kopf's peering object, for several replicas; None: standalone."""

    priority: int = 0
    """This replica's peering priority; the highest runs."""


@dataclass(frozen=True)
class MetricsSettings:
    port: int | None = None
    """The port of Prometheus /metrics; None: off."""

    cluster_labels: bool = True
    """Whether counts carry the target's subscription, resource group and cluster."""


@dataclass(frozen=True)
class HealthSettings:
    liveness: str | None = None
    """kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz; None: off."""

    check_seconds: float = 5.0
    """A liveness check of the API server that takes longer than this is a failure (the
    chart's probe waits 10 s)."""

    start_retry_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
    """At start, while the API server is not ready: seconds between tries (the last repeats)."""


@dataclass(frozen=True)
class LogSettings:
    format: Literal["text", "json"] = "text"
    """The log format."""

    verbose: bool = False
    """Debug logs."""


@dataclass(frozen=True)
class OperatorConfig:
    """The whole tree: each branch goes to the parts that use it (controller/wiring.py)."""

    settings: Settings = field(default_factory=Settings)
    """The core's: logs and history kept, the claimant and its lease, poll and retry timings."""

    arm: ArmSettings = field(default_factory=ArmSettings)
    """Where commands go and the request budget kept to (wiring: the ARM clients, throttle)."""

    identity: IdentitySettings = field(default_factory=IdentitySettings)
    """Which identity a run may use (inputs)."""

    inputs: InputSettings = field(default_factory=InputSettings)
    """What a run is sent with (inputs)."""

    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    """How the runtime performs (runtime)."""

    polls: PollSettings = field(default_factory=PollSettings)
    """When runs are first polled (polltimes); the poll intervals are the core's (settings)."""

    parents: ParentSettings = field(default_factory=ParentSettings)
    """What sets and schedules share (parents)."""

    fleet: FleetSettings = field(default_factory=FleetSettings)
    """RunCommandSets (fleet)."""

    schedules: ScheduleSettings = field(default_factory=ScheduleSettings)
    """RunCommandSchedules (schedules)."""

    watching: WatchSettings = field(default_factory=WatchSettings)
    """What kopf watches, and how (handlers): namespaces, the shard's selector, queueing."""

    peering: PeeringSettings = field(default_factory=PeeringSettings)
    """kopf's peering, for several replicas (__main__, handlers)."""

    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    """Prometheus metrics (__main__)."""

    health: HealthSettings = field(default_factory=HealthSettings)
    """Liveness and the wait for the API server at start (health)."""

    logging: LogSettings = field(default_factory=LogSettings)
    """Logs (__main__)."""
