"""`kubectl runcommand logs NAME`: the whole output of a run, or of each child of a set."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .arguments import at_least_one
from .errors import NotThere, UsageError
from .fleet import SET_RESOURCE
from .kubectl import Kubectl
from .output import output_of, say
from .targets import find


def add_logs(commands: Any, common: argparse.ArgumentParser) -> None:
    logs = commands.add_parser("logs", parents=[common], help="the whole output of a run")
    logs.add_argument(
        "name",
        metavar="NAME",
        help="NAME, runcommand/NAME or runcommandset/NAME (each child's output)",
    )
    logs.add_argument(
        "--run",
        type=at_least_one,
        default=1,
        metavar="N",
        help="1 the latest run, 2 the one before, ...",
    )
    logs.set_defaults(handler=run_logs)


def run_logs(kube: Kubectl, args: argparse.Namespace) -> int:
    resource, body = find(kube, args.name)
    if resource == SET_RESOURCE:
        if args.run != 1:
            raise UsageError("--run is for a RunCommand; each child of a set has its own")
        return _set_logs(kube, args, body)
    status = body.get("status") or {}
    history = status.get("history") or []
    if args.run > max(len(history), 1):
        raise NotThere(f"{args.name} has {len(history)} finished runs, not {args.run}")
    entry = history[-args.run] if history else {}
    text = output_of(kube, status if args.run == 1 else {}, entry.get("logsRef"))
    if args.output == "json":
        print(json.dumps({"name": args.name, "run": entry, "output": text}))
    else:
        sys.stdout.write(text)
    return 0


def _set_logs(kube: Kubectl, args: argparse.Namespace, body: dict[str, Any]) -> int:
    """The output of each child the set's status lists (failures first, at most 50), each
    under a `==> CLUSTER (CHILD, STATE, exit N) <==` line as `tail` heads several files."""
    status = body.get("status") or {}
    clusters = [entry for entry in status.get("clusters") or () if entry.get("child")]
    outputs = []
    for entry in clusters:
        child = kube.get(str(entry["child"]))
        child_status = child.get("status") or {}
        outputs.append(
            {**entry, "output": output_of(kube, child_status, child_status.get("logsRef"))}
        )
    if args.output == "json":
        print(json.dumps({"name": body["metadata"]["name"], "clusters": outputs}))
    else:
        for entry in outputs:
            cluster = str(entry.get("clusterId", "")).rsplit("/", 1)[-1]
            code = entry.get("exitCode")
            ran = f", exit {code}" if code is not None else ""
            sys.stdout.write(f"==> {cluster} ({entry['child']}, {entry.get('state')}{ran}) <==\n")
            sys.stdout.write(entry["output"])
    if int(status.get("total") or 0) > len(clusters):
        say(f"{len(clusters)} of {status.get('total')} clusters shown (status lists 50)")
    return 0
