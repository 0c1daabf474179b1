"""Accepted submissions and their lifecycle: Running, then Succeeded or Failed.

With a state directory, what the emulator accepted and how each command ended is journalled
(``commands.jsonl``, one JSON line per change), so an emulator restarted on the same directory
still answers for its commands, as ARM does across its own restarts. A command that was running
when the emulator stopped cannot be followed further: it ends Failed, with reason
``EmulatorShutdown`` (stopped) or ``EmulatorRestarted`` (killed), instead of "not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
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


JOURNAL = "commands.jsonl"


def _record(submission: Submission) -> dict[str, Any]:
    """A submission as one journal line (no cluster token: only whether one was sent)."""
    return {
        "commandId": submission.command_id,
        "cluster": submission.cluster.resource_id.casefold(),
        "command": submission.command,
        "correlationId": submission.correlation_id,
        "clientRequestId": submission.client_request_id,
        "clusterTokenSent": submission.cluster_token_sent,
        "hasContext": submission.has_context,
        "submittedAt": iso(submission.submitted_at),
        "state": submission.state,
        "startedAt": iso(submission.started_at) if submission.started_at else None,
        "finishedAt": iso(submission.finished_at) if submission.finished_at else None,
        "exitCode": submission.exit_code,
        "logs": submission.logs,
        "reason": submission.reason,
    }


def _moment(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _restore(record: dict[str, Any], cluster: ClusterConfig) -> Submission:
    return Submission(
        command_id=record["commandId"],
        cluster=cluster,
        command=record["command"],
        correlation_id=record["correlationId"],
        client_request_id=record["clientRequestId"],
        cluster_token_sent=record["clusterTokenSent"],
        has_context=record["hasContext"],
        submitted_at=_moment(record["submittedAt"]) or _now(),
        state=record["state"],
        started_at=_moment(record["startedAt"]),
        finished_at=_moment(record["finishedAt"]),
        exit_code=record["exitCode"],
        logs=record["logs"],
        reason=record["reason"],
    )


class CommandRunner:
    def __init__(
        self, config: EmulatorConfig, faults: FaultInjector, state_dir: Path | None = None
    ) -> None:
        self._config = config
        self._faults = faults
        self._path = tool_path(config.tool_path)
        self.submissions: dict[str, Submission] = {}
        # Targets (by kubeconfig) where creating aks-command was tried, and one lock for all.
        self._namespaces: set[Path] = set()
        self._namespace_lock = asyncio.Lock()
        self._journal: Path | None = None
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._journal = state_dir / JOURNAL
            self._replay(self._journal)

    def _replay(self, journal: Path) -> None:
        """Load what an earlier emulator on this state directory accepted."""
        if not journal.exists():
            return
        clusters = {c.resource_id.casefold(): c for c in self._config.clusters}
        for line in journal.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                if record.get("cleared"):
                    self.submissions.clear()
                elif (cluster := clusters.get(record["cluster"])) is not None:
                    self.submissions[record["commandId"]] = _restore(record, cluster)
        for submission in self.submissions.values():
            if submission.state == "Running":  # its process died with the emulator that ran it
                self._finish(submission, "Failed", None, submission.logs, "EmulatorRestarted")
        log.info("restored %d commands from %s", len(self.submissions), journal)

    def _write(self, record: dict[str, Any]) -> None:
        if self._journal is not None:
            with self._journal.open("a", encoding="utf-8") as journal:
                journal.write(json.dumps(record) + "\n")

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
        self._write(_record(submission))
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
        self._write(_record(submission))
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
        self._write({"cleared": True})
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
