"""What each attempt of a run records, so retries count against the right run: the attempt's
number, the run's identity (spec hash, generation, runToken), when it was first submitted, and,
under submitPolicy ExactlyOnce, the fence every submission of the run ships."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .deadlines import run_deadline
from .decision import Patch
from .fence import Fence, FenceKind, fence_name
from .observation import NO_RUN, Observation


def attempt_fields(seen: Observation, correlation_id: str | None = None) -> Patch:
    """What an attempt records about its run: a first attempt clears what the previous run
    left. An ExactlyOnce run's fence is named by the first attempt that submits
    (`correlation_id`) and kept by every later one."""
    attempts = seen.next_attempt()
    first = attempts == 1
    fields: Patch = {
        **(NO_RUN if first else {}),
        "specHash": seen.spec.run_hash,
        "attempts": attempts,
        "runGeneration": seen.generation,
        "runToken": seen.spec.run_token,
        "submittedAt": seen.now_text if first else seen.status.get("submittedAt"),
    }
    # A later attempt keeps the fence its run was first submitted behind, whatever
    # submitPolicy says now: the submissions already sent can only be found through it.
    kept = None if first else seen.status.get("fence")
    if kept:
        fields["fence"] = kept
    elif seen.spec.exactly_once and correlation_id:
        fields["fence"] = fence_name(seen.uid, seen.spec.run_hash, correlation_id)
    return fields


def run_fence(seen: Observation, run: Mapping[str, Any]) -> Fence | None:
    """The fence an ExactlyOnce run's submissions ship (see attempt_fields); its deadlines
    count from the run's first submission, so every submission of the run agrees on them."""
    deadline = run_deadline(seen, run.get("submittedAt"))
    if not run.get("fence") or deadline is None:
        return None
    return Fence.for_run(str(run["fence"]), fence_kind(seen), deadline, seen.timeout_seconds)


def fence_kind(seen: Observation) -> FenceKind:
    """A Secret keeps the output private where spec.output asks for it."""
    return "Secret" if seen.spec.output == "Secret" else "ConfigMap"
