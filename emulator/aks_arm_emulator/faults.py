"""Injected faults, drawn from one seeded generator so a test run is reproducible.

The knobs can change while the emulator runs (`POST /_emulator/faults`), so a chaos test can
switch faults on and off between phases; a change applies to requests that arrive after it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .config import FaultsConfig, faults_from_mapping


class FaultInjector:
    def __init__(self, config: FaultsConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)  # noqa: S311 - reproducibility, not security

    def update(self, changes: Mapping[str, Any]) -> FaultsConfig:
        """Lay camelCase `changes` over the current knobs; ConfigError leaves them untouched.

        The generator is reseeded only when `seed` is given, so switching one knob does not
        restart the sequence of the others."""
        updated = faults_from_mapping(changes, base=self.config)
        if "seed" in changes:
            self._random = random.Random(updated.seed)  # noqa: S311
        self.config = updated
        return updated

    def _draw(self, rate: float) -> bool:
        # Draw only when the knob is on, so enabling one knob does not shift another's sequence.
        return rate > 0.0 and self._random.random() < rate

    def server_error(self) -> bool:
        return self._draw(self.config.server_error_rate)

    def throttled(self) -> bool:
        return self._draw(self.config.throttle_rate)

    def drop_after_submit(self) -> bool:
        return self._draw(self.config.drop_connection_after_submit_rate)
