"""`kubectl runcommand rerun NAME`: a new run, by a new spec.runToken."""

from __future__ import annotations

import argparse
import secrets
import time
from typing import Any

from .follow import follow_run
from .kubectl import RESOURCE, Kubectl
from .output import say


def add_rerun(commands: Any, common: argparse.ArgumentParser) -> None:
    rerun = commands.add_parser("rerun", parents=[common], help="bump spec.runToken")
    rerun.add_argument("name", metavar="NAME")
    rerun.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="follow the new run and exit as it did",
    )
    rerun.set_defaults(handler=run_rerun)


def run_rerun(kube: Kubectl, args: argparse.Namespace) -> int:
    token = f"rerun-{int(time.time())}-{secrets.token_hex(3)}"
    patched = kube.merge_patch(RESOURCE, args.name, {"spec": {"runToken": token}})
    say(f"runcommand/{args.name} spec.runToken={token}")
    if not args.wait:
        return 0
    return follow_run(kube, args, args.name, int(patched["metadata"]["generation"]))
