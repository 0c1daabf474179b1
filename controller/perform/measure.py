"""The metrics and the log line of a run's milestones: its submission and its end."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from controller import metrics
from controller.core import Observation
from controller.core.durations import parse_timestamp, run_seconds
from controller.kube import ObjectRef

from .logs import log_fields, logger

Body = Mapping[str, Any]


def run_ended(ref: ObjectRef, state: str, patch: Mapping[str, Any], status: Body) -> None:
    """A run's end was just written (``status``, as the API server returned it)."""
    where = metrics.target(status.get("clusterId"))
    reason = status.get("reason", "")
    metrics.RUNS_FINISHED.labels(state, reason, *where).inc()
    _observe_run_end(state, patch, where)
    logger.info("%s/%s: run ended %s (%s)", ref.namespace, ref.name, state,
                status.get("reason", ""), extra=log_fields(ref, None, status))  # fmt: skip


def observe_submission_latency(body: Body, seen: Observation, where: tuple[str, ...]) -> None:
    """Creation to submission, for an object's first run only: later runs start at a spec
    change, whose moment is not recorded anywhere."""
    created = parse_timestamp(body["metadata"].get("creationTimestamp"))
    if created is not None and seen.attempts == 1 and not seen.status.get("history"):
        seconds = (datetime.now(UTC) - created).total_seconds()
        metrics.SUBMISSION_LATENCY.labels(*where).observe(max(0.0, seconds))


def _observe_run_end(state: str, patch: Mapping[str, Any], where: tuple[str, ...]) -> None:
    """A result recorded now: how long the command ran, and how long after ARM's end we knew.
    Runs that never reached ARM (nothing sent) have neither."""
    if patch.get("exitCode") is None:
        return  # nothing ran to an end in ARM: refused, abandoned or never sent
    seconds = run_seconds(patch.get("startedAt"), patch.get("finishedAt"))
    if seconds is not None:
        metrics.RUN_DURATION.labels(state, *where).observe(seconds)
    finished = parse_timestamp(patch.get("finishedAt"))
    if finished is not None:
        late = (datetime.now(UTC) - finished).total_seconds()
        metrics.RECORD_LATENCY.labels(*where).observe(max(0.0, late))
