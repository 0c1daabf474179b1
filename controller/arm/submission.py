"""The runCommand POST and its in-doubt handling (see ``client.py`` for what is resent and why).

A POST is resent only when ARM certainly did not accept it: never sent (connect error or
timeout, no pooled connection), a 429 within the retry policy, or a 400 MissingAADClusterToken
in ``auto`` mode (resent once with a clusterToken). A timeout or drop after sending, any 5xx, and
the pod-start codes raise :class:`SubmissionOutcomeUnknown`.
"""

from __future__ import annotations

import dataclasses

import httpx

from .clouds import AKS_AAD_SCOPE
from .errors import (
    ArmError,
    ArmResponseError,
    ArmTransportError,
    MalformedLocationError,
    SubmissionOutcomeUnknown,
    ThrottledError,
)
from .models import ArmCode, ClusterTokenMode, CommandHandle, PreparedSubmission
from .polling import parse_location
from .retry import parse_retry_after
from .session import ArmSession, Request, describe

# Raised before any byte of the request left this process.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_POD_START_CODES = frozenset(
    code.casefold()
    for code in (ArmCode.KUBERNETES_OPERATION_ERROR, ArmCode.KUBERNETES_PERFORMANCE_ERROR)
)
_AUTO: ClusterTokenMode = "auto"


async def send_submission(
    session: ArmSession, prepared: PreparedSubmission, aad_managed: dict[str, bool]
) -> CommandHandle:
    """POST runCommand and return the handle to poll (see ``ArmClient.send_submission``).
    ``aad_managed``: the client's cache of which clusters need a clusterToken, corrected here
    when ARM says a cached answer was stale."""
    cluster, correlation_id = prepared.cluster, prepared.correlation_id
    url = session.url(f"{cluster.resource_id}/runCommand")
    attempt = 0
    while True:
        error: ArmError
        try:
            response = await session.send(_post(url, prepared, first=attempt == 0))
        except _NOT_SENT_ERRORS as exc:
            error = ArmTransportError(
                f"runCommand POST to {cluster.name} was not sent: {describe(exc)}",
                correlation_id=correlation_id,
            )
            if attempt + 1 >= session.retry.submit_max_attempts:
                raise error from exc
        except httpx.HTTPError as exc:
            raise SubmissionOutcomeUnknown(
                f"runCommand POST to {cluster.name} may have been accepted ({describe(exc)})",
                correlation_id=correlation_id,
            ) from exc
        else:
            if response.is_success:
                return accepted(session, response, correlation_id)
            error = _refusal(response, prepared)
            if _stale_aad_flag(error, prepared):
                # The cached flag was stale (the cluster became AAD-managed). A 400 is a
                # certain refusal; resend once with a token.
                aad_managed[cluster.cache_key] = True
                token = await session.tokens.get(AKS_AAD_SCOPE)
                prepared = dataclasses.replace(prepared, cluster_token=token.text)
                continue
            if (
                not isinstance(error, ThrottledError)
                or attempt + 1 >= session.retry.submit_max_attempts
                or (error.retry_after or 0.0) > session.retry.max_retry_after
            ):
                raise error
        await session.sleep(session.retry.delay(attempt, error.retry_after, session.rand))
        attempt += 1


def _post(url: str, prepared: PreparedSubmission, *, first: bool) -> Request:
    return Request(
        "POST", url, prepared.cluster.subscription_id, "write", prepared.correlation_id,
        prepared.body(), budget_reserved=prepared.budget_reserved and first, provider=True,
        operation="runCommand",
    )  # fmt: skip


def _refusal(response: httpx.Response, prepared: PreparedSubmission) -> ArmResponseError:
    """ARM's error answer to the POST; raises SubmissionOutcomeUnknown when the command may
    still run (a 5xx, or the command pod was being started)."""
    correlation_id = prepared.correlation_id
    error = ArmResponseError.from_response(response, correlation_id=correlation_id)
    if response.status_code >= 500 or error.code.casefold() in _POD_START_CODES:
        raise SubmissionOutcomeUnknown(
            f"runCommand POST to {prepared.cluster.name} may have been accepted: ARM answered "
            f"HTTP {response.status_code} {error.code}: {error.message}",
            correlation_id=correlation_id,
            request_id=error.request_id,
            response_error=error,
        )
    return error


def _stale_aad_flag(error: ArmError, prepared: PreparedSubmission) -> bool:
    """ARM wants a clusterToken that ``auto`` mode did not send, as its cached flag said."""
    return (
        error.code.casefold() == ArmCode.MISSING_AAD_CLUSTER_TOKEN.casefold()
        and prepared.cluster_token_mode == _AUTO
        and prepared.cluster_token is None
    )


def accepted(session: ArmSession, response: httpx.Response, correlation_id: str) -> CommandHandle:
    location = response.headers.get("location")
    request_id = response.headers.get("x-ms-request-id")
    try:
        parsed = parse_location(session, location)
    except ValueError as exc:
        # Accepted, so it may run: never resubmit. Surfaced as an outcome-unknown error.
        raise MalformedLocationError(
            f"ARM accepted the command (HTTP {response.status_code}, request id "
            f"{request_id}) but its Location cannot be polled: {exc}. The command may run; "
            "it was not resubmitted and its result cannot be read",
            correlation_id=correlation_id,
            request_id=request_id,
            location=location,
        ) from None
    return CommandHandle(
        command_id=parsed.command_id,
        location=parsed.url,
        correlation_id=correlation_id,
        retry_after=parse_retry_after(response.headers),
    )
