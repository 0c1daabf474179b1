"""Prometheus metrics, served on --metrics-port: what ran, how it ended, how long each step
took, what ARM answered, and how much of each subscription's budget is left.

Every series answers an on-call question (docs: metrics and alerts). Labels stay bounded:
states, reasons, ARM codes, operations, buckets and subscriptions; a command id or an object's
name never becomes a label. The target cluster (subscription, resource group, cluster) is on
the run series only while --metrics-cluster-labels is on (the default); turned off, those
labels are empty and Prometheus drops them, so a very large fleet does not multiply series.

Gauges that describe the operator's current state (RunCommands by state, claims, buckets) are
computed when Prometheus scrapes, from callables the wiring hands over (:func:`observe_runtime`,
:func:`observe_budget`, :func:`observe_sets`), so nothing is kept twice.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controller.arm.models import ClusterRef
from controller.arm.observe import BucketName, Operation

TARGET_LABELS = ("subscription", "resource_group", "cluster")
_labels = {"per_cluster": True}

# Run durations span seconds to the six-hour default timeout; latencies of the operator's own
# steps are seconds to minutes (a saturated budget queues submissions for minutes).
_RUN_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600)
_STEP_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
_ARM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 90)

SUBMISSIONS = Counter(
    "aks_runcommand_submissions",
    "runCommand submissions by outcome: accepted, refused (an ARM or input error), unknown "
    "(ARM may have accepted it)",
    ["outcome", *TARGET_LABELS],
)
RUNS_FINISHED = Counter(
    "aks_runcommand_runs_finished",
    "Runs that reached a final state, by state and reason (reason is an ARM code or ours)",
    ["state", "reason", *TARGET_LABELS],
)
ARM_ERRORS = Counter(
    "aks_runcommand_errors",
    "Failed preparations (inputs, sign-in, cluster lookup: nothing sent), submissions and polls "
    "by error code (ARM codes, or the operator's own, such as FilesNotFound)",
    ["operation", "code", *TARGET_LABELS],
)
WAITING = Gauge(
    "aks_runcommand_waiting",
    "RunCommands waiting on a timer for their next poll, retry or TTL deletion",
)
RUN_DURATION = Histogram(
    "aks_runcommand_run_duration_seconds",
    "How long commands ran in the target cluster (ARM's startedAt to finishedAt), by final state",
    ["state", *TARGET_LABELS],
    buckets=_RUN_BUCKETS,
)
SUBMISSION_LATENCY = Histogram(
    "aks_runcommand_submission_latency_seconds",
    "From a RunCommand's creation to ARM accepting its first submission: the wait for inputs, "
    "claims and the subscription's budget",
    TARGET_LABELS,
    buckets=_STEP_BUCKETS,
)
RECORD_LATENCY = Histogram(
    "aks_runcommand_record_latency_seconds",
    "From the end of a command in ARM (finishedAt) to its result recorded in status: how late "
    "a pipeline waiting on the RunCommand learns the outcome",
    TARGET_LABELS,
    buckets=_STEP_BUCKETS,
)
ARM_REQUESTS = Histogram(
    "aks_runcommand_arm_request_duration_seconds",
    "ARM requests by operation and HTTP status (error: no answer came), and how long each took",
    ["operation", "status"],
    buckets=_ARM_BUCKETS,
)
BUDGET_WAIT = Histogram(
    "aks_runcommand_budget_wait_seconds",
    "Time requests waited for a token of their subscription's bucket (ARM reads, writes, or the "
    "AKS resource provider's budget that submissions and polls share)",
    ["subscription", "bucket"],
    buckets=_STEP_BUCKETS,
)
THROTTLED = Counter(
    "aks_runcommand_throttled",
    "429 answers, by the bucket that refused: ARM's read or write bucket, or the AKS resource "
    "provider's",
    ["subscription", "bucket"],
)
SET_ROUNDS_FINISHED = Counter(
    "aks_runcommand_set_rounds_finished",
    "RunCommandSet rounds that ended, by final state and reason (e.g. MaxFailuresExceeded, "
    "ProgressDeadlineExceeded)",
    ["state", "reason"],
)


def label_clusters(enabled: bool) -> None:
    """Whether counts carry their target cluster (--metrics-cluster-labels)."""
    _labels["per_cluster"] = enabled


def target(resource_id: object) -> tuple[str, str, str]:
    """(subscription, resource group, cluster name) of an AKS resource id, as label values;
    empty when cluster labels are off or the id is not an AKS cluster's."""
    if not _labels["per_cluster"] or not isinstance(resource_id, str):
        return ("", "", "")
    try:
        cluster = ClusterRef.parse(resource_id)
    except ValueError:
        return ("", "", "")
    return (cluster.subscription_id, cluster.resource_group, cluster.name)


def watch_waiting(count: Callable[[], int]) -> None:
    WAITING.set_function(lambda: float(count()))


class ArmMetrics:
    """The ARM client's :class:`~controller.arm.observe.ArmObserver`: its requests, waits for
    budget and 429s, as the series above."""

    def request(self, operation: Operation, status: str, seconds: float) -> None:
        ARM_REQUESTS.labels(operation, status).observe(seconds)

    def budget_wait(self, subscription_id: str, bucket: BucketName, seconds: float) -> None:
        BUDGET_WAIT.labels(subscription_id.casefold(), bucket).observe(seconds)

    def throttled(self, subscription_id: str, bucket: BucketName) -> None:
        THROTTLED.labels(subscription_id.casefold(), bucket).inc()


@dataclass(frozen=True)
class RuntimeView:
    """What the runtime knows now, read at each scrape."""

    states: Callable[[], Iterable[str]]  # the state of every RunCommand it follows
    claim_ages: Callable[[], Iterable[float]]  # seconds since each claim it holds was written
    in_flight: Callable[[], int]  # POSTs sent and not answered yet
    claim_lease_seconds: float


class _Snapshot(Collector):
    """Gauges computed on scrape from the callables the wiring registered."""

    def __init__(self) -> None:
        self.runtime: RuntimeView | None = None
        self.budget: Callable[[], Iterable[tuple[str, BucketName, float]]] | None = None
        self.sets: Callable[[], Iterable[tuple[str, Tally[str]]]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.runtime is not None:
            yield from _runtime_families(self.runtime)
        if self.budget is not None:
            tokens = GaugeMetricFamily(
                "aks_runcommand_budget_tokens",
                "Tokens left in each subscription's bucket (ARM reads, writes; the AKS resource "
                "provider's): near zero, requests queue; negative, requests hold reservations",
                labels=["subscription", "bucket"],
            )
            for subscription, bucket, level in self.budget():
                tokens.add_metric([subscription, bucket], level)
            yield tokens
        if self.sets is not None:
            yield from _set_families(self.sets())


def _runtime_families(view: RuntimeView) -> Iterator[GaugeMetricFamily]:
    by_state = GaugeMetricFamily(
        "aks_runcommand_runcommands",
        "RunCommands this operator follows, by state (Pending, Submitting, Running, Succeeded, "
        "Failed, Unknown)",
        labels=["state"],
    )
    for state, count in sorted(Tally(view.states()).items()):
        by_state.add_metric([state], count)
    yield by_state
    ages = list(view.claim_ages())
    yield GaugeMetricFamily(
        "aks_runcommand_claims_held",
        "Runs this operator has claimed and whose ARM answer it has not recorded yet",
        value=len(ages),
    )
    yield GaugeMetricFamily(
        "aks_runcommand_oldest_claim_age_seconds",
        "Age of the oldest claim this operator holds (0 with none): past the claim lease, peers "
        "and restarts treat the run as abandoned",
        value=max(ages, default=0.0),
    )
    yield GaugeMetricFamily(
        "aks_runcommand_claim_lease_seconds",
        "How long a claim is presumed alive (--claim-lease-seconds)",
        value=view.claim_lease_seconds,
    )
    yield GaugeMetricFamily(
        "aks_runcommand_submissions_in_flight",
        "runCommand POSTs sent and not answered yet",
        value=view.in_flight(),
    )


def _set_families(sets: Iterable[tuple[str, Tally[str]]]) -> Iterator[GaugeMetricFamily]:
    rounds = GaugeMetricFamily(
        "aks_runcommand_sets",
        "RunCommandSets this operator follows, by the state of their current round",
        labels=["state"],
    )
    clusters = GaugeMetricFamily(
        "aks_runcommand_set_clusters",
        "Clusters of the current rounds of all RunCommandSets, by the state of their run",
        labels=["state"],
    )
    round_states: Tally[str] = Tally()
    cluster_states: Tally[str] = Tally()
    for state, children in sets:
        round_states[state] += 1
        cluster_states.update(children)
    for state, count in sorted(round_states.items()):
        rounds.add_metric([state], count)
    for state, count in sorted(cluster_states.items()):
        clusters.add_metric([state], count)
    yield rounds
    yield clusters


_SNAPSHOT = _Snapshot()
REGISTRY.register(_SNAPSHOT)


def observe_runtime(view: RuntimeView) -> None:
    _SNAPSHOT.runtime = view


def observe_budget(levels: Callable[[], Iterable[tuple[str, BucketName, float]]]) -> None:
    _SNAPSHOT.budget = levels


def observe_sets(sets: Callable[[], Iterable[tuple[str, Tally[str]]]]) -> None:
    """Each set's round state and its clusters' run states (no set names: bounded labels)."""
    _SNAPSHOT.sets = sets


def serve(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
    """Serve /metrics from a daemon thread (the prometheus_client way); it never blocks the loop."""
    start_http_server(port, addr=address)
