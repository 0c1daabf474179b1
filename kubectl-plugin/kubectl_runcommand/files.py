"""`invoke -f FILE`: the files read and checked before anything is created, then the ConfigMap
that carries them, owned by the RunCommand from its creation."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

# A ConfigMap key (Kubernetes' IsConfigMapKey) and the API server's limit on one object.
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
MAX_CONFIGMAP_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Files:
    data: dict[str, str]
    binary: dict[str, str]

    def configmap(self, name: str, owner: dict[str, Any]) -> dict[str, Any]:
        """The ConfigMap `<name>-files`, owned by the RunCommand `owner` (as created), so the
        garbage collector takes it with the RunCommand whatever happens to the plugin."""
        reference = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-files", "ownerReferences": [reference]},
            "data": self.data,
        }
        if self.binary:
            body["binaryData"] = self.binary
        return body


def read_files(paths: Sequence[str]) -> Files:
    """Each file under its base name: UTF-8 as data, anything else as binaryData. A file that
    cannot be read, two with one base name, or more than a ConfigMap holds is a usage error."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    size = 0
    for path in paths:
        key = os.path.basename(path.rstrip("/")) or path
        try:
            raw = Path(path).read_bytes()
        except OSError as error:
            raise UsageError(f"-f {path}: {error.strerror or error}") from None
        if not _KEY.match(key):
            raise UsageError(
                f"-f {path}: {key!r} cannot be a ConfigMap key (letters, digits, '-', '_', '.')"
            )
        if key in data or key in binary:
            raise UsageError(f"-f {path}: two files are both named {key}; rename one")
        size += len(raw)
        try:
            data[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(raw).decode()
    if size > MAX_CONFIGMAP_BYTES:
        raise UsageError(f"-f: the files hold {size} bytes; a ConfigMap holds at most 1 MiB")
    return Files(data, binary)
