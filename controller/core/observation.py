"""One look at a RunCommand: everything a decision depends on, what its status says, and the
one way a decision writes status (a merge patch with the state's conditions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from controller.arm.models import CommandHandle
from controller.vocabulary import FINAL_STATES, State

from .conditions import conditions_for
from .decision import Patch
from .durations import format_timestamp
from .run_settings import Settings
from .spec import RunSpec

# What a run leaves in status; cleared (merge patch None) when a new run starts.
NO_RUN: Patch = dict.fromkeys(
    ("commandId", "location", "provisioningState", "exitCode", "startedAt", "finishedAt",
     "duration", "logs", "logsTruncated", "logsBytes", "logsRef", "nextAttemptAt", "claimedBy",
     "claimedAt", "fence"),
)  # fmt: skip


def command_handle(status: Mapping[str, Any]) -> CommandHandle | None:
    """The recorded command, if this status has one: the only place a handle is read back."""
    command_id, location = status.get("commandId"), status.get("location")
    if not command_id or not location:
        return None
    return CommandHandle(str(command_id), str(location), str(status.get("correlationId") or ""))


@dataclass(frozen=True)
class Observation:
    """One look at an object: everything a decision depends on."""

    spec: RunSpec
    status: Mapping[str, Any]
    generation: int
    now: datetime
    settings: Settings
    name: str = ""  # metadata.name: output objects are named after it
    uid: str = ""  # metadata.uid: an ExactlyOnce run's fence is named after it

    def with_status(self, status: Mapping[str, Any]) -> Observation:
        return replace(self, status=status)

    # Reading status ---------------------------------------------------------------------------

    @property
    def state(self) -> str | None:
        value = self.status.get("state")
        return str(value) if value is not None else None

    @property
    def attempts(self) -> int:
        return int(self.status.get("attempts") or 1)

    @property
    def spec_moved_on(self) -> bool:
        """The spec now defines another run than the one status describes."""
        return not self.spec.defines(self.status.get("specHash"))

    @property
    def in_flight(self) -> bool:
        """ARM accepted a command and its id is recorded: it runs until ARM says it ended."""
        return self.state == State.RUNNING and command_handle(self.status) is not None

    @property
    def claimed(self) -> bool:
        """A POST may be on its way: the run is claimed and no retry is planned."""
        return self.state == State.SUBMITTING and not self.status.get("nextAttemptAt")

    @property
    def timeout_seconds(self) -> int:
        return self.spec.timeout_seconds or self.settings.default_timeout_seconds

    def next_attempt(self) -> int:
        """The attempt a new submission would be: the first of a new run, or the next retry."""
        if self.state is None or self.spec_moved_on or self.state in FINAL_STATES:
            return 1
        return int(self.status.get("attempts") or 0) + 1

    @property
    def now_text(self) -> str:
        """`now` as status writes it."""
        return format_timestamp(self.now)

    # Writing status ---------------------------------------------------------------------------

    def patch(self, state: State, reason: str, message: str, **fields: Any) -> Patch:
        """The state, its kstatus conditions, and `fields`, as a merge patch of status."""
        conditions = conditions_for(
            state, reason, message, self.generation, self.now_text,
            self.status.get("conditions") or (),
        )  # fmt: skip
        return {
            "observedGeneration": self.generation,
            "state": str(state),
            "reason": str(reason),
            "message": message,
            "clusterName": self.spec.cluster.name,
            "clusterId": self.spec.cluster.resource_id,
            "conditions": conditions,
            **fields,
        }

    def observed(self) -> Patch:
        """Nothing changes but that this generation was seen."""
        return {"observedGeneration": self.generation}
