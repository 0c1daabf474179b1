"""GET .../commandResults/{commandId}: a submission's state, 202 while it runs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .arm_wire import spelt
from .commands import CommandRunner, Submission, iso
from .config import ClusterConfig
from .errors import ArmErrorAnswer


def command_result(
    runner: CommandRunner, cluster: ClusterConfig, command_id: str, lowercase: bool
) -> web.Response:
    submission = runner.submissions.get(command_id.lower())
    if submission is None or submission.cluster is not cluster:
        raise ArmErrorAnswer(
            404,
            "ResourceNotFound",
            f"The command result '{command_id}' was not found.",
            target="commandId",
        )
    submission.polls += 1
    return web.json_response(
        result_body(submission, lowercase), status=202 if submission.state == "Running" else 200
    )


def result_body(submission: Submission, lowercase: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"provisioningState": spelt(submission.state, lowercase)}
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
