"""`kubectl runcommand schedule` and `kubectl runcommand trigger`: create a RunCommandSchedule,
and run one of its ticks now, as `kubectl create job --from=cronjob/NAME` does for a CronJob.

A triggered child is named `<schedule>-m<base-36 unix seconds>`: a tick's child name ends in
digits only, so the two never clash. It carries the schedule's label, the annotation
`aks.gitops.dev/instantiate: manual` and a controller ownerReference to the schedule, so the
operator counts it (Forbid, history limits, the last result) like any child.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .fleet import SelectorError, int_or_percent, parse_selector
from .kubectl import API_VERSION, Kubectl
from .words import command_line

SCHEDULE_RESOURCE = "runcommandschedules.aks.gitops.dev"
# The operator's names for them (controller/vocabulary.py, core/schedule_spec.py); checked by
# tests/test_plugin_schedule.py.
SCHEDULE_LABEL = "aks.gitops.dev/runcommandschedule"
INSTANTIATE_ANNOTATION = "aks.gitops.dev/instantiate"
TEMPLATES = {"runCommandTemplate": "RunCommand", "runCommandSetTemplate": "RunCommandSet"}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

ClusterOf = Callable[[argparse.Namespace], dict[str, str]]


def add_commands(commands: Any, common: argparse.ArgumentParser, cluster_of: ClusterOf) -> None:
    """Register `schedule` and `trigger`; `cluster_of` reads --cluster/--resource-id."""
    # `schedule NAME --cron ... -- CMD`: argparse cannot take options after a positional that
    # a REMAINDER follows, so the words after the subcommand are parsed here, in two halves.
    schedule = commands.add_parser(
        "schedule",
        parents=[common],
        help="create a RunCommandSchedule (a CronJob of commands)",
        usage="kubectl runcommand schedule NAME --cron 'M H DOM MON DOW' [--tz ZONE] "
        "(--cluster SUB/RG/NAME | --resource-id ID | --selector ...) [options] -- COMMAND...",
    )
    schedule.add_argument("words", nargs=argparse.REMAINDER, help="NAME [options] -- COMMAND...")
    schedule.set_defaults(handler=lambda kube, args: _schedule(kube, args, cluster_of, common))

    trigger = commands.add_parser(
        "trigger", parents=[common], help="run a schedule's tick now (a child of its own)"
    )
    trigger.add_argument("name")
    trigger.set_defaults(handler=_trigger)


def _schedule_options(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(
        prog="kubectl runcommand schedule", parents=[common], add_help=False
    )
    options.add_argument("name")
    options.add_argument("--cron", required=True, metavar="'M H DOM MON DOW'|@hourly")
    options.add_argument("--tz", metavar="ZONE", help="IANA time zone, such as Europe/Berlin")
    target = options.add_mutually_exclusive_group(required=True)
    target.add_argument("--cluster", metavar="SUB/RG/NAME")
    target.add_argument("--resource-id", metavar="ID")
    target.add_argument(
        "--selector",
        metavar="sub=SUB[,rg=RG][,tag=K=V...]",
        help="every cluster ARM lists there, through a RunCommandSet per tick",
    )
    options.add_argument("--max-concurrency", metavar="N|P%%", help="with --selector")
    options.add_argument("--max-failures", metavar="N|P%%", help="with --selector")
    options.add_argument("--timeout", type=int, metavar="SECONDS", help="spec.timeoutSeconds")
    options.add_argument("--concurrency-policy", choices=["Allow", "Forbid"], default="Allow")
    options.add_argument("--starting-deadline", type=int, metavar="SECONDS")
    return options


def schedule_body(args: argparse.Namespace, command: str, cluster_of: ClusterOf) -> dict[str, Any]:
    run: dict[str, Any] = {"command": command}
    if args.timeout is not None:
        run["timeoutSeconds"] = args.timeout
    spec: dict[str, Any] = {"schedule": args.cron, "concurrencyPolicy": args.concurrency_policy}
    if args.tz:
        spec["timeZone"] = args.tz
    if args.starting_deadline is not None:
        spec["startingDeadlineSeconds"] = args.starting_deadline
    if args.selector is not None:
        template: dict[str, Any] = {
            "template": run,
            "clusterSelector": parse_selector(args.selector),
        }
        for flag, key in ((args.max_concurrency, "maxConcurrency"),
                          (args.max_failures, "maxFailures")):  # fmt: skip
            if flag is not None:
                template[key] = int_or_percent(flag)
        spec["runCommandSetTemplate"] = template
    else:
        spec["runCommandTemplate"] = {"cluster": cluster_of(args), **run}
    return {
        "apiVersion": API_VERSION,
        "kind": "RunCommandSchedule",
        "metadata": {"name": args.name},
        "spec": spec,
    }


def _schedule(
    kube: Kubectl, args: argparse.Namespace, cluster_of: ClusterOf, common: argparse.ArgumentParser
) -> int:
    words = list(args.words)
    split = words.index("--") if "--" in words else len(words)
    _schedule_options(common).parse_args(words[:split], namespace=args)
    command = words[split + 1 :]
    kube = Kubectl(args.kubeconfig, args.context, args.namespace)  # -n may follow NAME
    if not command:
        print("kubectl-runcommand schedule: give the command after --", file=sys.stderr)
        return 2
    if args.tz and available_timezones():  # a machine without a tz database: the CRD decides
        try:
            ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            print(f"kubectl-runcommand schedule: --tz {args.tz!r} is not an IANA time zone "
                  "name (such as Europe/Berlin)", file=sys.stderr)  # fmt: skip
            return 2
    return _create(kube, "schedule", lambda: schedule_body(args, command_line(command), cluster_of))


def manual_child_name(schedule: str, now: float) -> str:
    """`<schedule>-m<base-36 unix seconds>`: never all digits, so never a tick's name."""
    seconds, digits = int(now), ""
    while seconds:
        seconds, digit = divmod(seconds, 36)
        digits = _DIGITS[digit] + digits
    return f"{schedule}-m{digits or '0'}"


def trigger_body(schedule: dict[str, Any], now: float) -> dict[str, Any]:
    """A child of the schedule, from its template, as the operator makes a tick's."""
    metadata, spec = schedule["metadata"], schedule.get("spec") or {}
    given = [k for k in TEMPLATES if spec.get(k) is not None]
    if len(given) != 1:
        raise ValueError(f"runcommandschedule/{metadata['name']} has no single template")
    key = given[0]
    return {
        "apiVersion": API_VERSION,
        "kind": TEMPLATES[key],
        "metadata": {
            "name": manual_child_name(metadata["name"], now),
            "labels": {SCHEDULE_LABEL: metadata["name"]},
            "annotations": {INSTANTIATE_ANNOTATION: "manual"},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "RunCommandSchedule",
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": dict(spec[key]),
    }


def _trigger(kube: Kubectl, args: argparse.Namespace) -> int:
    schedule = kube.get(args.name, SCHEDULE_RESOURCE)
    return _create(kube, "trigger", lambda: trigger_body(schedule, time.time()))


def _create(kube: Kubectl, subcommand: str, build: Callable[[], dict[str, Any]]) -> int:
    """Create what `build` makes; a body it cannot make is a usage error (exit 2)."""
    try:
        body = build()
    except (SelectorError, ValueError) as error:
        print(f"kubectl-runcommand {subcommand}: {error}", file=sys.stderr)
        return 2
    created = kube.create(body)
    print(f"{created['kind'].lower()}/{created['metadata']['name']} created")
    return 0
