"""The runtime's logger and the fields of its log lines about one RunCommand."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controller.core import RunSpec
from controller.kube import ObjectRef
from controller.vocabulary import API_VERSION, RUNCOMMAND_KIND

logger = logging.getLogger("controller.runtime")


def log_fields(
    ref: ObjectRef, spec: RunSpec | None = None, status: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`extra=` for a log line about one RunCommand. kopf's JSON format (--log-format json)
    turns k8s_ref into an `object` field (namespace, name, uid) as for its own lines, and keeps
    the rest as fields: cluster (the ARM id), commandId and correlationId when there are any."""
    fields: dict[str, Any] = {
        "k8s_ref": {"apiVersion": API_VERSION, "kind": RUNCOMMAND_KIND,
                    "namespace": ref.namespace, "name": ref.name, "uid": ref.uid},
    }  # fmt: skip
    if spec is not None:
        fields["cluster"] = spec.cluster.resource_id
    elif status and status.get("clusterId"):
        fields["cluster"] = status["clusterId"]
    for key in ("commandId", "correlationId"):
        if status and status.get(key):
            fields[key] = status[key]
    return fields


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
