"""after_submit and after_poll: recording the command id, polling, and every way a run ends."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.arm import CommandHandle, CommandRunning
from controller.core import Action, Event, Observation, Settings, after_poll, after_submit, plan
from controller.core.decide import next_poll_delay

from .core_helpers import (
    CLUSTER,
    COMMAND_ID,
    LOCATION,
    NOW,
    SETTINGS,
    at,
    iso,
    make_spec,
    merge,
    result,
    running,
    submitting,
    types,
)

STILL_RUNNING = CommandRunning(
    started_at="2025-03-01T12:00:05Z", retry_after=None, provisioning_state="Running"
)
WHERE = f"command {COMMAND_ID} on {CLUSTER}"


# after_submit ---------------------------------------------------------------------------------


def test_after_submit_records_the_handle_then_polls_after_poll_initial() -> None:
    spec = make_spec()
    status = submitting(spec)
    handle = CommandHandle(COMMAND_ID, LOCATION, "corr-from-arm")

    decision = after_submit(Observation(spec, status, 1, at(2), SETTINGS), handle)

    message = f"command {COMMAND_ID} submitted to {CLUSTER}"
    assert decision.action is Action.POLL
    assert decision.delay == 1.0
    assert decision.events == (Event("Normal", "Submitted", message),)
    after = merge(status, decision.patch)
    assert after["state"] == "Running"
    assert after["reason"] == "Submitted"
    assert after["message"] == message
    assert after["commandId"] == COMMAND_ID
    assert after["location"] == LOCATION
    assert after["correlationId"] == "corr-from-arm"
    assert after["attempts"] == 1
    assert after["submittedAt"] == iso(NOW)
    assert types(after) == {"Ready": "False", "Reconciling": "True"}
    # Ready stayed False since Submitting: its transition time did not move.
    assert [c["lastTransitionTime"] for c in after["conditions"]] == [iso(NOW)] * 3


def test_after_submit_honours_the_202_retry_after() -> None:
    spec = make_spec()
    handle = CommandHandle(COMMAND_ID, LOCATION, "c", retry_after=7.0)
    decision = after_submit(Observation(spec, submitting(spec), 1, NOW, SETTINGS), handle)
    assert decision.delay == 7.0


@pytest.mark.parametrize(
    ("retry_after", "expected", "delay"),
    # A little after the expected end (18 s * 1.05 + 0.5 s): at the median half still run.
    [(None, 18.0, 19.4), (7.0, 18.0, 19.4), (25.0, 18.0, 25.0)],
)
def test_after_submit_first_poll_waits_for_the_expected_end(
    retry_after: float | None, expected: float, delay: float
) -> None:
    spec = make_spec()
    handle = CommandHandle(COMMAND_ID, LOCATION, "c", retry_after=retry_after)
    seen = Observation(spec, submitting(spec), 1, NOW, SETTINGS)
    decision = after_submit(seen, handle, expected)
    assert decision.delay == pytest.approx(delay)
    # A late run is then polled again from the initial interval, not after twice that wait.
    assert decision.backoff_from is not None
    assert next_poll_delay(decision.backoff_from, None, SETTINGS) == SETTINGS.poll_initial_seconds


@pytest.mark.parametrize(
    ("expected", "cadence", "delay"),
    # 5 % late, but never more than half a cadence past the expected end: a 300 s run that ends
    # on time is seen 2.5 s late while the budget has room, and 15 s late once it is full.
    [
        (45.0, 5.0, 47.5),
        (20.0, 5.0, 21.5),
        (300.0, 5.0, 302.5),
        (300.0, 30.0, 315.0),
        (300.0, None, 315.5),
    ],
)
def test_after_submit_first_poll_is_within_a_cadence_of_the_expected_end(
    expected: float, cadence: float | None, delay: float
) -> None:
    spec = make_spec()
    handle = CommandHandle(COMMAND_ID, LOCATION, "c")
    seen = Observation(spec, submitting(spec), 1, NOW, SETTINGS)
    assert after_submit(seen, handle, expected, cadence).delay == pytest.approx(delay)


@pytest.mark.parametrize(
    ("retry_after", "expected"), [(None, None), (None, 18.0), (7.0, None), (25.0, 18.0)]
)
def test_the_first_poll_comes_no_later_than_the_deadline(
    retry_after: float | None, expected: float | None
) -> None:
    """timeoutSeconds: 1 with a 5 s command: polled at the deadline, still running there, so
    DeadlineExceeded (issue 24), not Succeeded at a first poll long after it."""
    spec = make_spec(timeoutSeconds=1)
    handle = CommandHandle(COMMAND_ID, LOCATION, "c", retry_after=retry_after)
    status = submitting(spec)  # submitted at NOW
    decision = after_submit(Observation(spec, status, 1, NOW, SETTINGS), handle, expected)
    assert decision.delay == 1.0

    at_deadline = Observation(spec, merge(status, decision.patch), 1, at(1), SETTINGS)
    ended = after_poll(at_deadline, STILL_RUNNING, decision.delay)
    assert ended.patch["reason"] == "DeadlineExceeded"


def test_polls_back_off_no_further_than_the_deadline() -> None:
    spec = make_spec(timeoutSeconds=60)
    seen = Observation(spec, running(spec), 1, at(50), SETTINGS)
    assert after_poll(seen, STILL_RUNNING, 30.0).delay == 10.0  # not 60 s: the deadline is at 60


def test_after_submit_clears_a_planned_retry() -> None:
    spec = make_spec()
    status = {**submitting(spec), "nextAttemptAt": iso(at(5))}
    handle = CommandHandle(COMMAND_ID, LOCATION, "c")
    assert "nextAttemptAt" not in merge(
        status, after_submit(Observation(spec, status, 1, NOW, SETTINGS), handle).patch
    )


# after_poll: still running ----------------------------------------------------------------


def test_poll_backoff_doubles_from_one_second_to_the_ceiling() -> None:
    spec = make_spec()
    status = running(spec)
    quiet = CommandRunning(started_at=None, retry_after=None, provisioning_state=None)
    delays = []
    previous = 0.0
    for _ in range(8):
        decision = after_poll(Observation(spec, status, 1, at(1), SETTINGS), quiet, previous)
        assert decision.action is Action.POLL
        delays.append(decision.delay)
        previous = decision.delay

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_poll_backoff_stops_at_the_cadence_the_budget_allows() -> None:
    spec = make_spec()
    status = running(spec)
    quiet = CommandRunning(started_at=None, retry_after=None, provisioning_state=None)
    delays, previous = [], 0.0
    # The cadence (core.pollrate) is re-read at every poll: 5 s while there is room, then 12 s.
    for cadence in (5.0, 5.0, 5.0, 5.0, 5.0, 12.0, 12.0, 5.0):
        seen = Observation(spec, status, 1, at(1), SETTINGS)
        previous = after_poll(seen, quiet, previous, cadence).delay
        delays.append(previous)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 10.0, 12.0, 5.0]


@pytest.mark.parametrize(("retry_after", "expected"), [(12.0, 12.0), (45.0, 45.0), (0.0, 0.0)])
def test_poll_retry_after_wins_over_the_cadence(retry_after: float, expected: float) -> None:
    spec = make_spec()
    answer = replace(STILL_RUNNING, retry_after=retry_after)
    seen = Observation(spec, running(spec), 1, at(1), SETTINGS)
    assert after_poll(seen, answer, 16.0, 5.0).delay == expected


@pytest.mark.parametrize(("retry_after", "expected"), [(12.0, 12.0), (45.0, 45.0), (0.0, 0.0)])
def test_poll_honours_retry_after(retry_after: float, expected: float) -> None:
    spec = make_spec()
    answer = replace(STILL_RUNNING, retry_after=retry_after)
    decision = after_poll(Observation(spec, running(spec), 1, at(1), SETTINGS), answer, 16.0)
    assert (decision.action, decision.delay) == (Action.POLL, expected)


def test_poll_records_progress_only_when_it_changes() -> None:
    spec = make_spec()
    status = running(spec)

    first = after_poll(Observation(spec, status, 1, at(5), SETTINGS), STILL_RUNNING, 1.0)
    status = merge(status, first.patch)
    second = after_poll(Observation(spec, status, 1, at(7), SETTINGS), STILL_RUNNING, 2.0)

    assert status["state"] == "Running"
    assert status["reason"] == "Running"
    assert status["message"] == f"command {COMMAND_ID} is running on {CLUSTER}"
    assert status["provisioningState"] == "Running"
    assert status["startedAt"] == "2025-03-01T12:00:05Z"
    assert second.patch == {}
    assert second.events == ()


def test_poll_past_the_timeout_fails_with_deadline_exceeded() -> None:
    spec = make_spec(timeoutSeconds=60)
    status = merge(running(spec), {"startedAt": "2025-03-01T12:00:05Z"})

    before = after_poll(Observation(spec, status, 1, at(59), SETTINGS), STILL_RUNNING, 1.0)
    decision = after_poll(Observation(spec, status, 1, at(60), SETTINGS), STILL_RUNNING, 1.0)

    assert before.action is Action.POLL
    message = (
        f"no result after 60s (command {COMMAND_ID}); stopped waiting. "
        "ARM has no cancel API, so the command itself may still run; raise "
        "spec.timeoutSeconds to resume watching it"
    )
    assert decision.action is Action.IDLE
    assert decision.events == (Event("Warning", "Failed", message),)
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == (
        "Failed",
        "DeadlineExceeded",
        message,
    )
    assert after["finishedAt"] == iso(at(60))
    assert after["duration"] == "55s"
    assert types(after) == {"Ready": "False", "Stalled": "True"}


def test_without_timeout_polling_is_bounded_by_the_default() -> None:
    spec = make_spec()
    status = running(spec)
    limit = SETTINGS.default_timeout_seconds

    assert after_poll(
        Observation(spec, status, 1, at(limit - 1), SETTINGS), STILL_RUNNING, 1.0
    ).action is (Action.POLL)
    decision = after_poll(Observation(spec, status, 1, at(limit), SETTINGS), STILL_RUNNING, 1.0)
    assert decision.patch["reason"] == "DeadlineExceeded"
    assert decision.patch["message"].startswith(f"no result after {limit}s ")


# after_poll: results ----------------------------------------------------------------------


def test_exit_zero_succeeds_and_appends_history() -> None:
    spec = make_spec(runToken="r1")
    status = running(spec)

    decision = after_poll(Observation(spec, status, 1, at(100), SETTINGS), result(0), 4.0)

    message = f"{WHERE} exited 0"
    assert decision.action is Action.IDLE
    assert decision.events == (Event("Normal", "Succeeded", message),)
    after = merge(status, decision.patch)
    assert {
        key: after[key]
        for key in (
            "state",
            "reason",
            "message",
            "exitCode",
            "provisioningState",
            "startedAt",
            "finishedAt",
            "duration",
            "logs",
            "logsBytes",
            "logsTruncated",
        )
    } == {
        "state": "Succeeded",
        "reason": "Succeeded",
        "message": message,
        "exitCode": 0,
        "provisioningState": "Succeeded",
        "startedAt": "2025-03-01T12:00:05Z",
        "finishedAt": "2025-03-01T12:01:35Z",
        "duration": "1m30s",
        "logs": "namespace/demo created\n",
        "logsBytes": 23,
        "logsTruncated": False,
    }
    assert "nextAttemptAt" not in after
    assert types(after) == {"Ready": "True"}  # no Reconciling, no Stalled
    assert after["history"] == [
        {
            "generation": 1,
            "runToken": "r1",
            "commandId": COMMAND_ID,
            "state": "Succeeded",
            "exitCode": 0,
            "reason": "Succeeded",
            "startedAt": "2025-03-01T12:00:05Z",
            "finishedAt": "2025-03-01T12:01:35Z",
        }
    ]


def test_non_zero_exit_fails_stalled_with_a_warning() -> None:
    spec = make_spec()
    status = running(spec)

    decision = after_poll(
        Observation(spec, status, 1, at(100), SETTINGS), result(3, logs="boom\n"), 4.0
    )

    message = f"{WHERE} exited 3"
    assert decision.action is Action.IDLE
    assert decision.events == (Event("Warning", "Failed", message),)
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == (
        "Failed",
        "CommandFailed",
        message,
    )
    assert (after["exitCode"], after["provisioningState"], after["logs"]) == (
        3,
        "Succeeded",
        "boom\n",
    )
    assert types(after) == {"Ready": "False", "Stalled": "True"}
    assert after["history"][-1]["state"] == "Failed"
    assert after["history"][-1]["exitCode"] == 3


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("Failed", "ImagePullBackOff", "ImagePullBackOff"),
        ("failed", None, "ProvisioningFailed"),
        ("Canceled", "Canceled", "Canceled"),
    ],
)
def test_platform_failure_fails_with_arms_reason(
    state: str, reason: str | None, expected: str
) -> None:
    spec = make_spec()
    status = running(spec)
    answer = result(None, state=state, reason=reason, logs="")

    decision = after_poll(Observation(spec, status, 1, at(100), SETTINGS), answer, 4.0)

    message = (
        f"{WHERE}: ARM reports provisioningState Failed ({expected}); "
        "the command did not run to completion"
    )
    after = merge(status, decision.patch)
    assert (after["state"], after["reason"], after["message"]) == ("Failed", expected, message)
    assert after["provisioningState"] == state
    assert "exitCode" not in after
    assert types(after) == {"Ready": "False", "Stalled": "True"}
    assert decision.events == (Event("Warning", "Failed", message),)


def test_result_without_timestamps_falls_back_to_recorded_start_and_now() -> None:
    spec = make_spec()
    status = merge(running(spec), {"startedAt": "2025-03-01T11:00:00Z"})
    answer = result(0, started_at=None, finished_at=None)

    after = merge(
        status, after_poll(Observation(spec, status, 1, at(3723), SETTINGS), answer, 1.0).patch
    )

    assert after["startedAt"] == "2025-03-01T11:00:00Z"
    assert after["finishedAt"] == iso(at(3723))
    assert after["duration"] == "2h2m3s"


def test_naive_arm_timestamps_are_read_as_utc() -> None:
    spec = make_spec()
    status = running(spec)
    answer = result(0, started_at="2025-03-01T12:00:00", finished_at=None)

    decision = after_poll(Observation(spec, status, 1, at(42), SETTINGS), answer, 1.0)

    assert decision.patch["duration"] == "42s"


# logs -------------------------------------------------------------------------------------


def _logs_after(logs: str, settings: Settings) -> dict[str, object]:
    spec = make_spec()
    status = running(spec)
    patch = after_poll(
        Observation(spec, status, 1, at(100), settings), result(0, logs=logs), 1.0
    ).patch
    return {key: patch[key] for key in ("logs", "logsBytes", "logsTruncated")}


def test_short_logs_are_kept_whole() -> None:
    assert _logs_after("x" * 16, Settings(max_log_bytes=16)) == {
        "logs": "x" * 16,
        "logsBytes": 16,
        "logsTruncated": False,
    }


def test_long_logs_keep_the_tail() -> None:
    logs = "".join(f"line {i}\n" for i in range(1000))
    kept = _logs_after(logs, Settings(max_log_bytes=20))
    assert kept == {"logs": logs[-20:], "logsBytes": len(logs), "logsTruncated": True}
    assert kept["logs"] == "7\nline 998\nline 999\n"


@pytest.mark.parametrize(
    ("logs", "limit", "tail"),
    [
        ("é" * 6, 9, "é" * 4),  # 2-byte chars, cut inside one
        ("😀" * 3, 10, "😀" * 2),  # 4-byte chars, cut inside one
        ("ab€", 4, "b€"),  # cut exactly at a character boundary
    ],
)
def test_log_tail_never_splits_a_multibyte_character(logs: str, limit: int, tail: str) -> None:
    kept = _logs_after(logs, Settings(max_log_bytes=limit))
    assert kept == {"logs": tail, "logsBytes": len(logs.encode()), "logsTruncated": True}
    assert len(str(kept["logs"]).encode()) <= limit


def test_logs_at_arms_512_kib_cut_are_marked_truncated() -> None:
    big = Settings(max_log_bytes=1024 * 1024)
    at_limit = _logs_after("a" * 524288, big)
    below = _logs_after("a" * 524287, big)

    assert (at_limit["logsBytes"], at_limit["logsTruncated"]) == (524288, True)
    assert at_limit["logs"] == "a" * 524288
    assert (below["logsBytes"], below["logsTruncated"]) == (524287, False)


# history and TTL --------------------------------------------------------------------------


def test_history_keeps_the_last_history_limit_runs() -> None:
    settings = Settings(history_limit=3)
    spec = make_spec()
    old = [{"generation": 1, "runToken": str(i), "state": "Succeeded"} for i in range(5)]
    status = {**running(spec), "history": old}

    history = after_poll(Observation(spec, status, 1, at(100), settings), result(0), 1.0).patch[
        "history"
    ]

    assert len(history) == 3
    assert history[:2] == old[-2:]
    assert history[2]["commandId"] == COMMAND_ID


def test_a_run_token_bump_adds_a_second_history_entry() -> None:
    first_spec = make_spec(runToken="1")
    status = running(first_spec)
    status = merge(
        status,
        after_poll(Observation(first_spec, status, 1, at(100), SETTINGS), result(0), 1).patch,
    )

    second_spec = make_spec(runToken="2")
    status = running(second_spec, generation=2, now=at(200), before=status)
    status = merge(
        status,
        after_poll(Observation(second_spec, status, 2, at(300), SETTINGS), result(3), 1).patch,
    )

    assert [(h["generation"], h["runToken"], h["state"]) for h in status["history"]] == [
        (1, "1", "Succeeded"),
        (2, "2", "Failed"),
    ]
    assert status["exitCode"] == 3


@pytest.mark.parametrize("ttl", [0, 300])
def test_ttl_after_finished_deletes_after_that_delay(ttl: int) -> None:
    spec = make_spec(ttlSecondsAfterFinished=ttl)
    decision = after_poll(Observation(spec, running(spec), 1, at(100), SETTINGS), result(0), 1.0)
    assert (decision.action, decision.delay) == (Action.DELETE, float(ttl))
    assert decision.patch["state"] == "Succeeded"


def test_full_chain_plan_submit_poll_matches_a_replan_afterwards() -> None:
    spec = make_spec()
    status: dict[str, object] = {}
    decision = plan(Observation(spec, status, 1, NOW, SETTINGS))
    status = merge(status, decision.patch)
    handle = CommandHandle(COMMAND_ID, LOCATION, str(decision.correlation_id))
    decision = after_submit(Observation(spec, status, 1, at(1), SETTINGS), handle)
    status = merge(status, decision.patch)
    decision = after_poll(
        Observation(spec, status, 1, at(2), SETTINGS), STILL_RUNNING, decision.delay
    )
    status = merge(status, decision.patch)
    assert (
        plan(Observation(spec, status, 1, at(3), SETTINGS)).action is Action.POLL
    )  # a restart resumes
    decision = after_poll(Observation(spec, status, 1, at(95), SETTINGS), result(0), decision.delay)
    status = merge(status, decision.patch)

    assert status["state"] == "Succeeded"
    assert status["correlationId"] == handle.correlation_id
    assert plan(Observation(spec, status, 1, at(4000), SETTINGS)).action is Action.IDLE
