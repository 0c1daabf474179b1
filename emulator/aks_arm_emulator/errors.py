"""ARM CloudError envelopes and Entra ID OAuth error bodies."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from aiohttp import web

# The ARM error code of an answer, kept on the response so the POST log need not parse bodies.
ERROR_CODE_KEY = web.ResponseKey("error_code", str)


class ArmErrorAnswer(Exception):
    """An ARM refusal, raised where it is found; the request-id middleware renders it with
    `arm_error`, so handlers return only their success answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return arm_error(self.status, self.code, self.message, self.target, self.headers)


def arm_error(
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """`{"error": {"code", "message", "target"?, "details": []}}` like ARM sends."""
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    error["details"] = []
    response = web.json_response({"error": error}, status=status, headers=headers)
    response[ERROR_CODE_KEY] = code
    return response


def oauth_error(
    status: int, error: str, aadsts: int, description: str, correlation_id: str | None = None
) -> web.Response:
    """The shape Microsoft Entra ID uses; msal reads `error` and `error_description`."""
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation} Timestamp: {timestamp}",
            "error_codes": [aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
        },
        status=status,
    )
