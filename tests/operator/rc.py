"""Helpers to write and wait for RunCommands in end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import poll_until
from tests.kube import kubectl, kubectl_json
from tests.stack import RESOURCE_GROUP, SUBSCRIPTION_ID


def manifest(
    name: str, namespace: str, command: str, cluster: str = "aks-target", **spec: Any
) -> str:
    body = {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommand",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "cluster": {
                "subscriptionId": SUBSCRIPTION_ID,
                "resourceGroup": RESOURCE_GROUP,
                "name": cluster,
            },
            "command": command,
            **spec,
        },
    }
    return json.dumps(body)


class RunCommands:
    def __init__(self, kubectl_path: str, kubeconfig: Path) -> None:
        self.kubectl_path, self.kubeconfig = kubectl_path, kubeconfig

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return kubectl(self.kubectl_path, self.kubeconfig, *args, stdin=stdin, check=check)

    def apply(self, text: str) -> None:
        self.kubectl("apply", "-f", "-", stdin=text)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = kubectl_json(
            self.kubectl_path, self.kubeconfig, "-n", namespace, "get", "runcommand", name
        )
        return body

    def wait(
        self,
        namespace: str,
        name: str,
        states: tuple[str, ...] = ("Succeeded", "Failed", "Unknown"),
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Wait until status.state is one of `states`; return the whole object."""
        return self.wait_for(namespace, name, lambda status: status.get("state") in states, timeout)

    def wait_for(
        self, namespace: str, name: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        return poll_until(
            lambda: self.get(namespace, name),
            lambda body: done(body.get("status") or {}),
            what=f"{namespace}/{name} gets there",
            timeout=timeout,
            describe=lambda body: json.dumps(body.get("status")),
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = kubectl_json(
            self.kubectl_path,
            self.kubeconfig,
            "-n",
            namespace,
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name={name},involvedObject.kind=RunCommand",
        )["items"]
        return items


def condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for entry in body.get("status", {}).get("conditions", []):
        if entry["type"] == type_:
            return dict(entry)
    return None
