"""The ARM side's front door: every request's checks, then the route of its resource
(managed_clusters.py, run_command.py, command_results.py).

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
import re

from aiohttp import web

from .arm_wire import LIST_RE, PATH_RE, ArmTarget, challenge, too_many_requests
from .command_results import command_result
from .commands import CommandRunner
from .config import API_VERSION_RE, CLUSTER_NAME_RE, UUID_RE, ClusterConfig, EmulatorConfig
from .errors import ArmErrorAnswer
from .faults import FaultInjector
from .managed_clusters import ManagedClusters
from .run_command import RunCommandRoute
from .signin import origin_of
from .throttle import Kind, ProviderThrottle, Throttle, remaining_header
from .tokens import Principal, TokenAuthority, TokenRejected


class ArmApi:
    """What every ARM request goes through (a token, the subscription id, the api-version,
    ARM's throttling and the injected faults) before the route of its resource."""

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
        self._clusters = ManagedClusters(
            config.clusters, page_size=config.list_page_size, lowercase=config.lowercase_states
        )
        self._run_command = RunCommandRoute(config, authority, runner, faults)

    # --- clusters added or removed while the emulator runs (/_emulator/clusters) -------------

    def add_cluster(self, cluster: ClusterConfig) -> bool:
        """False when a cluster of that id exists already."""
        return self._clusters.add(cluster)

    def remove_cluster(self, subscription_id: str, resource_group: str, name: str) -> bool:
        return self._clusters.remove(subscription_id, resource_group, name)

    def subscription_ids(self) -> list[str]:
        """The subscriptions of the clusters served now (lower case, sorted)."""
        return self._clusters.subscription_ids()

    # --- request pipeline -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        latency = self._faults.config.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)

        self.authenticate(request)

        match = PATH_RE.match(request.path)
        subscription = request.path.split("/")[2] if request.path.count("/") >= 2 else ""
        if not UUID_RE.match(subscription):
            raise ArmErrorAnswer(
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{subscription}' is malformed or invalid.",
            )

        kind: Kind = "writes" if request.method in ("POST", "PUT", "PATCH", "DELETE") else "reads"
        decision = self._throttle.take(subscription, kind)
        header = remaining_header(kind)
        if not decision.allowed:
            raise too_many_requests(header, decision.retry_after_seconds, "subscription")
        if self._provider is not None:
            refused = self._provider.take(request.method, request.path)
            if refused is not None and not refused.allowed:
                # ARM let it through (and counted it); the resource provider refuses it.
                retry_after = refused.retry_after_seconds
                raise ArmErrorAnswer(
                    429,
                    "Throttled",
                    "The request was throttled by the Microsoft.ContainerService resource "
                    f"provider. Retry after {retry_after} seconds.",
                    headers={"Retry-After": str(retry_after), header: str(decision.remaining)},
                )

        try:
            response = await self._dispatch(request, match)
        except ArmErrorAnswer as refusal:
            refusal.headers.setdefault(header, str(decision.remaining))
            raise
        response.headers[header] = str(decision.remaining)
        return response

    def authenticate(self, request: web.Request) -> Principal:
        """The caller's principal, from a valid, unrevoked ARM bearer token; else a 401."""
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        origin = origin_of(request)
        failed = challenge(origin, "The authentication failed.")
        if scheme.lower() != "bearer" or not token.strip():
            raise ArmErrorAnswer(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                headers=failed,
            )
        audiences = [origin, f"{origin}/", *self._config.arm_audiences]
        try:
            principal = self._authority.verify(
                token.strip(), audiences, "InvalidAuthenticationTokenAudience"
            )
        except TokenRejected as exc:
            raise ArmErrorAnswer(401, exc.code, exc.message, headers=failed) from None
        if self._authority.is_revoked(principal):
            # POST /_emulator/revoke-tokens. ARM's answer to a token it no longer honours; the
            # CAE claims challenge a CAE-enabled client would get is not emulated.
            raise ArmErrorAnswer(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid: it was revoked. Get a new token.",
                headers=challenge(origin, "The access token has been revoked."),
            )
        return principal

    async def _dispatch(self, request: web.Request, match: re.Match[str] | None) -> web.Response:
        listing = LIST_RE.match(request.path)
        if listing is not None:
            return self._list_clusters(request, listing)
        if match is None or match.group("rg") is None:
            raise ArmErrorAnswer(
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
            raise ArmErrorAnswer(
                405,
                "MethodNotAllowed",
                f"The {request.method} method is not supported here; use {allowed}.",
            )
        if self._faults.throttled():
            raise too_many_requests(
                remaining_header("writes" if allowed == "POST" else "reads"), 1, "injected"
            )
        if self._faults.server_error():
            raise ArmErrorAnswer(500, "InternalServerError", "Injected server error.")

        if not CLUSTER_NAME_RE.match(target.name):
            raise ArmErrorAnswer(
                400,
                "InvalidParameter",
                f"The managed cluster name '{target.name}' is invalid.",
                target="resourceName",
            )
        cluster = self._clusters.find(target)
        if target.operation == "cluster":
            return web.json_response(self._clusters.cluster_json(cluster))
        if target.operation == "commandResult":
            poll_latency = self._faults.config.poll_latency_seconds
            if poll_latency > 0:
                await asyncio.sleep(poll_latency)
            return command_result(
                self._runner, cluster, target.command_id or "", self._config.lowercase_states
            )
        return await self._run_command.post(request, cluster, target, api_version)

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

    def _list_clusters(self, request: web.Request, listing: re.Match[str]) -> web.Response:
        """One page of a subscription's (or resource group's) managed clusters, in a stable
        order; `nextLink` carries the offset of the next page, as ARM's `$skipToken` does."""
        self.check_api_version(request)
        if request.method != "GET":
            raise ArmErrorAnswer(405, "MethodNotAllowed", f"The {request.method} method is not "
                                 "supported here; use GET.")  # fmt: skip
        if self._faults.throttled():
            raise too_many_requests(remaining_header("reads"), 1, "injected")
        if self._faults.server_error():
            raise ArmErrorAnswer(500, "InternalServerError", "Injected server error.")
        listed = self._throttle.take(listing.group("sub"), "lists")
        if not listed.allowed:
            raise too_many_requests(
                remaining_header("reads"), listed.retry_after_seconds, "managedClusters list"
            )
        return self._clusters.list_page(request, listing)

    def check_api_version(self, request: web.Request) -> None:
        api_version = request.query.get("api-version")
        if api_version is None:
            raise ArmErrorAnswer(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not self._api_version_supported(api_version):
            versions = self._config.api_versions
            raise ArmErrorAnswer(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The supported versions are dates "
                f"between '{versions.oldest}' and '{versions.newest}', optionally with '-preview'.",
            )
