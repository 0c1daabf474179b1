"""One error shape: what a Failure's classification says, and the one list of transient HTTP
statuses that ARM, Entra ID and the Kubernetes API share."""

from __future__ import annotations

import pytest

from controller.arm import ArmResponseError, ArmTransportError, CredentialError
from controller.arm.errors import SubmissionOutcomeUnknown
from controller.core import InputFailure, Reason
from controller.core.policy import PolicyRefusal
from controller.failure import Classification, Failure, is_transient_status
from controller.kube import ApiError


@pytest.mark.parametrize(
    ("classification", "retryable", "transient", "outcome_unknown"),
    [
        (Classification.FINAL, False, False, False),
        (Classification.RETRY, True, True, False),
        (Classification.RETRY_LATER, True, False, False),
        (Classification.OUTCOME_UNKNOWN, False, False, True),
    ],
)
def test_the_flags_callers_read_derive_from_the_classification(
    classification: Classification, retryable: bool, transient: bool, outcome_unknown: bool
) -> None:
    error = Failure("it failed", code="Broken", classification=classification)
    assert (error.retryable, error.transient, error.outcome_unknown) == (
        retryable,
        transient,
        outcome_unknown,
    )
    assert str(error) == "Broken: it failed"


def test_setting_a_flag_moves_the_classification() -> None:
    error = Failure("it failed")
    assert error.classification is Classification.FINAL
    error.retryable = True
    assert error.classification is Classification.RETRY
    error.outcome_unknown = True
    assert (error.classification, error.retryable) == (Classification.OUTCOME_UNKNOWN, False)
    error.outcome_unknown = False
    assert error.classification is Classification.FINAL


@pytest.mark.parametrize(
    ("status", "transient"),
    [(408, True), (429, True), (500, True), (502, True), (503, True), (504, True),
     (400, False), (401, False), (403, False), (404, False), (409, False), (413, False)],
)  # fmt: skip
def test_one_list_of_transient_statuses(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient
    # ... which the Kubernetes API's errors, Entra's and ARM's (but for ARM's 409) all follow.
    assert ApiError(status, "answer").transient is transient
    arm = ArmResponseError("answer", status_code=status, code=f"Http{status}")
    assert arm.retryable is (transient or status == 409)


def everything_that_can_stop_a_run() -> list[Failure]:
    return [
        ArmResponseError("no access", status_code=403, code="AuthorizationFailed"),
        ArmTransportError("connection reset"),
        SubmissionOutcomeUnknown("may have been accepted", correlation_id="c"),
        CredentialError("refused", code=CredentialError.AUTHENTICATION_FAILED),
        InputFailure(Reason.FILES_NOT_FOUND, "ConfigMap team/files not found", retryable=True),
        PolicyRefusal("namespace team: RunCommandPolicy p refuses"),
        ApiError(403, "forbidden", reason="Forbidden"),
    ]


@pytest.mark.parametrize("error", everything_that_can_stop_a_run(), ids=lambda e: e.code)
def test_everything_that_can_stop_a_run_is_one_shape(error: Failure) -> None:
    """A reason (code) and a message for a person, and a classification: data, not a type."""
    assert isinstance(error, Failure)
    assert error.code and error.code[0].isupper() and " " not in error.code
    assert error.message
    assert isinstance(error.classification, Classification)


def test_input_and_policy_failures_are_classified() -> None:
    missing = InputFailure(Reason.FILES_NOT_FOUND, "not yet", retryable=True)
    assert missing.classification is Classification.RETRY_LATER  # the run's backoff, not at once
    refusal = PolicyRefusal("refused")
    assert (refusal.code, refusal.classification) == (Reason.POLICY_DENIED, Classification.FINAL)
    assert isinstance(refusal, InputFailure)  # callers that catch input failures still do
