"""Prometheus metrics: what ran, how it ended, and what ARM answered. Served on --metrics-port."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, start_http_server

SUBMISSIONS = Counter(
    "aks_runcommand_submissions",
    "runCommand submissions by outcome: accepted, refused (an ARM or input error), unknown "
    "(ARM may have accepted it)",
    ["outcome"],
)
RUNS_FINISHED = Counter(
    "aks_runcommand_runs_finished",
    "Runs that reached a final state, by state and reason (reason is an ARM code or ours)",
    ["state", "reason"],
)
ARM_ERRORS = Counter(
    "aks_runcommand_errors",
    "Failed preparations (inputs, sign-in, cluster lookup: nothing sent), submissions and polls "
    "by error code (ARM codes, or the operator's own, such as FilesNotFound)",
    ["operation", "code"],
)
WAITING = Gauge(
    "aks_runcommand_waiting",
    "RunCommands waiting on a timer for their next poll, retry or TTL deletion",
)


def watch_waiting(count: Callable[[], int]) -> None:
    WAITING.set_function(lambda: float(count()))


def serve(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
    """Serve /metrics from a daemon thread (the prometheus_client way); it never blocks the loop."""
    start_http_server(port, addr=address)
