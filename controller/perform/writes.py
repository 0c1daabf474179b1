"""Conditional status writes: every one is conditional on the resourceVersion that was read.

A plain write that loses a race hands the object back to be decided again from fresh state. The
record of ARM's answer to our claim must land: it is retried while the API server is away and
after lost races, for as long as the status still describes our claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controller.kube import Conflict, KubeApi, ObjectRef, transient
from controller.vocabulary import EventType, Reason

from .events import post_event
from .logs import log_fields, logger, one_line

Body = Mapping[str, Any]


class StatusWrites:
    """``decide_again``: schedule the object to be decided again at once (a lost race);
    ``forget``: it is gone, stop following it (by uid); ``record_backoff``: seconds between
    tries to record ARM's answer, the last one repeated."""

    def __init__(
        self,
        kube: KubeApi,
        *,
        decide_again: Callable[[ObjectRef], None],
        forget: Callable[[str], None],
        record_backoff: Sequence[float],
    ) -> None:
        self._kube, self._decide_again, self._forget = kube, decide_again, forget
        self._record_backoff = tuple(record_backoff)

    async def write(self, ref: ObjectRef, body: Body, patch: Mapping[str, Any]) -> Body | None:
        """A conditional status patch. A lost race is decided again from fresh state."""
        try:
            written = await self._kube.patch_status(ref, dict(patch), _version(body))
        except Conflict:
            logger.info("%s/%s changed while deciding; deciding again", ref.namespace, ref.name)
            self._decide_again(ref)
            return None
        if written is None:
            self._forget(ref.uid)
        return written

    async def record(
        self, ref: ObjectRef, body: Body, patch: Mapping[str, Any], correlation_id: str
    ) -> Body | None:
        """Write ARM's answer to our claim, retrying while the API server is away and after lost
        races, for as long as the status still describes our claim."""
        attempt = 0
        while True:
            try:
                written = await self._kube.patch_status(ref, dict(patch), _version(body))
            except Conflict:
                fresh = await self._kube.read_runcommand(ref)
                if fresh is None:
                    self._forget(ref.uid)
                    return None
                if (fresh.get("status") or {}).get("correlationId") != correlation_id:
                    await self._superseded(ref, patch)
                    return None
                body = fresh  # still our claim (an edit, or a peer's verdict): write again
                continue
            except Exception as error:
                if not transient(error):
                    raise
                backoff = self._record_backoff
                delay = backoff[min(attempt, len(backoff) - 1)]
                attempt += 1
                logger.warning(
                    "%s/%s: cannot record ARM's answer yet (%s); trying again in %.1fs",
                    ref.namespace, ref.name, one_line(error), delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            if written is None:
                self._forget(ref.uid)
            return written

    async def _superseded(self, ref: ObjectRef, patch: Mapping[str, Any]) -> None:
        """Our claim was given up by a peer (its lease ran out) and a new run has started since:
        the answer has no place in status any more, so it is said where people look."""
        message = (
            f"ARM answered a submission (command {patch.get('commandId') or 'none'}, "
            f"{patch.get('reason')}) after this run had been given up and a new one started; "
            "that answer is not recorded in status"
        )
        logger.warning(
            "%s/%s: %s", ref.namespace, ref.name, message, extra=log_fields(ref, None, patch)
        )
        await post_event(self._kube, ref, EventType.WARNING, Reason.ANSWER_NOT_RECORDED, message)


def _version(body: Body) -> str:
    return str(body["metadata"]["resourceVersion"])
