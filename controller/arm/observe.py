"""What the ARM client reports of its own work, for whoever measures it (the operator's metrics).

ARM knows nothing of Prometheus: the client and the throttle call an :class:`ArmObserver` they
are handed, and :data:`NO_OBSERVER` when they are handed none.
"""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["NO_OBSERVER", "ArmObserver", "BucketName", "Operation"]

# The ARM operations the client performs, as they appear on the operator's metrics.
Operation = Literal["runCommand", "commandResult", "getCluster", "listClusters"]
# ARM's buckets per subscription (reads, writes) and the AKS resource provider's shared one.
BucketName = Literal["read", "write", "provider"]


class ArmObserver(Protocol):
    def request(self, operation: Operation, status: str, seconds: float) -> None:
        """One HTTP exchange ended: ``status`` is the HTTP status, or ``error`` when no answer
        came (connection refused or dropped, timeout)."""

    def budget_wait(self, subscription_id: str, bucket: BucketName, seconds: float) -> None:
        """A request waited ``seconds`` for a token of its subscription's bucket."""

    def throttled(self, subscription_id: str, bucket: BucketName) -> None:
        """ARM (``read``/``write``) or the AKS resource provider (``provider``) answered 429."""


class _NoObserver:
    def request(self, operation: Operation, status: str, seconds: float) -> None:
        pass

    def budget_wait(self, subscription_id: str, bucket: BucketName, seconds: float) -> None:
        pass

    def throttled(self, subscription_id: str, bucket: BucketName) -> None:
        pass


NO_OBSERVER: ArmObserver = _NoObserver()
