"""Accepted submissions and their lifecycle: Running, then Succeeded or Failed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import ClusterConfig, EmulatorConfig
from .executor import decode_head, extract_context, run_command, tool_path
from .faults import FaultInjector

log = logging.getLogger(__name__)

State = Literal["Running", "Succeeded", "Failed"]
# Where AKS runs command pods; it creates the namespace on first use of run command.
COMMAND_NAMESPACE = "aks-command"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Submission:
    command_id: str
    cluster: ClusterConfig
    command: str
    correlation_id: str
    client_request_id: str | None
    cluster_token_sent: bool
    has_context: bool
    submitted_at: datetime.datetime
    state: State = "Running"
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    exit_code: int | None = None
    logs: str = ""
    reason: str | None = None
    polls: int = 0  # commandResults GETs answered for it (202 or 200), for tests and benches
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def introspection(self) -> dict[str, Any]:
        """What /_emulator/submissions shows; never the clusterToken itself."""
        return {
            "commandId": self.command_id,
            "clusterId": self.cluster.resource_id,
            "command": self.command,
            "hasContext": self.has_context,
            "correlationId": self.correlation_id,
            "clientRequestId": self.client_request_id,
            "clusterTokenSent": self.cluster_token_sent,
            "submittedAt": iso(self.submitted_at),
            "state": self.state,
            "polls": self.polls,
            # When the command really ran: tests check that runs of one object never overlap.
            **{
                key: iso(moment)
                for key, moment in (
                    ("startedAt", self.started_at),
                    ("finishedAt", self.finished_at),
                )
                if moment
            },
        }


class CommandRunner:
    def __init__(self, config: EmulatorConfig, faults: FaultInjector) -> None:
        self._config = config
        self._faults = faults
        self._path = tool_path(config.tool_path)
        self.submissions: dict[str, Submission] = {}
        # Targets (by kubeconfig) where creating aks-command was tried, and one lock for all.
        self._namespaces: set[Path] = set()
        self._namespace_lock = asyncio.Lock()

    def accept(
        self,
        cluster: ClusterConfig,
        command: str,
        archive: zipfile.ZipFile | None,
        *,
        correlation_id: str,
        client_request_id: str | None,
        cluster_token_sent: bool,
    ) -> Submission:
        now = _now()
        submission = Submission(
            command_id=uuid.uuid4().hex,
            cluster=cluster,
            command=command,
            correlation_id=correlation_id,
            client_request_id=client_request_id,
            cluster_token_sent=cluster_token_sent,
            has_context=archive is not None,
            submitted_at=now,
            started_at=now,
        )
        self.submissions[submission.command_id] = submission
        submission.task = asyncio.create_task(self._run(submission, archive))
        log.info(
            "accepted command %s on %s (correlation %s)",
            submission.command_id,
            cluster.resource_id,
            correlation_id,
        )
        return submission

    async def _run(self, submission: Submission, archive: zipfile.ZipFile | None) -> None:
        try:
            # Read once: a fault switched while the command runs does not change its course.
            faults = self._faults.config
            if faults.pod_never_starts:
                await self._never_start(submission, faults.pod_start_timeout_seconds)
            elif self._config.mode == "scripted":
                await self._scripted(submission)
            else:
                await self._execute(submission, archive)
        except asyncio.CancelledError:
            self._finish(submission, "Failed", None, submission.logs, "EmulatorShutdown")
            raise
        except Exception:  # a bug or an OS error must still end the command
            log.exception("command %s failed inside the emulator", submission.command_id)
            self._finish(submission, "Failed", None, "", "EmulatorError")

    def _finish(
        self,
        submission: Submission,
        state: State,
        exit_code: int | None,
        logs: str,
        reason: str | None,
    ) -> None:
        submission.exit_code = exit_code
        submission.logs = logs
        submission.reason = reason
        submission.finished_at = _now()
        submission.state = state
        log.info(
            "command %s finished: %s exit=%s reason=%s",
            submission.command_id,
            state,
            exit_code,
            reason,
        )

    async def _never_start(self, submission: Submission, timeout_seconds: float) -> None:
        # Like the service: the pod gets a bounded time to start, then the command fails.
        await asyncio.sleep(timeout_seconds)
        self._finish(submission, "Failed", None, "", "KubernetesOperationError")

    async def _scripted(self, submission: Submission) -> None:
        scripted = self._config.scripted
        await asyncio.sleep(scripted.duration_seconds)
        head = scripted.logs.encode("utf-8")[: self._config.max_log_bytes]
        self._finish(submission, "Succeeded", scripted.exit_code, decode_head(head), None)

    async def _execute(self, submission: Submission, archive: zipfile.ZipFile | None) -> None:
        workdir = Path(tempfile.mkdtemp(prefix=f"command-{submission.command_id}-"))
        try:
            if archive is not None:
                await asyncio.to_thread(extract_context, archive, workdir)
            await self._command_namespace(submission.cluster.kubeconfig)
            result = await run_command(
                submission.command,
                workdir,
                kubeconfig=submission.cluster.kubeconfig,
                path=self._path,
                timeout_seconds=self._config.command_timeout_seconds,
                max_log_bytes=self._config.max_log_bytes,
                hostname=f"command-{submission.command_id}",
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        if result.timed_out:
            self._finish(
                submission,
                "Failed",
                result.exit_code,
                result.logs,
                "CommandTimeout",
            )
        else:
            self._finish(submission, "Succeeded", result.exit_code, result.logs, None)

    async def _command_namespace(self, kubeconfig: Path | None) -> None:
        """Create aks-command in the target on first use, as AKS does (the command pod runs
        there, and ExactlyOnce keeps its fences there). Tried once per target; a failure is
        logged, not fatal: the command then meets the missing namespace as it would."""
        if kubeconfig is None or kubeconfig in self._namespaces:
            return
        async with self._namespace_lock:
            if kubeconfig in self._namespaces:
                return
            process = await asyncio.create_subprocess_exec(
                "kubectl", "create", "namespace", COMMAND_NAMESPACE,
                # A HOME of its own: without one kubectl caches discovery under the cwd.
                env={"PATH": self._path, "KUBECONFIG": str(kubeconfig),
                     "HOME": tempfile.gettempdir()},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, error = await process.communicate()
            self._namespaces.add(kubeconfig)  # one try per target
            if process.returncode != 0 and b"AlreadyExists" not in error:
                log.warning(
                    "could not create namespace %s with %s: %s",
                    COMMAND_NAMESPACE, kubeconfig, error.decode(errors="replace").strip(),
                )  # fmt: skip

    def clear(self) -> int:
        count = len(self.submissions)
        for submission in self.submissions.values():
            if submission.task is not None and not submission.task.done():
                submission.task.cancel()
        self.submissions.clear()
        return count

    async def shutdown(self) -> None:
        tasks = [
            s.task for s in self.submissions.values() if s.task is not None and not s.task.done()
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
