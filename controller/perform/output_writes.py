"""A run's output objects (ConfigMap or Secret): written before the status names them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.core import Decision
from controller.kube import KubeApi, ObjectRef

from .logs import log_fields, logger, one_line


async def write_output(
    kube: KubeApi, ref: ObjectRef, status: Mapping[str, Any] | None, decision: Decision,
    retry_in: float,
) -> bool:  # fmt: skip
    """Write the run's output before the patch that names it: a crash in between rewrites
    the same object (create-or-replace, named from the command id). When it cannot be
    written (API server away, quota, RBAC), nothing is recorded: False, and the caller polls
    again in ``retry_in`` seconds, so the run stays Running and its result is never lost."""
    output = decision.output
    assert output is not None
    text, raw = output.payload()
    try:
        await kube.write_output(ref, output.kind, output.name, text, raw)
    except Exception as error:
        logger.warning(
            "%s/%s: cannot write the output to %s %s yet (%s); polling again in %.0fs",
            ref.namespace, ref.name, output.kind, output.name, one_line(error), retry_in,
            extra=log_fields(ref, None, status),
        )  # fmt: skip
        return False
    return True


async def delete_output(kube: KubeApi, ref: ObjectRef, kind: str, name: str) -> None:
    """Best effort: a left-over output object is garbage-collected with its RunCommand."""
    try:
        await kube.delete_output(ref.namespace, kind, name)
    except Exception as error:
        logger.warning("%s/%s: could not delete %s %s: %s",
                       ref.namespace, ref.name, kind, name, one_line(error))  # fmt: skip
