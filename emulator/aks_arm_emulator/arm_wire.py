"""What every ARM route of the emulator shares: the paths it serves, the resource a path
names, the 401 challenge and the 429 answer, and how provisioning states are spelt."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from .errors import ArmErrorAnswer

PATH_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.containerservice/managedclusters/(?P<name>[^/]+)"
    r"(?:/(?P<op>runcommand)|/(?P<results>commandresults)/(?P<command_id>[^/]+))?)?/?$",
    re.IGNORECASE,
)

# GET .../managedClusters in a subscription, or in one of its resource groups.
LIST_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourcegroups/(?P<rg>[^/]+))?"
    r"/providers/microsoft\.containerservice/managedclusters/?$",
    re.IGNORECASE,
)

# Set by the request-id middleware, read when a submission is recorded.
CORRELATION_KEY = web.RequestKey("correlation_id", str)


@dataclass(frozen=True)
class ArmTarget:
    subscription_id: str
    resource_group: str
    name: str
    operation: str  # "cluster" | "runCommand" | "commandResult"
    command_id: str | None


def cluster_key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    """A cluster as ARM finds it: its id's parts, case-insensitively."""
    return subscription_id.lower(), resource_group.lower(), name.lower()


def run_command_cluster(request: web.Request) -> str | None:
    """For a runCommand POST, the cluster's resource id as the path names it; else None."""
    if request.method != "POST":
        return None
    match = PATH_RE.match(request.path)
    if match is None or match.group("op") is None:
        return None
    return request.path[: match.start("op") - 1]


def challenge(origin: str, description: str) -> dict[str, str]:
    """ARM's WWW-Authenticate on a 401: where to get a token, and why this one failed."""
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{origin}/common", '
        f'error="invalid_token", error_description="{description}"'
    }


def too_many_requests(header: str, retry_after: int, scope: str) -> ArmErrorAnswer:
    return ArmErrorAnswer(
        429,
        "TooManyRequests",
        f"The request is being throttled ({scope} limit). Retry after {retry_after} seconds.",
        headers={"Retry-After": str(retry_after), header: "0"},
    )


def spelt(state: str, lowercase: bool) -> str:
    """A provisioning state as the emulator is configured to spell it (lowercaseStates)."""
    return state.lower() if lowercase else state
