"""`kubectl runcommand wait NAME`: follow the current run of a RunCommand or a set."""

from __future__ import annotations

import argparse
from typing import Any

from .fleet import SET_RESOURCE
from .follow import follow_run, follow_set
from .kubectl import Kubectl
from .targets import find


def add_wait(commands: Any, common: argparse.ArgumentParser) -> None:
    wait = commands.add_parser(
        "wait", parents=[common], help="wait for the current run of a RunCommand or set"
    )
    wait.add_argument("name", metavar="NAME", help="NAME, runcommand/NAME or runcommandset/NAME")
    wait.set_defaults(handler=run_wait)


def run_wait(kube: Kubectl, args: argparse.Namespace) -> int:
    resource, body = find(kube, args.name)
    if resource == SET_RESOURCE:
        return follow_set(kube, args, body["metadata"]["name"])
    return follow_run(kube, args, body["metadata"]["name"], None)
