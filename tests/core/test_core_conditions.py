"""conditions_for: kstatus-readable conditions, Flux's convention, stable transition times."""

from __future__ import annotations

import pytest

from controller.core.conditions import conditions_for

T0 = "2025-03-01T12:00:00Z"
T1 = "2025-03-01T12:05:00Z"


def test_in_progress_state_is_ready_false_and_reconciling_true() -> None:
    assert conditions_for("Submitting", "Submitting", "submitting", 4, T0) == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Submitting",
            "message": "submitting",
            "observedGeneration": 4,
            "lastTransitionTime": T0,
        },
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "Submitting",
            "message": "submitting",
            "observedGeneration": 4,
            "lastTransitionTime": T0,
        },
        {
            "type": "Finished",
            "status": "False",
            "reason": "Submitting",
            "message": "Submitting: submitting",
            "observedGeneration": 4,
            "lastTransitionTime": T0,
        },
    ]


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("Succeeded", "Succeeded", {"Ready": "True"}),
        ("Failed", "CommandFailed", {"Ready": "False", "Stalled": "True"}),
        ("Unknown", "SubmissionOutcomeUnknown", {"Ready": "False", "Stalled": "True"}),
        ("Pending", "Suspended", {"Ready": "False"}),
        ("Pending", "Waiting", {"Ready": "False", "Reconciling": "True"}),
        ("Running", "Running", {"Ready": "False", "Reconciling": "True"}),
    ],
)
def test_reconciling_and_stalled_are_present_only_while_true(
    state: str, reason: str, expected: dict[str, str]
) -> None:
    conditions = conditions_for(state, reason, "m", 1, T0)
    finished = "True" if state in ("Succeeded", "Failed", "Unknown") else "False"
    assert {c["type"]: c["status"] for c in conditions} == {**expected, "Finished": finished}
    assert conditions[0]["type"] == "Ready"


@pytest.mark.parametrize(
    ("state", "reason", "status"),
    [
        ("Succeeded", "Succeeded", "True"),
        ("Failed", "CommandFailed", "True"),
        ("Failed", "ResourceNotFound", "True"),
        ("Failed", "DeadlineExceeded", "True"),
        ("Unknown", "SubmissionOutcomeUnknown", "True"),
        ("Pending", "NextRunPending", "False"),
        ("Pending", "Suspended", "False"),
        ("Submitting", "Submitting", "False"),
        ("Running", "Running", "False"),
    ],
)
def test_finished_is_always_present_and_its_reason_is_the_state(
    state: str, reason: str, status: str
) -> None:
    """Finished ends `kubectl wait` on either outcome; its reason says which one, its message
    keeps the detailed reason."""
    (finished,) = [c for c in conditions_for(state, reason, "m", 7, T0) if c["type"] == "Finished"]
    assert finished["status"] == status
    assert finished["reason"] == state
    assert finished["message"] == f"{reason}: m"
    assert finished["observedGeneration"] == 7


def test_last_transition_time_survives_an_unchanged_status() -> None:
    previous = conditions_for("Submitting", "Submitting", "submitting", 1, T0)
    now = conditions_for("Running", "Running", "running", 2, T1, previous)

    assert [(c["status"], c["reason"], c["observedGeneration"]) for c in now] == [
        ("False", "Running", 2),
        ("True", "Running", 2),
        ("False", "Running", 2),
    ]
    assert [c["lastTransitionTime"] for c in now] == [T0, T0, T0]


def test_last_transition_time_moves_when_the_status_flips() -> None:
    previous = conditions_for("Running", "Running", "running", 1, T0)
    now = conditions_for("Succeeded", "Succeeded", "exited 0", 1, T1, previous)

    assert now == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Succeeded",
            "message": "exited 0",
            "observedGeneration": 1,
            "lastTransitionTime": T1,
        },
        {
            "type": "Finished",
            "status": "True",
            "reason": "Succeeded",
            "message": "Succeeded: exited 0",
            "observedGeneration": 1,
            "lastTransitionTime": T1,
        },
    ]


def test_a_condition_that_appears_gets_now_and_a_vanished_one_is_not_carried() -> None:
    previous = conditions_for("Running", "Running", "running", 1, T0)
    now = conditions_for("Failed", "CommandFailed", "exited 3", 1, T1, previous)

    assert [(c["type"], c["lastTransitionTime"]) for c in now] == [
        ("Ready", T0),  # still False
        ("Stalled", T1),  # new
        ("Finished", T1),  # flipped to True
    ]


def test_a_previous_condition_without_transition_time_gets_now() -> None:
    previous = [{"type": "Ready", "status": "False"}]
    assert conditions_for("Running", "Running", "r", 1, T1, previous)[0]["lastTransitionTime"] == T1
