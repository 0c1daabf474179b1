"""One shape for everything that can stop a run: ARM's errors, unusable inputs, policy refusals,
the Kubernetes API's errors.

As Azure Service Operator's ``ReadyConditionImpactingError`` does, a :class:`Failure` carries a
``code`` (PascalCase, a condition's reason), a ``message`` a person can act on, and a
:class:`Classification` that says what may happen next, with an optional ``retry_after``. The
core decides by the classification alone, never by exception type.

This module imports nothing of the project (an import contract keeps it so): ARM and the core
both derive from it.
"""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = ["TRANSIENT_HTTP_STATUSES", "Classification", "Failure", "is_transient_status"]


class Classification(enum.Enum):
    """What a failed call allows next."""

    FINAL = "Final"
    """The same request fails again until someone changes something: fail the run and say what."""
    RETRY = "Retry"
    """A blip (an outage, throttling, a busy cluster): the same call may pass in seconds, so the
    clients retry it at once and the run retries it within ``spec.retries``."""
    RETRY_LATER = "RetryLater"
    """Nothing happened, and what refused takes minutes to change (a role assignment reaching
    ARM, an input applied later): retried within ``spec.retries`` with the run's backoff only,
    never at once by a client."""
    OUTCOME_UNKNOWN = "OutcomeUnknown"
    """The call may have taken effect (a POST may have been accepted): never repeat it blindly."""


# HTTP statuses that say "not now" rather than "no", for every server the operator talks to
# (ARM, Microsoft Entra ID, the Kubernetes API): a timeout, throttling, and the server's own
# failures. A 409 is not here: ARM's and Kubernetes' conflicts mean different things.
TRANSIENT_HTTP_STATUSES = frozenset({408, 429})


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status may pass if the same request is made again later."""
    return status in TRANSIENT_HTTP_STATUSES or status >= 500


class Failure(Exception):
    """Base of everything that can stop a run. Subclasses set ``default_code`` and
    ``default_classification``; an instance may override both."""

    default_code: ClassVar[str] = "Failure"
    default_classification: ClassVar[Classification] = Classification.FINAL
    # Whether the call certainly took effect (ARM accepted a POST whose Location is unusable).
    accepted: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        classification: Classification | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = code or self.default_code
        self.classification = classification or self.default_classification
        self.retry_after = retry_after

    # The attributes callers read, derived from the classification. They are settable because
    # the core's Failure protocol declares them as plain attributes.
    @property
    def retryable(self) -> bool:
        """May the run try again (within spec.retries)?"""
        return self.classification in (Classification.RETRY, Classification.RETRY_LATER)

    @retryable.setter
    def retryable(self, value: bool) -> None:
        if value != self.retryable:
            self.classification = Classification.RETRY if value else Classification.FINAL

    @property
    def transient(self) -> bool:
        """Is an immediate retry of the same call worth it (a client's own retries)?"""
        return self.classification is Classification.RETRY

    @property
    def outcome_unknown(self) -> bool:
        """May the call have taken effect? Then it must never be resent blindly."""
        return self.classification is Classification.OUTCOME_UNKNOWN

    @outcome_unknown.setter
    def outcome_unknown(self, value: bool) -> None:
        if value:
            self.classification = Classification.OUTCOME_UNKNOWN
        elif self.outcome_unknown:
            self.classification = Classification.FINAL

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
