"""Events about a RunCommand: best effort, as the status already says it all."""

from __future__ import annotations

from controller.kube import KubeApi, ObjectRef

from .logs import logger, one_line


async def post_event(
    kube: KubeApi, ref: ObjectRef, type_: str, reason: str, message: str
) -> None:
    """``type_`` an EventType, ``reason`` a Reason (the core's events carry them as str)."""
    try:
        await kube.post_event(ref, type_, reason, message)
    except Exception as error:  # an event is best effort; the status already says it all
        logger.warning("%s/%s: could not post event %s: %s",
                       ref.namespace, ref.name, reason, one_line(error))  # fmt: skip
