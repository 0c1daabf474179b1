"""Where a run's output goes: its tail in status.logs, and the whole of it in a ConfigMap or
Secret owned by the RunCommand, one per run, named from the command id so that writing it again
after a crash writes the same object.

ARM's commandResults answer is JSON, so the output reaches the operator as a string. JSON may
escape lone surrogates (``"\\udc80"``) that no UTF-8 encoder accepts; such output is kept as
bytes (binaryData) rather than lost or rejected by the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .run_settings import Settings

ARM_LOG_LIMIT = 512 * 1024  # ARM truncates command output here
OUTPUT_KEY = "output"
_NAME_MAX = 253  # a ConfigMap or Secret name is a DNS subdomain
_SUFFIX = "-out-"
_ID_CHARS = 10

OutputKind = Literal["ConfigMap", "Secret"]
_KINDS = ("ConfigMap", "Secret")


@dataclass(frozen=True)
class OutputWrite:
    """Create or replace `kind`/`name` holding the run's whole output under OUTPUT_KEY."""

    kind: OutputKind
    name: str
    text: str

    @property
    def ref(self) -> dict[str, Any]:
        """What status.logsRef and the run's history entry say about it."""
        return {"kind": self.kind, "name": self.name, "key": OUTPUT_KEY}

    def payload(self) -> tuple[str | None, bytes | None]:
        """(text, None) when the output is valid UTF-8, else (None, its bytes)."""
        try:
            self.text.encode("utf-8")
        except UnicodeEncodeError:
            # surrogateescape restores bytes a decoder escaped; other lone surrogates are kept
            # in their (non-standard) UTF-8 form rather than dropped.
            try:
                return None, self.text.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                return None, self.text.encode("utf-8", "surrogatepass")
        return self.text, None


def output_name(runcommand: str, command_id: str) -> str:
    """`<rc-name>-out-<commandId[:10]>`, the RunCommand's name shortened to fit."""
    suffix = f"{_SUFFIX}{command_id[:_ID_CHARS].lower()}"
    return f"{runcommand[: _NAME_MAX - len(suffix)].rstrip('.-')}{suffix}"


@dataclass(frozen=True)
class OutputRef:
    kind: OutputKind
    name: str


def output_refs(entries: object) -> tuple[OutputRef, ...]:
    """The output objects that history entries refer to."""
    refs: list[OutputRef] = []
    for entry in entries if isinstance(entries, list | tuple) else ():
        ref = entry.get("logsRef") if isinstance(entry, Mapping) else None
        if isinstance(ref, Mapping) and ref.get("name") and ref.get("kind") in _KINDS:
            refs.append(OutputRef(ref["kind"], str(ref["name"])))
    return tuple(refs)


def logs_fields(logs: str, settings: Settings) -> dict[str, Any]:
    """What status says of the output. Keep the tail: the end of the output is where commands
    say why they failed."""
    raw = logs.encode(errors="surrogatepass")  # JSON may carry lone surrogates
    tail = raw[-settings.max_log_bytes :].decode(errors="ignore")
    return {
        "logs": tail,
        "logsBytes": len(raw),
        "logsTruncated": len(raw) > settings.max_log_bytes or len(raw) >= ARM_LOG_LIMIT,
    }


def truncation_note(logs: Mapping[str, Any], settings: Settings) -> str:
    """Say who cut the output, and which part survives (`logs`: what logs_fields made)."""
    size = int(logs["logsBytes"])
    if size >= ARM_LOG_LIMIT:
        return (
            f"ARM returned {size} bytes of output, its 512 KiB limit, so ARM cut the output "
            "(which part it keeps is not documented); status.logs holds the last "
            f"{settings.max_log_bytes} bytes of what ARM returned"
        )
    if logs["logsTruncated"]:
        return (
            f"the output has {size} bytes; status.logs holds its last "
            f"{settings.max_log_bytes} bytes"
        )
    return ""
