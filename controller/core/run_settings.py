"""What the core's decisions are tuned by: one frozen value per operator, in kopf's
``OperatorSettings`` style (each field says what it bounds). The operator's settings tree
(controller/config.py) holds one and fills it from flags; tests build their own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    max_log_bytes: int = 16 * 1024
    """How much of a run's output status.logs keeps: its tail, where commands say why they
    failed. The full output goes to the object spec.output names."""

    history_limit: int = 10
    """How many ended runs status.history keeps; the output objects of older runs are deleted.
    Zero keeps none."""

    default_timeout_seconds: int = 6 * 3600
    """The run's deadline, counted from its first submission, when spec.timeoutSeconds is
    unset: it bounds polling (ARM has no cancel, so the command itself may run on)."""

    poll_initial_seconds: float = 1.0
    """The first poll's delay when nothing better is known, and where poll backoff starts."""

    poll_interval_seconds: float = 5.0
    """A run in flight is polled at least this often while the budget has room (as `az`, which
    polls every 5 s)."""

    poll_max_seconds: float = 30.0
    """The longest the ARM budget may stretch the interval between polls to."""

    retry_initial_seconds: float = 5.0
    """The first retry's delay after a failed submission or poll; it doubles per attempt."""

    retry_max_seconds: float = 300.0
    """The longest any retry waits."""

    missing_input_initial_seconds: float = 30.0
    """The first retry's delay when an input may appear later (a Secret or ConfigMap of the
    same GitOps sync, applied in no set order); it doubles up to retry_max_seconds."""

    holder: str = "operator"
    """Who is deciding: one value per operator process, written in status.claimedBy."""

    claim_lease_seconds: float = 180.0
    """How long a claim another holder wrote is presumed alive: longer than any POST can take
    (the ARM client's connect, write and read timeouts, plus the time to record its answer)."""
