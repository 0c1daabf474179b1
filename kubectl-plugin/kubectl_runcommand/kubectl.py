"""The API server, through the `kubectl` binary: the user's kubeconfig, context, credential
plugins and namespace defaults apply exactly as they do for kubectl itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

RESOURCE = "runcommands.aks.gitops.dev"


class KubectlError(Exception):
    """kubectl failed: the message is its stderr's last line."""


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        binary = shutil.which("kubectl")
        if binary is None:
            raise KubectlError("kubectl is not on PATH")
        argv = [binary]
        if self.kubeconfig:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            argv.append(f"--context={self.context}")
        if self.namespace:
            argv.append(f"--namespace={self.namespace}")
        return [*argv, *args]

    def run(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            self._argv(args), input=stdin, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [f"kubectl exited {result.returncode}"]
            raise KubectlError(lines[-1])
        return result.stdout

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return json.loads(self.run(*args, "-o", "json", stdin=stdin))

    def get(self, name: str, resource: str = RESOURCE) -> dict[str, Any]:
        body: dict[str, Any] = self.json("get", resource, name)
        return body

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.json("create", "-f", "-", stdin=json.dumps(body))
        return created

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.json(
            "patch", kind, name, "--type=merge", "-p", json.dumps(patch)
        )
        return patched
