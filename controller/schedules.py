"""Read, decide, perform for RunCommandSchedules: read the schedule and its children, ask the
core (core/schedule.py) what this moment calls for, create the tick's child, write the status,
delete children beyond the history limits, post the events, and wake again at the next tick.

A child is an ordinary RunCommand or RunCommandSet, owned by the schedule (a controller
ownerReference), so the runtime or the fleet runs it with everything they do, and deleting it,
or the schedule, takes its output objects and children along (garbage collection). Its name
comes from its tick, so creating it again after a restart or by a second replica finds the
one that is there (AlreadyExists) and creates nothing. Every status write is conditional
(resourceVersion); a lost race re-reads and decides again.

Timers are the operator's own scheduler (controller/scheduler.py), as for sets: one timer handle
per schedule on the event loop, set for its next tick, and one lock per schedule so a tick and a
child's change are never decided at once. kopf's timers would poll every schedule at a fixed
interval (a look per interval whatever the cron says) and run one task per object; here a
schedule costs nothing between its ticks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from controller.core import InvalidSpec
from controller.core.schedule import (
    ChildCreate,
    ScheduleObservation,
    plan_schedule,
    schedule_problem,
)
from controller.core.schedule_history import ScheduledChild, parse_time
from controller.core.schedule_spec import ChildKind, ScheduleSpec
from controller.kube import KubeApi, ObjectRef
from controller.parents import ParentLoop, child_body, owned_by
from controller.settings import ParentSettings, ScheduleSettings
from controller.vocabulary import (
    RUNCOMMAND_PLURAL,
    SCHEDULE_KIND,
    SCHEDULE_LABEL,
    SCHEDULE_PLURAL,
    SET_PLURAL,
    SHARD_LABEL,
    EventType,
    Reason,
)

logger = logging.getLogger("controller.schedules")
PLURALS: Mapping[ChildKind, str] = {"RunCommand": RUNCOMMAND_PLURAL, "RunCommandSet": SET_PLURAL}


class Schedules(ParentLoop):
    kind, plural = SCHEDULE_KIND, SCHEDULE_PLURAL

    def __init__(
        self,
        kube: KubeApi,
        *,
        settings: ScheduleSettings | None = None,
        parents: ParentSettings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`settings`, `parents`: the operator's (controller/wiring.py), else the defaults."""
        settings, parents = settings or ScheduleSettings(), parents or ParentSettings()
        super().__init__(
            kube, workers=settings.workers, child_settle_seconds=parents.child_settle_seconds
        )
        self._now, self._settings = now, settings

    # Read, decide, perform -----------------------------------------------------------------

    async def _look(self, ref: ObjectRef) -> None:
        body = await self._kube.read_runcommand(ref, SCHEDULE_PLURAL)
        if body is None:
            self.forget(ref.uid)
            return
        metadata, status = body["metadata"], body.get("status") or {}
        generation = int(metadata.get("generation", 0))
        now = self._now()
        try:
            spec = ScheduleSpec.parse(body.get("spec") or {})
        except InvalidSpec as error:
            problem = schedule_problem(status, generation, now, str(error))
            await self._write_status(ref, body, problem)
            return
        children: list[ScheduledChild] = []
        for kind, plural in PLURALS.items():
            listed = await self._kube.list_runcommands(
                ref.namespace, f"{SCHEDULE_LABEL}={ref.name}", plural
            )
            children += [ScheduledChild.from_body(c, kind) for c in listed if owned_by(c, ref.uid)]
        created = parse_time(metadata.get("creationTimestamp")) or now
        shard = (metadata.get("labels") or {}).get(SHARD_LABEL)
        decision = plan_schedule(
            ScheduleObservation(ref.name, spec, status, generation, created, children, now, shard)
        )
        if decision.create is not None:
            await self._create(ref, decision.create)
        if not await self._write_status(ref, body, decision.status):
            return  # lost a race: looked at again at once, on fresh state
        for child in decision.deletes:
            child_ref = ObjectRef(ref.namespace, child.name, child.uid)
            await self._kube.delete_runcommand(child_ref, PLURALS[child.kind])
            await self._event(
                ref, EventType.NORMAL, Reason.RUN_DELETED,
                f"deleted finished {child.kind} {child.name} ({child.state}): beyond the "
                "history limits",
            )  # fmt: skip
        for event in decision.events:
            await self._event(ref, event.type, event.reason, event.message)
        if decision.wake_at is not None:
            wait = (
                decision.wake_at - self._now()
            ).total_seconds() + self._settings.tick_delay_seconds
            self._plan(ref, min(max(wait, 0.0), self._settings.max_sleep_seconds))

    async def _create(self, ref: ObjectRef, write: ChildCreate) -> None:
        """Create the tick's child; one that exists already is that child (its name is the
        tick's), so nothing is created twice."""
        created = await self._kube.create_runcommand(
            ref.namespace, _child_body(ref, write), PLURALS[write.kind]
        )
        if created is None:
            logger.info("%s/%s: %s %s exists already", ref.namespace, ref.name, write.kind,
                        write.name)  # fmt: skip
            return
        logger.info("%s/%s: created %s %s for the tick of %s", ref.namespace, ref.name,
                    write.kind, write.name, write.tick.isoformat())  # fmt: skip
        await self._event(
            ref, EventType.NORMAL, Reason.RUN_CREATED, f"created {write.kind} {write.name}"
        )

    async def _event(self, ref: ObjectRef, type_: EventType, reason: Reason, message: str) -> None:
        try:
            await self._kube.post_event(ref, str(type_), str(reason), message, SCHEDULE_KIND)
        except Exception as error:  # an event is worth a line, not a failed tick
            logger.warning("%s/%s: event %s not posted: %s", ref.namespace, ref.name, reason,
                           error)  # fmt: skip


def _child_body(owner: ObjectRef, write: ChildCreate) -> dict[str, Any]:
    return child_body(
        owner, SCHEDULE_KIND, write.kind, write.name, write.labels, write.spec, write.annotations
    )
