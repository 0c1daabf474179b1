"""What the plugin writes: progress for people on stderr, and a run's whole output (or its
JSON summary) on stdout."""

from __future__ import annotations

import sys
from typing import Any

from .kubectl import Kubectl


def say(line: str) -> None:
    """Progress for people, on stderr: stdout carries only the output (or the JSON)."""
    print(line, file=sys.stderr, flush=True)


def output_of(kube: Kubectl, status: dict[str, Any], ref: dict[str, Any] | None) -> str:
    """The whole output from its ConfigMap or Secret; status.logs (the tail) when there is
    none (spec.output None, or an operator from before logsRef)."""
    import base64

    if not ref:
        return str(status.get("logs") or "")
    kind = "secret" if ref.get("kind") == "Secret" else "configmap"
    key = ref.get("key", "output")
    obj = kube.json("get", kind, str(ref["name"]))
    if kind == "configmap" and key in (obj.get("data") or {}):
        return str(obj["data"][key])
    encoded = (obj.get("binaryData") or obj.get("data") or {}).get(key, "")
    return base64.b64decode(encoded).decode("utf-8", errors="replace")


def run_summary(body: dict[str, Any], output: str, code: int) -> dict[str, Any]:
    """A RunCommand's run as the one JSON object of `-o json`."""
    status = body.get("status") or {}
    keys = ("state", "reason", "message", "exitCode", "commandId", "correlationId", "logsRef")
    return {
        "name": body["metadata"]["name"],
        "namespace": body["metadata"]["namespace"],
        "generation": body["metadata"]["generation"],
        **{key: status.get(key) for key in keys},
        "pluginExitCode": code,
        "output": output,
    }
