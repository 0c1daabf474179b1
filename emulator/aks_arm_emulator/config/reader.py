"""Reading one mapping of the YAML file: typed values, and unknown keys refused by name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def camel_case(name: str) -> str:
    """A dataclass field's name as its YAML key."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Section:
    """Reads typed values out of one mapping and rejects unknown keys."""

    def __init__(self, data: Any, where: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where or 'the document'} must be a mapping")
        self._data: Mapping[str, Any] = data
        self._where = where
        self._used: set[str] = set()

    def _path(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self._data.get(key)

    def has(self, key: str) -> bool:
        return key in self._data

    def names(self) -> list[str]:
        """The keys present, for sections whose keys are data (client ids), not a schema."""
        return [str(key) for key in self._data]

    def string(self, key: str, default: str | None = None) -> str:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise ConfigError(f"{self._path(key)} is required")
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self._path(key)} must be a string")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self._path(key)} must be true or false")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{self._path(key)} must be a number")
        return float(value)

    def integer(self, key: str, default: int | None) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._path(key)} must be an integer")
        return value

    def required_integer(self, key: str, default: int) -> int:
        value = self.integer(key, default)
        assert value is not None  # a default was given
        return value

    def section(self, key: str) -> Section:
        return Section(self.raw(key), self._path(key))

    def finish(self) -> None:
        unknown = sorted(str(key) for key in self._data if key not in self._used)
        if unknown:
            raise ConfigError(
                f"unknown key(s) in {self._where or 'the document'}: {', '.join(unknown)}"
            )
