"""The ARM side: managedClusters read, runCommand submission and commandResults polling.

Error codes the live service documents are used as-is (ResourceNotFound, MissingAADClusterToken,
InvalidApiVersionParameter, InvalidSubscriptionId, TooManyRequests...). Where the real code is
unknown the emulator chooses one and says so:
- run command disabled on the cluster: 400 OperationNotAllowed, target
  `properties.apiServerAccessProfile.disableRunCommand` (real code unknown);
- stopped cluster: 400 OperationNotAllowed, target `properties.powerState` (real code unknown);
- clusterToken present but not a valid token for the AKS AAD server app: 400
  InvalidAADClusterToken (real code unknown);
- unknown commandId: 404 ResourceNotFound, target `commandId`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .commands import CommandRunner, Submission, iso
from .config import (
    API_VERSION_RE,
    CLUSTER_NAME_RE,
    UUID_RE,
    ClusterConfig,
    EmulatorConfig,
)
from .errors import ArmError
from .executor import ContextError, decode_context
from .faults import FaultInjector
from .posts import POST_RECORD_KEY, client_gone
from .signin import origin_of
from .throttle import Kind, ProviderThrottle, Throttle, remaining_header
from .tokens import AKS_AAD_SERVER_APP_ID, Principal, TokenAuthority, TokenRejected

log = logging.getLogger(__name__)

_PATH_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.containerservice/managedclusters/(?P<name>[^/]+)"
    r"(?:/(?P<op>runcommand)|/(?P<results>commandresults)/(?P<command_id>[^/]+))?)?/?$",
    re.IGNORECASE,
)

# GET .../managedClusters in a subscription, or in one of its resource groups.
_LIST_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourcegroups/(?P<rg>[^/]+))?"
    r"/providers/microsoft\.containerservice/managedclusters/?$",
    re.IGNORECASE,
)
_SKIP_TOKEN = "$skipToken"  # noqa: S105 (a query parameter name, not a secret)


# Set by the request-id middleware, read when a submission is recorded.
CORRELATION_KEY = web.RequestKey("correlation_id", str)


def _key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    return subscription_id.lower(), resource_group.lower(), name.lower()


class DropConnection(Exception):
    """Raised after the connection was closed on purpose: no response must be written."""


class ClientGone(Exception):
    """The client left before its submission was accepted, and abandoned submits do not run."""


def run_command_cluster(request: web.Request) -> str | None:
    """For a runCommand POST, the cluster's resource id as the path names it; else None."""
    if request.method != "POST":
        return None
    match = _PATH_RE.match(request.path)
    if match is None or match.group("op") is None:
        return None
    return request.path[: match.start("op") - 1]


def _challenge(origin: str, description: str) -> dict[str, str]:
    """ARM's WWW-Authenticate on a 401: where to get a token, and why this one failed."""
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{origin}/common", '
        f'error="invalid_token", error_description="{description}"'
    }


@dataclass(frozen=True)
class ArmTarget:
    subscription_id: str
    resource_group: str
    name: str
    operation: str  # "cluster" | "runCommand" | "commandResult"
    command_id: str | None


class ArmApi:
    def __init__(
        self,
        config: EmulatorConfig,
        authority: TokenAuthority,
        runner: CommandRunner,
        faults: FaultInjector,
    ) -> None:
        self._config = config
        self._authority = authority
        self._runner = runner
        self._throttle = Throttle(config.throttle)
        self._provider = (
            ProviderThrottle(config.throttle.provider) if config.throttle.profile == "aks" else None
        )
        self._faults = faults
        self._clusters = {
            _key(c.subscription_id, c.resource_group, c.name): c for c in config.clusters
        }

    # --- clusters added or removed while the emulator runs (/_emulator/clusters) -------------

    def add_cluster(self, cluster: ClusterConfig) -> bool:
        """False when a cluster of that id exists already."""
        key = _key(cluster.subscription_id, cluster.resource_group, cluster.name)
        if key in self._clusters:
            return False
        self._clusters[key] = cluster
        return True

    def remove_cluster(self, subscription_id: str, resource_group: str, name: str) -> bool:
        return self._clusters.pop(_key(subscription_id, resource_group, name), None) is not None

    def subscription_ids(self) -> list[str]:
        """The subscriptions of the clusters served now (lower case, sorted)."""
        return sorted({key[0] for key in self._clusters})

    # --- request pipeline -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        latency = self._faults.config.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)

        self.authenticate(request)

        match = _PATH_RE.match(request.path)
        subscription = request.path.split("/")[2] if request.path.count("/") >= 2 else ""
        if not UUID_RE.match(subscription):
            raise ArmError(
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{subscription}' is malformed or invalid.",
            )

        kind: Kind = "writes" if request.method in ("POST", "PUT", "PATCH", "DELETE") else "reads"
        decision = self._throttle.take(subscription, kind)
        header = remaining_header(kind)
        if not decision.allowed:
            raise self._too_many_requests(header, decision.retry_after_seconds, "subscription")
        if self._provider is not None:
            refused = self._provider.take(request.method, request.path)
            if refused is not None and not refused.allowed:
                # ARM let it through (and counted it); the resource provider refuses it.
                retry_after = refused.retry_after_seconds
                raise ArmError(
                    429,
                    "Throttled",
                    "The request was throttled by the Microsoft.ContainerService resource "
                    f"provider. Retry after {retry_after} seconds.",
                    headers={"Retry-After": str(retry_after), header: str(decision.remaining)},
                )

        try:
            response = await self._dispatch(request, match)
        except ArmError as refusal:
            refusal.headers.setdefault(header, str(decision.remaining))
            raise
        response.headers[header] = str(decision.remaining)
        return response

    def _too_many_requests(self, header: str, retry_after: int, scope: str) -> ArmError:
        return ArmError(
            429,
            "TooManyRequests",
            f"The request is being throttled ({scope} limit). Retry after {retry_after} seconds.",
            headers={"Retry-After": str(retry_after), header: "0"},
        )

    def authenticate(self, request: web.Request) -> Principal:
        """The caller's principal, from a valid, unrevoked ARM bearer token; else a 401."""
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        origin = origin_of(request)
        challenge = _challenge(origin, "The authentication failed.")
        if scheme.lower() != "bearer" or not token.strip():
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                headers=challenge,
            )
        audiences = [origin, f"{origin}/", *self._config.arm_audiences]
        try:
            principal = self._authority.verify(
                token.strip(), audiences, "InvalidAuthenticationTokenAudience"
            )
        except TokenRejected as exc:
            raise ArmError(401, exc.code, exc.message, headers=challenge) from None
        if self._authority.is_revoked(principal):
            # POST /_emulator/revoke-tokens. ARM's answer to a token it no longer honours; the
            # CAE claims challenge a CAE-enabled client would get is not emulated.
            raise ArmError(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid: it was revoked. Get a new token.",
                headers=_challenge(origin, "The access token has been revoked."),
            )
        return principal

    async def _dispatch(self, request: web.Request, match: re.Match[str] | None) -> web.Response:
        listing = _LIST_RE.match(request.path)
        if listing is not None:
            return self._list_clusters(request, listing)
        if match is None or match.group("rg") is None:
            raise ArmError(
                404,
                "InvalidResourceType",
                f"The resource type of '{request.path}' is not served by this emulator.",
            )

        self.check_api_version(request)
        api_version = request.query["api-version"]

        target = ArmTarget(
            subscription_id=match.group("sub"),
            resource_group=match.group("rg"),
            name=match.group("name"),
            operation="runCommand"
            if match.group("op")
            else ("commandResult" if match.group("results") else "cluster"),
            command_id=match.group("command_id"),
        )
        allowed = {"cluster": "GET", "runCommand": "POST", "commandResult": "GET"}[target.operation]
        if request.method != allowed:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The {request.method} method is not supported here; use {allowed}.",
            )
        if self._faults.throttled():
            raise self._too_many_requests(
                remaining_header("writes" if allowed == "POST" else "reads"), 1, "injected"
            )
        if self._faults.server_error():
            raise ArmError(500, "InternalServerError", "Injected server error.")

        if not CLUSTER_NAME_RE.match(target.name):
            raise ArmError(
                400,
                "InvalidParameter",
                f"The managed cluster name '{target.name}' is invalid.",
                target="resourceName",
            )
        cluster = self._find_cluster(target)
        if target.operation == "cluster":
            return web.json_response(self._cluster_json(cluster))
        if target.operation == "commandResult":
            poll_latency = self._faults.config.poll_latency_seconds
            if poll_latency > 0:
                await asyncio.sleep(poll_latency)
            return self._command_result(cluster, target.command_id or "")
        return await self._run_command(request, cluster, target, api_version)

    def _api_version_supported(self, api_version: str) -> bool:
        match = API_VERSION_RE.match(api_version)
        if match is None:
            return False
        _, month, day = (int(part) for part in match.group(1, 2, 3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return False
        date = api_version[:10]
        # ISO dates compare correctly as strings.
        return self._config.api_versions.oldest <= date <= self._config.api_versions.newest[:10]

    def _find_cluster(self, target: ArmTarget) -> ClusterConfig:
        sub, rg, name = (
            target.subscription_id.lower(),
            target.resource_group.lower(),
            target.name.lower(),
        )
        cluster = self._clusters.get((sub, rg, name))
        if cluster is not None:
            return cluster
        if not any(key[0] == sub for key in self._clusters):
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{target.subscription_id}' could not be found.",
            )
        if not any(key[0] == sub and key[1] == rg for key in self._clusters):
            raise ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{target.resource_group}' could not be found.",
            )
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.ContainerService/managedClusters/{target.name}' under "
            f"resource group '{target.resource_group}' was not found.",
        )

    # --- operations ---------------------------------------------------------------------------

    def _list_clusters(self, request: web.Request, listing: re.Match[str]) -> web.Response:
        """One page of a subscription's (or resource group's) managed clusters, in a stable
        order; `nextLink` carries the offset of the next page, as ARM's `$skipToken` does."""
        self.check_api_version(request)
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"The {request.method} method is not "
                           "supported here; use GET.")  # fmt: skip
        if self._faults.throttled():
            raise self._too_many_requests(remaining_header("reads"), 1, "injected")
        if self._faults.server_error():
            raise ArmError(500, "InternalServerError", "Injected server error.")
        listed = self._throttle.take(listing.group("sub"), "lists")
        if not listed.allowed:
            raise self._too_many_requests(
                remaining_header("reads"), listed.retry_after_seconds, "managedClusters list"
            )
        sub, rg = listing.group("sub").lower(), (listing.group("rg") or "").lower()
        clusters = sorted(
            (c for key, c in self._clusters.items() if key[0] == sub and (not rg or key[1] == rg)),
            key=lambda c: c.resource_id.lower(),
        )
        try:
            start = int(request.query.get(_SKIP_TOKEN, "0"))
        except ValueError:
            raise ArmError(400, "InvalidParameter", "The $skipToken is not valid.",
                           target="$skipToken") from None  # fmt: skip
        end = start + self._config.list_page_size
        body: dict[str, Any] = {"value": [self._cluster_json(c) for c in clusters[start:end]]}
        if end < len(clusters):
            next_url = request.url.with_query({**request.query, _SKIP_TOKEN: str(end)})
            body["nextLink"] = f"{origin_of(request)}{next_url.path_qs}"
        return web.json_response(body)

    def check_api_version(self, request: web.Request) -> None:
        api_version = request.query.get("api-version")
        if api_version is None:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not self._api_version_supported(api_version):
            versions = self._config.api_versions
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The supported versions are dates "
                f"between '{versions.oldest}' and '{versions.newest}', optionally with '-preview'.",
            )

    def _cluster_json(self, cluster: ClusterConfig) -> dict[str, Any]:
        return {
            "id": cluster.resource_id,
            "name": cluster.name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": cluster.location,
            "tags": dict(cluster.tags),
            "properties": {
                "provisioningState": self._state("Succeeded"),
                "powerState": {"code": cluster.power_state},
                "aadProfile": {"managed": True, "enableAzureRBAC": False}
                if cluster.aad_managed
                else None,
                "apiServerAccessProfile": {
                    "enablePrivateCluster": True,
                    "disableRunCommand": cluster.disable_run_command,
                },
            },
        }

    def _state(self, state: str) -> str:
        return state.lower() if self._config.lowercase_states else state

    def _command_result(self, cluster: ClusterConfig, command_id: str) -> web.Response:
        submission = self._runner.submissions.get(command_id.lower())
        if submission is None or submission.cluster is not cluster:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The command result '{command_id}' was not found.",
                target="commandId",
            )
        submission.polls += 1
        return web.json_response(
            self._result_body(submission), status=202 if submission.state == "Running" else 200
        )

    def _result_body(self, submission: Submission) -> dict[str, Any]:
        properties: dict[str, Any] = {"provisioningState": self._state(submission.state)}
        if submission.started_at is not None:
            properties["startedAt"] = iso(submission.started_at)
        if submission.state != "Running":
            if submission.exit_code is not None:
                properties["exitCode"] = submission.exit_code
            if submission.finished_at is not None:
                properties["finishedAt"] = iso(submission.finished_at)
            properties["logs"] = submission.logs
            if submission.reason is not None:
                properties["reason"] = submission.reason
        return {"id": submission.command_id, "properties": properties}

    async def _run_command(
        self, request: web.Request, cluster: ClusterConfig, target: ArmTarget, api_version: str
    ) -> web.Response:
        if cluster.power_state == "Stopped":
            raise ArmError(
                400,
                "OperationNotAllowed",
                "Run command is not possible while the managed cluster is stopped.",
                target="properties.powerState",
            )
        if cluster.disable_run_command:
            raise ArmError(
                400,
                "OperationNotAllowed",
                "Run command is disabled on this managed cluster.",
                target="properties.apiServerAccessProfile.disableRunCommand",
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ArmError(
                413,
                "RequestEntityTooLarge",
                f"The request body is larger than {self._config.max_request_bytes} bytes.",
            ) from None
        command, context, cluster_token = self._parse_body(raw)

        archive = None
        if context:
            try:
                archive = decode_context(context)
            except ContextError as exc:
                raise ArmError(400, "InvalidParameter", str(exc), target="context") from None

        if cluster.aad_managed:
            if not cluster_token:
                raise ArmError(
                    400,
                    "MissingAADClusterToken",
                    "Cluster token is required for AAD-enabled clusters (clusterToken).",
                    target="clusterToken",
                )
            try:
                self._authority.verify(
                    cluster_token, [AKS_AAD_SERVER_APP_ID], "InvalidAADClusterToken"
                )
            except TokenRejected as exc:
                raise ArmError(
                    400,
                    "InvalidAADClusterToken",
                    f"The clusterToken is not valid for the AKS AAD server application: "
                    f"{exc.message}",
                    target="clusterToken",
                ) from None

        hold = self._faults.config.submit_latency_seconds
        if hold > 0:
            await asyncio.sleep(hold)
        if client_gone(request) and not self._faults.config.run_abandoned_submits:
            log.info(
                "client left before acceptance; not starting (correlation %s)",
                request[CORRELATION_KEY],
            )
            raise ClientGone()

        submission = self._runner.accept(
            cluster,
            command,
            archive,
            correlation_id=request[CORRELATION_KEY],
            client_request_id=request.headers.get("x-ms-client-request-id"),
            cluster_token_sent=bool(cluster_token),
        )
        record = request.get(POST_RECORD_KEY)
        if record is not None:
            record.command_id = submission.command_id
        if self._faults.drop_after_submit():
            log.info("dropping the connection after accepting %s (fault)", submission.command_id)
            if record is not None:
                record.dropped = True
            if request.transport is not None:
                request.transport.abort()
            raise DropConnection(submission.command_id)

        origin = origin_of(request)
        location = (
            f"{origin}/subscriptions/{target.subscription_id}/resourcegroups/{target.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{target.name}"
            f"/commandResults/{submission.command_id}?api-version={api_version}"
        )
        headers = {"Location": location}
        if self._config.retry_after_seconds is not None:
            headers["Retry-After"] = str(self._config.retry_after_seconds)
        return web.Response(status=202, headers=headers)

    def _parse_body(self, raw: bytes) -> tuple[str, str | None, str | None]:
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ArmError(
                400, "BadRequest", "The request content is not valid JSON.", target="requestPayload"
            ) from None
        if not isinstance(body, dict):
            raise ArmError(
                400,
                "BadRequest",
                "The request content must be a JSON object.",
                target="requestPayload",
            )
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ArmError(
                400,
                "InvalidParameter",
                "The 'command' property is required and must not be empty.",
                target="command",
            )
        context = body.get("context")
        if context is not None and not isinstance(context, str):
            raise ArmError(
                400,
                "InvalidParameter",
                "The 'context' property must be a base64 string.",
                target="context",
            )
        cluster_token = body.get("clusterToken")
        if cluster_token is not None and not isinstance(cluster_token, str):
            raise ArmError(
                400,
                "InvalidParameter",
                "The 'clusterToken' property must be a string.",
                target="clusterToken",
            )
        return command, context, cluster_token
