"""What `wait` and `logs` name: a RunCommand or a RunCommandSet."""

from __future__ import annotations

from typing import Any

from .errors import NotThere, UsageError
from .fleet import SET_RESOURCE
from .kubectl import RESOURCE, Kubectl, KubectlError

_RUNCOMMAND_KINDS = ("runcommand", "runcommands", "runcmd", RESOURCE)
_SET_KINDS = ("runcommandset", "runcommandsets", "runcmdset", SET_RESOURCE)


def find(kube: Kubectl, target: str) -> tuple[str, dict[str, Any]]:
    """`NAME`, `runcommand/NAME` or `runcommandset/NAME`: the resource and the object. A bare
    NAME is a RunCommand, else a RunCommandSet (what `invoke --selector --no-wait` printed)."""
    kind, slash, name = target.rpartition("/")
    if slash and kind.lower() in _RUNCOMMAND_KINDS:
        return RESOURCE, kube.get(name)
    if slash and kind.lower() in _SET_KINDS:
        return SET_RESOURCE, kube.get(name, SET_RESOURCE)
    if slash:
        raise UsageError(f"{target}: give NAME, runcommand/NAME or runcommandset/NAME")
    try:
        return RESOURCE, kube.get(name)
    except KubectlError as error:
        if not error.not_found:
            raise
    try:
        return SET_RESOURCE, kube.get(name, SET_RESOURCE)
    except KubectlError as error:
        if not error.not_found:
            raise
        raise NotThere(f"no RunCommand or RunCommandSet named {name}") from None
