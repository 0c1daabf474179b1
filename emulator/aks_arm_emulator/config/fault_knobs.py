"""The `faults:` section, also the body of `POST /_emulator/faults`: what goes wrong on
purpose, and how often."""

from __future__ import annotations

import dataclasses
from typing import Any

from .reader import ConfigError, Section, camel_case


@dataclasses.dataclass(frozen=True)
class FaultsConfig:
    """Every field is a knob of the `faults:` section (camelCase of the field name) and of
    `POST /_emulator/faults`; the field's default decides its YAML type (bool, int, float)."""

    seed: int = 0
    server_error_rate: float = 0.0
    throttle_rate: float = 0.0
    latency_seconds: float = 0.0
    # Held before a runCommand POST is accepted (validation done, command not started yet).
    submit_latency_seconds: float = 0.0
    # Held before a commandResults GET is answered.
    poll_latency_seconds: float = 0.0
    drop_connection_after_submit_rate: float = 0.0
    # A submit whose client went away before acceptance still runs, as a request that has
    # reached the resource provider would; false: it is abandoned before the command starts.
    run_abandoned_submits: bool = True
    pod_never_starts: bool = False
    # The live service gives the command pod 30 s to start.
    pod_start_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        validate_faults(self)


def validate_faults(faults: FaultsConfig) -> None:
    for field in dataclasses.fields(faults):
        value = getattr(faults, field.name)
        key = f"faults.{camel_case(field.name)}"
        if field.name.endswith("_rate") and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key} must be between 0 and 1")
        if field.name.endswith("_seconds") and value < 0:
            raise ConfigError(f"{key} must be >= 0")


def faults_from_mapping(data: Any, base: FaultsConfig | None = None) -> FaultsConfig:
    """The `faults:` section (or a `POST /_emulator/faults` body) laid over `base`: keys not
    given keep base's value. Raises ConfigError naming the key, like the YAML loader."""
    start = base or FaultsConfig()
    section = Section(data, "faults")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(FaultsConfig):
        key, current = camel_case(field.name), getattr(start, field.name)
        # bool before int: a bool is an int in Python.
        if isinstance(current, bool):
            values[field.name] = section.boolean(key, current)
        elif isinstance(current, int):
            values[field.name] = section.required_integer(key, current)
        else:
            values[field.name] = section.number(key, current)
    section.finish()
    return FaultsConfig(**values)


def faults_to_mapping(faults: FaultsConfig) -> dict[str, Any]:
    return {camel_case(f.name): getattr(faults, f.name) for f in dataclasses.fields(faults)}
