"""ARM error envelope parsing and retryable/fatal classification."""

from __future__ import annotations

import httpx
import pytest

from controller.arm import (
    ArmResponseError,
    ContextTooLargeError,
    ErrorDetail,
    InvalidContextPathError,
    RequestTooLargeError,
    ResourceNotFoundError,
    ThrottledError,
)
from controller.arm.errors import is_retryable


def parse(response: httpx.Response, correlation_id: str | None = None) -> ArmResponseError:
    return ArmResponseError.from_response(response, correlation_id=correlation_id)


def test_envelope_with_target_and_nested_details() -> None:
    response = httpx.Response(
        400,
        json={
            "error": {
                "code": "InvalidParameter",
                "message": "The value of parameter command is invalid.",
                "target": "command",
                "details": [
                    {
                        "code": "Outer",
                        "message": "outer",
                        "details": [{"code": "Inner", "message": "inner", "target": "t"}],
                    },
                    "not an object",
                ],
                "additionalInfo": [{"type": "PolicyViolation", "info": {}}],
            }
        },
        headers={"x-ms-request-id": "req-1", "x-ms-correlation-request-id": "corr-arm"},
    )
    error = parse(response, correlation_id="corr-mine")

    assert type(error) is ArmResponseError
    assert (error.status_code, error.code, error.target) == (400, "InvalidParameter", "command")
    assert error.message == "The value of parameter command is invalid."
    assert error.details == (
        ErrorDetail("Outer", "outer", None, (ErrorDetail("Inner", "inner", "t"),)),
    )
    assert error.request_id == "req-1"
    assert error.correlation_id == "corr-arm"  # ARM's echo wins over the caller's
    assert str(error) == "InvalidParameter (HTTP 400): The value of parameter command is invalid."


def test_bare_error_object_without_wrapper() -> None:
    error = parse(httpx.Response(409, json={"code": "Conflict", "message": "busy"}))
    assert (error.code, error.message, error.retryable) == ("Conflict", "busy", True)


def test_non_json_body_uses_http_status_code_and_truncated_text() -> None:
    error = parse(httpx.Response(502, text="<html>" + "x" * 5000 + "</html>"), "corr-1")

    assert error.code == "Http502"
    assert error.message.startswith("<html>xxx")
    assert len(error.message) <= 512
    assert error.correlation_id == "corr-1"
    assert error.retryable


def test_empty_body_names_the_status() -> None:
    error = parse(httpx.Response(404))
    assert isinstance(error, ResourceNotFoundError)
    assert error.code == "Http404"
    assert error.message == "HTTP 404 Not Found, empty body"


def test_json_without_error_fields_is_treated_as_text() -> None:
    error = parse(httpx.Response(500, json={"unexpected": 1}))
    assert error.code == "Http500"
    assert error.message == '{"unexpected":1}'


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, ThrottledError), (404, ResourceNotFoundError), (413, RequestTooLargeError)],
)
def test_status_specific_subclasses(status: int, error_class: type[ArmResponseError]) -> None:
    error = parse(httpx.Response(status, json={"error": {"code": "X", "message": "m"}}))
    assert type(error) is error_class


def test_retry_after_is_parsed_onto_the_error() -> None:
    error = parse(httpx.Response(429, headers={"Retry-After": "17"}))
    assert error.retry_after == 17.0
    assert error.retryable


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "TooManyRequests", True),
        (408, None, True),
        (409, "Conflict", True),
        (500, "InternalServerError", True),
        (503, None, True),
        (400, "KubernetesOperationError", True),
        (400, "KubernetesPerformanceError", True),
        (400, "kubernetesperformanceerror", True),  # codes compare case-insensitively
        (400, "BadRequest", False),
        (400, "InvalidParameter", False),
        (400, "MissingAADClusterToken", False),
        (403, "RequestDisallowedByPolicy", False),
        (403, "AuthorizationFailed", True),  # a new role assignment takes minutes to apply
        (403, "LinkedAuthorizationFailed", True),
        (401, "InvalidAuthenticationToken", False),
        (401, None, False),
        (403, None, False),
        (404, "ResourceNotFound", False),
        (404, None, False),
        (413, None, False),
        (400, "SomethingNew", False),
        (500, "SomethingNew", True),
    ],
)
def test_classification(status: int, code: str | None, retryable: bool) -> None:
    assert is_retryable(status, code) is retryable


def test_local_errors_have_codes_and_clear_messages() -> None:
    too_large = ContextTooLargeError(5000, 4096)
    assert too_large.code == "ContextTooLarge"
    assert too_large.message == "context is 5000 bytes after zip+base64, limit is 4096"
    assert not too_large.retryable
    bad_path = InvalidContextPathError("context file name '../x' contains '..'")
    assert isinstance(bad_path, ValueError)
    assert bad_path.code == "InvalidContextPath"
