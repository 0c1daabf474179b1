"""Injected faults, drawn from one seeded generator so a test run is reproducible."""

from __future__ import annotations

import random

from .config import FaultsConfig


class FaultInjector:
    def __init__(self, config: FaultsConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)  # noqa: S311 - reproducibility, not security

    def _draw(self, rate: float) -> bool:
        # Draw only when the knob is on, so enabling one knob does not shift another's sequence.
        return rate > 0.0 and self._random.random() < rate

    def server_error(self) -> bool:
        return self._draw(self.config.server_error_rate)

    def throttled(self) -> bool:
        return self._draw(self.config.throttle_rate)

    def drop_after_submit(self) -> bool:
        return self._draw(self.config.drop_connection_after_submit_rate)
