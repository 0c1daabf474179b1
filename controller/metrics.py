"""Prometheus metrics: what ran, how it ended, and what ARM answered. Served on --metrics-port."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, start_http_server

# The target cluster of each count. One series per cluster can be too many for a very large
# fleet: --no-metrics-cluster-labels leaves these labels empty (Prometheus drops empty labels).
TARGET_LABELS = ("subscription", "resource_group", "cluster")
_labels = {"per_cluster": True}

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


def label_clusters(enabled: bool) -> None:
    """Whether counts carry their target cluster (--metrics-cluster-labels)."""
    _labels["per_cluster"] = enabled


def target(resource_id: object) -> tuple[str, str, str]:
    """(subscription, resource group, cluster name) of an AKS resource id, as label values;
    empty when cluster labels are off or the id is missing."""
    if not _labels["per_cluster"] or not isinstance(resource_id, str):
        return ("", "", "")
    parts = resource_id.strip("/").split("/")
    fields = {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}
    return (
        fields.get("subscriptions", ""),
        fields.get("resourcegroups", ""),
        fields.get("managedclusters", ""),
    )


def watch_waiting(count: Callable[[], int]) -> None:
    WAITING.set_function(lambda: float(count()))


def serve(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
    """Serve /metrics from a daemon thread (the prometheus_client way); it never blocks the loop."""
    start_http_server(port, addr=address)
