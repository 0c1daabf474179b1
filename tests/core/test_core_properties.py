"""Property: for any spec the CRD accepts, any status the operator could have written, and any
sequence of ARM answers, edits, restarts and clock jumps, the core never raises and never
decides a second POST for a run whose first POST ARM may have accepted (AtMostOnce), except,
under ExactlyOnce, the same run again behind the same fence, so the cluster runs it once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.arm import CommandHandle, CommandResult, CommandRunning
from controller.core import (
    Action,
    Decision,
    Observation,
    RunSpec,
    after_poll,
    after_poll_error,
    after_prepare_error,
    after_submit,
    after_submit_error,
    plan,
)
from controller.core.spec import MAX_RETRIES, MAX_TIMEOUT_SECONDS, MAX_TTL_SECONDS
from tests.helpers import examples

from .core_helpers import LOCATION, NOW, SETTINGS, merge, spec_dict


@dataclass
class Failure:
    code: str
    message: str
    retryable: bool
    retry_after: float | None
    outcome_unknown: bool
    accepted: bool


failures = st.builds(
    Failure,
    code=st.sampled_from(["TooManyRequests", "ResourceNotFound", "AuthenticationFailed", "X"]),
    message=st.text(max_size=20),
    retryable=st.booleans(),
    retry_after=st.none() | st.floats(0, 10**6, allow_nan=False),
    outcome_unknown=st.booleans(),
    accepted=st.booleans(),
)
answers = st.one_of(
    st.builds(
        CommandRunning,
        started_at=st.none() | st.just("2025-03-01T12:00:05Z"),
        retry_after=st.none() | st.floats(0, 10**6, allow_nan=False),
        provisioning_state=st.none() | st.sampled_from(["Running", "running", "Queued"]),
    ),
    st.builds(
        CommandResult,
        provisioning_state=st.sampled_from(["Succeeded", "Failed", "succeeded", "Canceled"]),
        exit_code=st.none() | st.integers(-(2**31), 2**31 - 1),
        started_at=st.none() | st.sampled_from(["2025-03-01T12:00:05Z", "garbage", ""]),
        finished_at=st.none() | st.sampled_from(["2025-03-01T12:01:05", "9999-12-31T23:59:59Z"]),
        logs=st.text(max_size=50) | st.just("x" * (512 * 1024)),
        reason=st.none() | st.just("ImagePullBackoff"),
    ),
)
# Fields the CRD accepts, up to its maxima (and past them, as an older CRD might have stored).
specs = st.fixed_dictionaries(
    {},
    optional={
        "timeoutSeconds": st.integers(1, MAX_TIMEOUT_SECONDS) | st.integers(1, 10**18),
        "retries": st.integers(0, MAX_RETRIES),
        "ttlSecondsAfterFinished": st.integers(0, MAX_TTL_SECONDS) | st.integers(0, 10**18),
        "suspend": st.booleans(),
        "submitPolicy": st.sampled_from(["AtMostOnce", "ExactlyOnce"]),
        "runToken": st.sampled_from(["1", "2"]),
        "command": st.sampled_from(["true", "sleep 40"]),
    },
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("prepare-error"), failures),
        st.tuples(st.just("accepted"), st.none()),
        st.tuples(st.just("submit-error"), failures),
        st.tuples(st.just("poll"), answers),
        st.tuples(st.just("poll-error"), failures),
        st.tuples(st.just("edit"), specs),
        st.tuples(st.just("restart"), st.none()),
        st.tuples(st.just("wait"), st.floats(0, 10**7, allow_nan=False)),
    ),
    max_size=25,
)


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=specs, script=steps)
def test_the_core_never_raises_and_never_posts_a_run_twice(
    first: dict[str, Any], script: list[tuple[str, Any]]
) -> None:
    raw = spec_dict(**first)
    status: dict[str, Any] = {}
    generation, now, holder = 1, NOW, SETTINGS
    pending: Decision | None = None  # a SUBMIT decided, not yet claimed
    in_doubt = False  # a POST ARM may have accepted, whose run has not ended yet
    doubt_fence = None  # the fence that POST carried (ExactlyOnce), if any
    commands = 0

    def seen() -> Observation:
        return Observation(RunSpec.parse(raw), status, generation, now, holder)

    def perform(decision: Decision) -> None:
        nonlocal status, pending, in_doubt, doubt_fence
        assert decision.delay >= 0
        if decision.action is Action.SUBMIT:
            pending = decision
        else:
            status = merge(status, decision.patch)
        if decision.finished:
            in_doubt = False  # the run ended, in history: a next run may start

    for step, value in script:
        if pending is None:  # the operator looks at the object after every event and timer
            perform(plan(seen()))
        decision: Decision | None = None
        if step == "prepare-error" and pending is not None:
            decision, pending = after_prepare_error(seen(), value), None
        elif step in ("accepted", "submit-error") and pending is not None:
            # Neither a retry of that run nor a new run may be sent while it may be running,
            # but the same run behind the same fence (name and deadlines), which finds it.
            if in_doubt:
                assert doubt_fence is not None and pending.fence == doubt_fence, (
                    "a POST while an earlier one may have been accepted"
                )
            status = merge(status, pending.patch)  # the claim, then the POST
            if not in_doubt:
                doubt_fence = pending.fence
            pending = None
            in_doubt = in_doubt or step == "accepted" or value.outcome_unknown
            if step == "accepted":
                commands += 1
                handle = CommandHandle(f"c{commands}", LOCATION, str(status["correlationId"]))
                decision = after_submit(seen(), handle)
            else:
                decision = after_submit_error(seen(), value)
        elif step == "poll" and seen().in_flight:
            decision = after_poll(seen(), value, 1.0)
        elif step == "poll-error" and seen().in_flight:
            decision = after_poll_error(seen(), value, 1.0)
        elif step == "edit":
            raw, generation, pending = spec_dict(**value), generation + 1, None
        elif step == "restart":
            holder, pending = replace(holder, holder=f"{holder.holder}'"), None
        elif step == "wait":
            now += timedelta(seconds=value)
        if decision is not None:
            perform(decision)
