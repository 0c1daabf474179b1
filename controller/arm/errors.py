"""The exception tree. Everything this package raises on purpose is an :class:`ArmError`.

Each exception is a :class:`controller.failure.Failure`: a short PascalCase ``code``, a human
``message`` (both fit a Kubernetes condition's reason/message), a ``classification`` (final,
retry, retry later, outcome unknown; ``retryable`` and ``outcome_unknown`` derive from it) and,
when known, ``retry_after`` (seconds) and ``correlation_id``. ARM's own codes are classified by
one table (``classification.py``), each entry with its reason.

::

    ArmError
    ├── ArmResponseError            ARM answered with an error status
    │   ├── ThrottledError          429
    │   ├── ResourceNotFoundError   404
    │   └── RequestTooLargeError    413
    ├── SubmissionOutcomeUnknown    a POST may have been accepted: never resend it blindly
    │   └── MalformedLocationError  202 accepted, but its Location cannot be polled
    ├── ArmTransportError           network failure after retries (or a POST never sent)
    ├── CredentialError             no credential or no token; ``code`` says which:
    │                                 InvalidCredentials, AuthenticationFailed (fatal),
    │                                 TokenEndpointUnreachable, CredentialUnavailable,
    │                                 TokenRequestFailed (retryable)
    ├── ContextTooLargeError        context over the size limit, nothing sent
    └── InvalidContextError         a ready-made context is not base64 of a readable zip
        └── InvalidContextPathError unsafe, duplicate or conflicting file name in a context

The context errors are also ValueErrors: they judge input, and nothing was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from controller.failure import Classification, Failure
from controller.vocabulary import Reason

from .classification import classify, explain, is_retryable
from .retry import parse_retry_after

__all__ = [
    "ArmError",
    "ArmResponseError",
    "ArmTransportError",
    "ContextTooLargeError",
    "CredentialError",
    "ErrorDetail",
    "InvalidContextError",
    "InvalidContextPathError",
    "MalformedLocationError",
    "RequestTooLargeError",
    "ResourceNotFoundError",
    "SubmissionOutcomeUnknown",
    "ThrottledError",
    "classify",
    "is_retryable",
]

_MAX_MESSAGE_CHARS = 1024
_MAX_BODY_EXCERPT_CHARS = 512


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ArmError(Failure):
    """Base of every error this package raises on purpose: a :class:`~controller.failure.Failure`
    with ARM's correlation id."""

    default_code: ClassVar[str] = "ArmError"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        correlation_id: str | None = None,
        retry_after: float | None = None,
        classification: Classification | None = None,
    ) -> None:
        if classification is None and retryable is not None:
            classification = Classification.RETRY if retryable else Classification.FINAL
        super().__init__(message, code=code, classification=classification, retry_after=retry_after)
        self.correlation_id = correlation_id


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of an ARM error's ``details`` list."""

    code: str | None
    message: str | None
    target: str | None = None
    details: tuple[ErrorDetail, ...] = field(default=())

    @classmethod
    def from_json(cls, value: object) -> ErrorDetail | None:
        if not isinstance(value, dict):
            return None
        return cls(
            code=_optional_str(value.get("code")),
            message=_optional_str(value.get("message")),
            target=_optional_str(value.get("target")),
            details=_parse_details(value.get("details")),
        )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_details(value: object) -> tuple[ErrorDetail, ...]:
    if not isinstance(value, list):
        return ()
    parsed = (ErrorDetail.from_json(item) for item in value)
    return tuple(detail for detail in parsed if detail is not None)


class ArmResponseError(ArmError):
    """ARM answered with an error status. ``code`` is ARM's code, or ``Http<status>``."""

    default_code = "ArmResponseError"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        target: str | None = None,
        details: tuple[ErrorDetail, ...] = (),
        request_id: str | None = None,
        correlation_id: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(
            explain(status_code, code, message, target),
            code=code,
            retryable=retryable,
            classification=None if retryable is not None else classify(status_code, code, target),
            correlation_id=correlation_id,
            retry_after=retry_after,
        )
        self.status_code = status_code
        self.target = target
        self.details = details
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code} (HTTP {self.status_code}): {self.message}"

    @staticmethod
    def from_response(
        response: httpx.Response, *, correlation_id: str | None = None
    ) -> ArmResponseError:
        """Parse ARM's error envelope (or a non-JSON body) into the matching subclass."""
        status = response.status_code
        code, message, target, details = _parse_envelope(response)
        error_class = _ERROR_CLASS_BY_STATUS.get(status, ArmResponseError)
        return error_class(
            message,
            status_code=status,
            code=code,
            target=target,
            details=details,
            request_id=response.headers.get("x-ms-request-id"),
            correlation_id=response.headers.get("x-ms-correlation-request-id") or correlation_id,
            retry_after=parse_retry_after(response.headers),
        )


class ThrottledError(ArmResponseError):
    """429: ARM's token bucket for this subscription is empty."""


class ResourceNotFoundError(ArmResponseError):
    """404: the cluster (or, on a poll, the command result) does not exist."""


class RequestTooLargeError(ArmResponseError):
    """413: the request body, in practice the context, is too large for ARM."""


_ERROR_CLASS_BY_STATUS: dict[int, type[ArmResponseError]] = {
    404: ResourceNotFoundError,
    413: RequestTooLargeError,
    429: ThrottledError,
}


def _parse_envelope(
    response: httpx.Response,
) -> tuple[str, str, str | None, tuple[ErrorDetail, ...]]:
    status = response.status_code
    fallback_code = f"Http{status}"
    text = response.text.strip()
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = None
    # ARM wraps errors in {"error": {...}}; a few services answer with the bare object.
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict) or not (
        isinstance(error.get("code"), str) or isinstance(error.get("message"), str)
    ):
        if text:
            return fallback_code, _truncate(text, _MAX_BODY_EXCERPT_CHARS), None, ()
        return fallback_code, f"HTTP {status} {response.reason_phrase}, empty body", None, ()
    code = _optional_str(error.get("code")) or fallback_code
    message = _optional_str(error.get("message")) or f"HTTP {status} {response.reason_phrase}"
    return (
        code,
        _truncate(message, _MAX_MESSAGE_CHARS),
        _optional_str(error.get("target")),
        _parse_details(error.get("details")),
    )


class SubmissionOutcomeUnknown(ArmError):
    """A runCommand POST may or may not have been accepted.

    Raised on a timeout after the request was sent, a connection dropped mid-response, any
    5xx, and answers saying the command pod was being started. Resending could run the command
    twice, so this is not ``retryable``: the caller must decide (for example ask the user).
    ``response_error`` holds ARM's error when there was a response.
    """

    default_code: ClassVar[str] = Reason.SUBMISSION_OUTCOME_UNKNOWN
    default_classification = Classification.OUTCOME_UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        correlation_id: str,
        request_id: str | None = None,
        response_error: ArmResponseError | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code, correlation_id=correlation_id)
        self.request_id = request_id
        self.response_error = response_error


class MalformedLocationError(SubmissionOutcomeUnknown):
    """ARM accepted the command (202) but its Location cannot be polled.

    A subclass of :class:`SubmissionOutcomeUnknown` on purpose: the command was accepted and
    may be running, so it must not be resubmitted, and its result cannot be fetched.
    """

    default_code = "MalformedLocation"
    accepted = True

    def __init__(
        self,
        message: str,
        *,
        correlation_id: str,
        request_id: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, correlation_id=correlation_id, request_id=request_id)
        self.location = location


class ArmTransportError(ArmError):
    """The network failed (connect, timeout, dropped connection) after all retries."""

    default_code = "ArmTransportError"
    default_classification = Classification.RETRY


class CredentialError(ArmError):
    """No credential could be built, or it produced no token. Nothing was sent to ARM.

    Codes (``credentials.py`` and ``tokens.py`` decide them):

    ``InvalidCredentials``        the material can never work (garbage PEM, a certificate without
                                  its key, a malformed tenant id); fatal
    ``AuthenticationFailed``      Microsoft Entra ID answered and refused; fatal
    ``TokenEndpointUnreachable``  no answer, a timeout, or a 5xx/408/429; retryable
    ``CredentialUnavailable``     the credential could not try (no identity endpoint, token file
                                  or environment yet); retryable
    ``TokenRequestFailed``        anything else azure-identity or MSAL raised; retryable
    """

    default_code = "CredentialError"

    INVALID_CREDENTIALS: ClassVar[str] = Reason.INVALID_CREDENTIALS
    AUTHENTICATION_FAILED: ClassVar[str] = Reason.AUTHENTICATION_FAILED
    TOKEN_ENDPOINT_UNREACHABLE: ClassVar[str] = Reason.TOKEN_ENDPOINT_UNREACHABLE
    CREDENTIAL_UNAVAILABLE: ClassVar[str] = "CredentialUnavailable"
    TOKEN_REQUEST_FAILED: ClassVar[str] = "TokenRequestFailed"  # noqa: S105 - a code
    _FATAL_CODES: ClassVar[frozenset[str]] = frozenset({INVALID_CREDENTIALS, AUTHENTICATION_FAILED})

    def __init__(self, message: str, *, code: str, correlation_id: str | None = None) -> None:
        # The code carries the classification: only the two fatal codes say "never again".
        super().__init__(
            message,
            code=code,
            retryable=code not in self._FATAL_CODES,
            correlation_id=correlation_id,
        )


class ContextTooLargeError(ArmError):
    """The zip+base64 context exceeds the configured limit; nothing was sent."""

    default_code: ClassVar[str] = Reason.CONTEXT_TOO_LARGE

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"context is {size} bytes after zip+base64, limit is {limit}")
        self.size = size
        self.limit = limit


class InvalidContextError(ArmError, ValueError):
    """A ready-made context is not valid base64 of a readable zip, or holds a link."""

    default_code: ClassVar[str] = Reason.INVALID_CONTEXT


class InvalidContextPathError(InvalidContextError):
    """A context file name is absolute, escapes the root or is empty, or two names collide:
    the same path twice, or one path used both as a file and as a directory."""

    default_code: ClassVar[str] = Reason.INVALID_CONTEXT_PATH
