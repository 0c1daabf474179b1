"""POST .../managedClusters/{name}/runCommand: checked as the live service checks it, then
accepted (202 and a Location to poll) and handed to the command runner."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from aiohttp import web

from .arm_wire import CORRELATION_KEY, ArmTarget
from .commands import CommandRunner, Submission
from .config import ClusterConfig, EmulatorConfig
from .errors import ArmErrorAnswer
from .executor import ContextError, decode_context
from .faults import FaultInjector
from .posts import POST_RECORD_KEY, client_gone
from .signin import origin_of
from .tokens import AKS_AAD_SERVER_APP_ID, TokenAuthority, TokenRejected

log = logging.getLogger(__name__)


class DropConnection(Exception):
    """Raised after the connection was closed on purpose: no response must be written."""


class ClientGone(Exception):
    """The client left before its submission was accepted, and abandoned submits do not run."""


@dataclass(frozen=True)
class RunCommandRoute:
    """The runCommand POST of every cluster: its checks, the hold and faults around acceptance,
    and the 202 that says where to poll."""

    config: EmulatorConfig
    authority: TokenAuthority
    runner: CommandRunner
    faults: FaultInjector

    async def post(
        self, request: web.Request, cluster: ClusterConfig, target: ArmTarget, api_version: str
    ) -> web.Response:
        refuse_unavailable(cluster)
        command, context, cluster_token = parse_body(await self._read(request))
        archive = None
        if context:
            try:
                archive = decode_context(context)
            except ContextError as exc:
                raise ArmErrorAnswer(400, "InvalidParameter", str(exc), target="context") from None
        if cluster.aad_managed:
            self._check_cluster_token(cluster_token)

        hold = self.faults.config.submit_latency_seconds
        if hold > 0:
            await asyncio.sleep(hold)
        if client_gone(request) and not self.faults.config.run_abandoned_submits:
            log.info(
                "client left before acceptance; not starting (correlation %s)",
                request[CORRELATION_KEY],
            )
            raise ClientGone()

        submission = self.runner.accept(
            cluster,
            command,
            archive,
            correlation_id=request[CORRELATION_KEY],
            client_request_id=request.headers.get("x-ms-client-request-id"),
            cluster_token_sent=bool(cluster_token),
        )
        self._record_or_drop(request, submission)
        return web.Response(status=202, headers=self._accepted(request, target, submission,
                                                                api_version))  # fmt: skip

    async def _read(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ArmErrorAnswer(
                413,
                "RequestEntityTooLarge",
                f"The request body is larger than {self.config.max_request_bytes} bytes.",
            ) from None

    def _check_cluster_token(self, cluster_token: str | None) -> None:
        """An AAD-managed cluster needs a clusterToken for the AKS AAD server application."""
        if not cluster_token:
            raise ArmErrorAnswer(
                400,
                "MissingAADClusterToken",
                "Cluster token is required for AAD-enabled clusters (clusterToken).",
                target="clusterToken",
            )
        try:
            self.authority.verify(cluster_token, [AKS_AAD_SERVER_APP_ID], "InvalidAADClusterToken")
        except TokenRejected as exc:
            raise ArmErrorAnswer(
                400,
                "InvalidAADClusterToken",
                f"The clusterToken is not valid for the AKS AAD server application: {exc.message}",
                target="clusterToken",
            ) from None

    def _record_or_drop(self, request: web.Request, submission: Submission) -> None:
        """The command id on the POST log; with the fault, the connection dropped instead of
        the answer (the command runs, the client never learns its id)."""
        record = request.get(POST_RECORD_KEY)
        if record is not None:
            record.command_id = submission.command_id
        if self.faults.drop_after_submit():
            log.info("dropping the connection after accepting %s (fault)", submission.command_id)
            if record is not None:
                record.dropped = True
            if request.transport is not None:
                request.transport.abort()
            raise DropConnection(submission.command_id)

    def _accepted(
        self, request: web.Request, target: ArmTarget, submission: Submission, api_version: str
    ) -> dict[str, str]:
        """The 202's headers: where to poll, and (when configured) how long to wait first."""
        origin = origin_of(request)
        location = (
            f"{origin}/subscriptions/{target.subscription_id}/resourcegroups/{target.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{target.name}"
            f"/commandResults/{submission.command_id}?api-version={api_version}"
        )
        headers = {"Location": location}
        if self.config.retry_after_seconds is not None:
            headers["Retry-After"] = str(self.config.retry_after_seconds)
        return headers


def refuse_unavailable(cluster: ClusterConfig) -> None:
    """A stopped cluster, or one with run command disabled, runs nothing."""
    if cluster.power_state == "Stopped":
        raise ArmErrorAnswer(
            400,
            "OperationNotAllowed",
            "Run command is not possible while the managed cluster is stopped.",
            target="properties.powerState",
        )
    if cluster.disable_run_command:
        raise ArmErrorAnswer(
            400,
            "OperationNotAllowed",
            "Run command is disabled on this managed cluster.",
            target="properties.apiServerAccessProfile.disableRunCommand",
        )


def parse_body(raw: bytes) -> tuple[str, str | None, str | None]:
    """The command, the base64 context and the clusterToken of a runCommand body."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ArmErrorAnswer(
            400, "BadRequest", "The request content is not valid JSON.", target="requestPayload"
        ) from None
    if not isinstance(body, dict):
        raise ArmErrorAnswer(
            400,
            "BadRequest",
            "The request content must be a JSON object.",
            target="requestPayload",
        )
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ArmErrorAnswer(
            400,
            "InvalidParameter",
            "The 'command' property is required and must not be empty.",
            target="command",
        )
    for key, refusal in (
        ("context", "The 'context' property must be a base64 string."),
        ("clusterToken", "The 'clusterToken' property must be a string."),
    ):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ArmErrorAnswer(400, "InvalidParameter", refusal, target=key)
    return command, body.get("context"), body.get("clusterToken")
