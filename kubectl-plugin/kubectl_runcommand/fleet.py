"""`kubectl runcommand invoke --selector ...`: the pure parts of running one command on a fleet
through a RunCommandSet: the selector flag as the set's spec, the progress table, the exit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .outcome import EXIT_SET_FAILED

SET_RESOURCE = "runcommandsets.aks.gitops.dev"


class SelectorError(ValueError):
    """The --selector value cannot be read; the message says which part and why."""


def parse_selector(text: str) -> dict[str, Any]:
    """`sub=SUB[,sub=SUB2][,rg=RG...][,tag=KEY=VALUE...]` as a clusterSelector: subscriptions
    and resource groups are lists (repeat the key), tags are ANDed equalities (matchTags)."""
    subscriptions: list[str] = []
    groups: list[str] = []
    tags: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise SelectorError(f"--selector: {part!r} is not KEY=VALUE (sub=, rg= or tag=K=V)")
        if key == "sub":
            subscriptions.append(value)
        elif key == "rg":
            groups.append(value)
        elif key == "tag":
            tag, sep, tag_value = value.partition("=")
            if not sep or not tag:
                raise SelectorError(f"--selector: {part!r}: a tag is tag=KEY=VALUE")
            if tags.get(tag, tag_value) != tag_value:
                raise SelectorError(f"--selector: tag {tag!r} is given two different values")
            tags[tag] = tag_value
        else:
            raise SelectorError(f"--selector: unknown key {key!r}; use sub=, rg= or tag=K=V")
    if not subscriptions:
        raise SelectorError("--selector needs at least one sub=SUBSCRIPTION_ID")
    selector: dict[str, Any] = {"subscriptions": subscriptions}
    if groups:
        selector["resourceGroups"] = groups
    if tags:
        selector["matchTags"] = tags
    return selector


def int_or_percent(text: str) -> int | str:
    """maxConcurrency/maxFailures: a number, or a percentage of the targets as the CRD takes it."""
    if text.endswith("%") and text[:-1].isdigit():
        return text
    if text.isdigit():
        return int(text)
    raise SelectorError(f"{text!r} is neither a number nor a percentage like 25%")


def set_body(
    name: str,
    selector: dict[str, Any],
    template: dict[str, Any],
    max_concurrency: int | str | None,
    max_failures: int | str | None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template, "clusterSelector": selector}
    if max_concurrency is not None:
        spec["maxConcurrency"] = max_concurrency
    if max_failures is not None:
        spec["maxFailures"] = max_failures
    return {
        "apiVersion": "aks.gitops.dev/v1alpha1",
        "kind": "RunCommandSet",
        "metadata": {"name": name},
        "spec": spec,
    }


def progress_table(status: dict[str, Any]) -> str:
    """One line of counts, then cluster, child, state and exit code per cluster (failures
    first, as the operator sorts them; status holds at most 50)."""
    counts = " ".join(
        f"{key}={status.get(key, 0)}"
        for key in ("total", "pending", "running", "succeeded", "failed", "unknown")
    )
    rows: list[Sequence[str]] = [("CLUSTER", "CHILD", "STATE", "EXIT")]
    for entry in status.get("clusters") or ():
        exit_code = entry.get("exitCode")
        rows.append(
            (
                str(entry.get("clusterId", "")).rsplit("/", 1)[-1],
                str(entry.get("child", "")),
                str(entry.get("state", "")),
                "" if exit_code is None else str(exit_code),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    head = f"{status.get('state', 'Pending')}: {status.get('message', '')} ({counts})"
    return "\n".join([head, *lines]) + "\n"


def set_exit(status: dict[str, Any]) -> tuple[int, str | None]:
    """0 when every cluster succeeded; EXIT_SET_FAILED and a one-line summary otherwise."""
    if status.get("state") == "Succeeded":
        return 0, None
    failed = [
        f"{str(e.get('clusterId', '')).rsplit('/', 1)[-1]} ({e.get('reason') or e.get('state')})"
        for e in status.get("clusters") or ()
        if e.get("state") in ("Failed", "Unknown")
    ]
    summary = f"{status.get('reason', '')}: {status.get('message', '')}".strip()
    if failed:
        summary += "; failed: " + ", ".join(failed)
    return EXIT_SET_FAILED, summary
