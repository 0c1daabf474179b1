"""ARM CloudError envelopes and Entra ID OAuth error bodies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

# The ARM error code of an answer, kept on the response so the POST log need not parse bodies.
ERROR_CODE_KEY = web.ResponseKey("error_code", str)


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


def oauth_error(status: int, error: str, aadsts: int, description: str) -> web.Response:
    """The shape Microsoft Entra ID uses; msal reads `error` and `error_description`."""
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{aadsts}: {description}",
            "error_codes": [aadsts],
        },
        status=status,
    )
