"""The API server, through the `kubectl` binary: the user's kubeconfig, context, credential
plugins and namespace defaults apply exactly as they do for kubectl itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from .errors import PluginError
from .interrupt import raise_if_interrupted

API_VERSION = "aks.gitops.dev/v1alpha1"
RESOURCE = "runcommands.aks.gitops.dev"


class KubectlError(PluginError):
    """kubectl failed, or could not be run: the message is its stderr's last line."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


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

    def run(self, *args: str, stdin: str | None = None, shielded: bool = False) -> str:
        """`shielded`: in a process group of its own, out of reach of the terminal's Ctrl-C,
        and with no terminal to read, for calls whose effect must not be left unknown."""
        raise_if_interrupted()
        argv = self._argv(args)
        try:
            result = subprocess.run(
                argv,
                input=stdin,
                stdin=subprocess.DEVNULL if stdin is None and shielded else None,
                capture_output=True,
                text=True,
                check=False,
                process_group=0 if shielded else None,
            )
        except OSError as error:
            raise KubectlError(f"cannot run {argv[0]}: {error.strerror or error}") from None
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [f"kubectl exited {result.returncode}"]
            raise KubectlError(lines[-1], not_found="(NotFound)" in lines[-1])
        return result.stdout

    def json(self, *args: str, stdin: str | None = None, shielded: bool = False) -> Any:
        text = self.run(*args, "-o", "json", stdin=stdin, shielded=shielded)
        try:
            return json.loads(text)
        except ValueError:
            first = text.strip().splitlines()[:1] or ["nothing"]
            raise KubectlError(f"kubectl {args[0]} answered {first[0][:80]!r}, not JSON") from None

    def get(self, name: str, resource: str = RESOURCE) -> dict[str, Any]:
        body: dict[str, Any] = self.json("get", resource, name)
        return body

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.json(
            "create", "-f", "-", stdin=json.dumps(body), shielded=True
        )
        return created

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.json(
            "patch", kind, name, "--type=merge", "-p", json.dumps(patch), shielded=True
        )
        return patched

    def delete(self, kind: str, name: str) -> None:
        self.run("delete", kind, name, "--wait=false", shielded=True)
