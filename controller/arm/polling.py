"""Reading a submitted command's result: its Location, checked, and the commandResults GET."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from controller.vocabulary import ErrorCode

from .errors import ArmError
from .models import CommandHandle, CommandRunning, CommandStatus, command_status_from_json
from .retry import parse_retry_after
from .session import ArmSession, json_object, json_or_none


@dataclass(frozen=True)
class CommandLocation:
    url: str
    subscription_id: str
    command_id: str


def parse_location(session: ArmSession, location: str | None) -> CommandLocation:
    """Validate a commandResults URL. Raises ValueError saying what is wrong."""
    if not location:
        raise ValueError("the Location header is missing")
    excerpt = location if len(location) <= 200 else location[:199] + "…"
    try:
        url = httpx.URL(location)
    except httpx.InvalidURL:
        raise ValueError(f"Location {excerpt!r} is not a URL") from None
    if not url.is_absolute_url:
        raise ValueError(f"Location {excerpt!r} is not absolute")
    if not session.on_arm(url):
        # The bearer token must not leave the ARM endpoint.
        raise ValueError(f"Location {excerpt!r} is not on {session.cloud.arm_endpoint}")
    segments = url.path.split("/")
    if (
        len(segments) < 5
        or segments[1].casefold() != "subscriptions"
        or segments[-2].casefold() != "commandresults"
        or not segments[-1]
    ):
        raise ValueError(f"Location {excerpt!r} is not a commandResults URL")
    if "api-version" not in url.params:
        url = url.copy_merge_params({"api-version": session.api_version})
    return CommandLocation(str(url), subscription_id=segments[2], command_id=segments[-1])


async def poll(session: ArmSession, handle: CommandHandle) -> CommandStatus:
    """GET the command's result (see ``ArmClient.poll``)."""
    try:
        location = parse_location(session, handle.location)
    except ValueError as exc:
        raise ArmError(
            f"command handle {handle.command_id} has an unusable location: {exc}",
            code=ErrorCode.INVALID_COMMAND_HANDLE,
            correlation_id=handle.correlation_id,
        ) from None
    response = await session.read(
        location.url, location.subscription_id, handle.correlation_id, "commandResult",
        provider=True,
    )  # fmt: skip
    retry_after = parse_retry_after(response.headers)
    if response.status_code != 200:
        # 202: still running; the live service sends a body, the spec does not promise one.
        running = json_or_none(response) or {}
        status = command_status_from_json(running, retry_after)
        return CommandRunning(
            started_at=status.started_at,
            retry_after=retry_after,
            provisioning_state=status.provisioning_state,
        )
    return command_status_from_json(json_object(response, handle.correlation_id), retry_after)
