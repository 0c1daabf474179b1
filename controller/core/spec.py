"""RunCommand spec, parsed into a typed value, and the hash that identifies a run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from controller.arm import ClusterRef

# The fields that define a run, and the CRD defaults they may carry. A field listed here counts
# only when it differs from its default, so a later CRD that adds a defaulted field, or a
# manifest that spells a default out, never turns finished runs into new ones. suspend and
# ttlSecondsAfterFinished change nothing about *what* runs, so they are not listed.
_RUN_FIELDS: Mapping[str, object] = {
    "cluster": None,
    "command": None,
    "files": None,
    "filesFrom": None,
    "context": None,
    "credentials": None,
    "clusterToken": "Auto",
    "timeoutSeconds": None,
    "retries": 3,
    "runToken": None,
    "submitPolicy": "AtMostOnce",
}


class InvalidSpec(ValueError):
    """The spec passed the CRD schema but still cannot be run (e.g. an older CRD installed)."""


@dataclass(frozen=True)
class FilesSource:
    kind: Literal["ConfigMap", "Secret"]
    name: str
    keys: tuple[str, ...]
    path_prefix: str


@dataclass(frozen=True)
class RunSpec:
    cluster: ClusterRef
    cloud: str | None
    command: str
    files: Mapping[str, str]
    files_from: tuple[FilesSource, ...]
    context: str | None
    credentials_secret: str | None
    cluster_token: Literal["Auto", "Always", "Never"]
    timeout_seconds: int | None
    retries: int
    run_token: str | None
    suspend: bool
    ttl_seconds_after_finished: int | None
    at_least_once: bool
    run_hash: str

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> RunSpec:
        try:
            return cls._parse(spec)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidSpec(f"invalid spec: {error}") from error

    @classmethod
    def _parse(cls, spec: Mapping[str, Any]) -> RunSpec:
        cluster = spec["cluster"]
        if "resourceId" in cluster:
            ref = ClusterRef.parse(cluster["resourceId"])
        else:
            ref = ClusterRef(cluster["subscriptionId"], cluster["resourceGroup"], cluster["name"])
        command = str(spec["command"])
        if not command.strip():
            raise ValueError("spec.command is blank")
        files_from = tuple(
            FilesSource(
                kind="ConfigMap" if "configMapRef" in source else "Secret",
                name=(source.get("configMapRef") or source["secretRef"])["name"],
                keys=tuple(source.get("keys") or ()),
                path_prefix=source.get("pathPrefix", ""),
            )
            for source in spec.get("filesFrom") or ()
        )
        return cls(
            cluster=ref,
            cloud=cluster.get("cloud"),
            command=command,
            files=dict(spec.get("files") or {}),
            files_from=files_from,
            context=spec.get("context"),
            credentials_secret=((spec.get("credentials") or {}).get("secretRef") or {}).get("name"),
            cluster_token=spec.get("clusterToken", "Auto"),
            timeout_seconds=spec.get("timeoutSeconds"),
            retries=int(spec.get("retries", 3)),
            run_token=spec.get("runToken"),
            suspend=bool(spec.get("suspend", False)),
            ttl_seconds_after_finished=spec.get("ttlSecondsAfterFinished"),
            at_least_once=spec.get("submitPolicy", "AtMostOnce") == "AtLeastOnce",
            run_hash=run_hash(spec),
        )


def run_hash(spec: Mapping[str, Any]) -> str:
    """A stable digest of everything that defines a run: equal hashes, same run."""
    relevant = {
        key: spec[key]
        for key, default in _RUN_FIELDS.items()
        if key in spec and spec[key] is not None and spec[key] != default
    }
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
