"""RunCommand spec, parsed into a typed value, and the hash that identifies a run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from controller.arm.models import ClusterRef, ClusterTokenMode

# The fields that define *what* runs, and the CRD defaults they may carry. A field listed here
# counts only when it differs from its default, so a later CRD that adds a defaulted field, or a
# manifest that spells a default out, never turns finished runs into new ones. The other fields
# (timeoutSeconds, retries, submitPolicy, suspend, ttlSecondsAfterFinished, output) only govern
# how a run is watched: changing them applies to the current run and never submits again, the way a
# Job's activeDeadlineSeconds may change while its pods run.
_RUN_FIELDS: Mapping[str, object] = {
    "cluster": None,
    "command": None,
    "files": None,
    "filesFrom": None,
    "context": None,
    "credentials": None,
    "clusterToken": "Auto",
    "runToken": None,
}
# Before v0.2 these watch fields were hashed too. A status written then still names its run by
# that hash; accepting it keeps an upgrade from re-running every finished RunCommand.
_LEGACY_RUN_FIELDS: Mapping[str, object] = {
    **_RUN_FIELDS,
    "timeoutSeconds": None,
    "retries": 3,
    "submitPolicy": "AtMostOnce",
}
# The CRD's maxima (a test checks they agree). An object stored under an older CRD may exceed
# them; the core clamps rather than overflow datetime arithmetic.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_TTL_SECONDS = 366 * 24 * 3600
MAX_RETRIES = 20


_TOKEN_MODES: Mapping[str, ClusterTokenMode] = {
    "Auto": "auto",
    "Always": "always",
    "Never": "never",
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
    legacy_run_hash: str
    output: Literal["ConfigMap", "Secret", "None"] = "ConfigMap"  # where the full output goes
    # submitPolicy ExactlyOnce: a fence in the target makes resubmissions safe (core/fence.py).
    exactly_once: bool = False

    @property
    def cluster_token_mode(self) -> ClusterTokenMode:
        """spec.clusterToken in the ARM client's spelling."""
        return _TOKEN_MODES[self.cluster_token]

    def defines(self, spec_hash: object) -> bool:
        """Whether a status's specHash names the run this spec defines (today's or a legacy
        hash), i.e. whether the spec has not moved on since that run was started."""
        return spec_hash in (self.run_hash, self.legacy_run_hash)

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> RunSpec:
        try:
            return cls._parse(spec)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidSpec(f"invalid spec: {error}") from error

    @classmethod
    def _parse(cls, spec: Mapping[str, Any]) -> RunSpec:
        cluster = spec["cluster"]
        ref = cluster_ref(cluster)
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
            timeout_seconds=_clamp(spec.get("timeoutSeconds"), 1, MAX_TIMEOUT_SECONDS),
            retries=_clamp(spec.get("retries", 3), 0, MAX_RETRIES) or 0,
            run_token=spec.get("runToken"),
            suspend=bool(spec.get("suspend", False)),
            ttl_seconds_after_finished=_clamp(
                spec.get("ttlSecondsAfterFinished"), 0, MAX_TTL_SECONDS
            ),
            at_least_once=spec.get("submitPolicy", "AtMostOnce") == "AtLeastOnce",
            run_hash=run_hash(spec),
            legacy_run_hash=run_hash(spec, _LEGACY_RUN_FIELDS),
            output=_output_kind(spec.get("output")),
            exactly_once=spec.get("submitPolicy") == "ExactlyOnce",
        )


_OUTPUT_KINDS: tuple[Literal["ConfigMap", "Secret", "None"], ...] = ("ConfigMap", "Secret", "None")


def _output_kind(output: object) -> Literal["ConfigMap", "Secret", "None"]:
    kind = output.get("kind", "ConfigMap") if isinstance(output, dict) else "ConfigMap"
    for known in _OUTPUT_KINDS:
        if kind == known:
            return known
    raise ValueError(f"spec.output.kind must be ConfigMap, Secret or None, not {kind!r}")


def _clamp(value: object, lowest: int, highest: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return int(min(max(value, lowest), highest))


def run_hash(spec: Mapping[str, Any], fields: Mapping[str, object] = _RUN_FIELDS) -> str:
    """A stable digest of everything that defines a run: equal hashes, same run."""
    relevant = {
        key: spec[key]
        for key, default in fields.items()
        if key in spec and spec[key] is not None and spec[key] != default
    }
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def cluster_ref(cluster: Mapping[str, Any]) -> ClusterRef:
    """A spec's cluster: by ARM resource id, or by subscription, resource group and name."""
    if "resourceId" in cluster:
        return ClusterRef.parse(cluster["resourceId"])
    return ClusterRef(cluster["subscriptionId"], cluster["resourceGroup"], cluster["name"])
