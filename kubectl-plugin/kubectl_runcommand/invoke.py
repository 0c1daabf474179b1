"""`kubectl runcommand invoke -- COMMAND`: create a RunCommand (or, --selector, a RunCommandSet)
and follow it. What exists so far is tracked so that a Ctrl-C says what runs on."""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Callable
from typing import Any

from .arguments import at_least_one, cluster
from .errors import Interrupted, UsageError
from .files import Files, read_files
from .fleet import SelectorError, int_or_percent, parse_selector, set_body
from .follow import follow_run, follow_set
from .interrupt import deferred_interrupt
from .kubectl import API_VERSION, RESOURCE, Kubectl, KubectlError
from .outcome import EXIT_SET_FAILED
from .output import say
from .stages import add_invoke_flags, stages_spec
from .words import command_line


def add_invoke(commands: Any, common: argparse.ArgumentParser) -> None:
    invoke = commands.add_parser(
        "invoke",
        parents=[common],
        help="run a command and follow it",
        description="Run COMMAND on a cluster (or, --selector, a fleet) and follow it. One word "
        "after -- is a shell command line as it stands (-- 'echo a; exit 3'); several words are "
        "each quoted, so they arrive exactly as given, as with kubectl exec "
        "(-- bash -c 'echo a; exit 3').",
    )
    _add_target_flags(invoke)
    invoke.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="send FILE along, in the command's working directory under its base name (repeatable)",
    )
    invoke.add_argument(
        "--timeout",
        type=at_least_one,
        metavar="SECONDS",
        help="spec.timeoutSeconds: give up on the run after this long",
    )
    invoke.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow the run and exit as it did (default); --no-wait prints the name and exits 0",
    )
    add_invoke_flags(invoke)
    invoke.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="-- COMMAND [ARG...]: one word is a shell line, several are quoted",
    )
    invoke.set_defaults(handler=run_invoke)


def _add_target_flags(invoke: argparse.ArgumentParser) -> None:
    """Where the command runs: one cluster, or the fleet a selector finds and its bounds."""
    target = invoke.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--cluster",
        type=cluster,
        metavar="SUB/RG/NAME",
        help="the AKS cluster: subscription id, resource group and name",
    )
    target.add_argument(
        "--resource-id",
        metavar="ID",
        help="the AKS cluster by its ARM resource id, /subscriptions/...",
    )
    target.add_argument(
        "--selector",
        metavar="sub=SUB[,rg=RG][,tag=K=V...]",
        help="every cluster ARM lists there with these tags, through a RunCommandSet "
        f"(exit {EXIT_SET_FAILED} if any failed)",
    )
    invoke.add_argument(
        "--max-concurrency",
        metavar="N|P%",
        help="with --selector: clusters run at once, a number or a percentage",
    )
    invoke.add_argument(
        "--max-failures",
        metavar="N|P%",
        help="with --selector: failures before no new cluster starts",
    )


def run_invoke(kube: Kubectl, args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("give the command after --")
    if args.selector is None:
        for flag, value in (("--max-concurrency", args.max_concurrency),
                            ("--max-failures", args.max_failures)):  # fmt: skip
            if value is not None:
                raise UsageError(f"{flag} applies only with --selector")
        files = read_files(args.file) if args.file else None
        return _invoke_one(kube, args, command_line(command), files)
    if args.file:
        raise UsageError("-f is not supported with --selector yet")
    return _invoke_set(kube, args, command_line(command))


class Progress:
    """What exists so far, as the line a Ctrl-C prints (see _create_then_follow)."""

    def __init__(self, kind: str, name: str, namespace: str | None) -> None:
        self.kind, self.name = kind, name
        self.where = f" -n {namespace}" if namespace else ""
        self.line = "nothing was created"

    def creating(self) -> None:
        self.line = (
            f"{self.kind}/{self.name} may have been created; "
            f"check: kubectl get {self.kind} {self.name}{self.where}"
        )

    def created(self, body: dict[str, Any], line: str | None = None) -> None:
        self.where = f" -n {body['metadata']['namespace']}"
        self.line = line or (
            f"{self.kind}/{self.name} was created and runs on; follow it with: "
            f"kubectl runcommand wait {self.name}{self.where}"
        )


def _create_then_follow(
    args: argparse.Namespace,
    progress: Progress,
    create: Callable[[], dict[str, Any]],
    follow: Callable[[dict[str, Any]], int],
) -> int:
    """`create` under deferred_interrupt: a Ctrl-C lets it finish, so the line it prints (exit
    130) says what exists and how to follow it; the same during `follow`."""
    try:
        with deferred_interrupt(f"creating {progress.kind}/{progress.name}"):
            created = create()
        say(f"{progress.kind}/{progress.name} created")
        if not args.wait:
            if args.output == "json":
                namespace = created["metadata"]["namespace"]
                print(json.dumps({"name": progress.name, "namespace": namespace}))
            else:
                print(progress.name)
            return 0
        return follow(created)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {progress.line}") from None


def _invoke_one(kube: Kubectl, args: argparse.Namespace, command: str, files: Files | None) -> int:
    """Create the RunCommand, then follow it. With files, it is created suspended, then its
    ConfigMap owned by it, then resumed: the files are never without an owner, and the first
    submission finds them."""
    name = f"invoke-{secrets.token_hex(4)}"
    spec: dict[str, Any] = {"cluster": args.cluster or {"resourceId": args.resource_id}}
    spec["command"] = command
    if args.timeout is not None:
        spec["timeoutSeconds"] = args.timeout
    if files is not None:
        spec["filesFrom"] = [{"configMapRef": {"name": f"{name}-files"}}]
        spec["suspend"] = True
    progress = Progress("runcommand", name, args.namespace)

    def create() -> dict[str, Any]:
        progress.creating()
        body = {"apiVersion": API_VERSION, "kind": "RunCommand", "metadata": {"name": name}}
        created = kube.create({**body, "spec": spec})
        if files is None:
            progress.created(created)
            return created
        where = f" -n {created['metadata']['namespace']}"
        progress.created(
            created,
            f"runcommand/{name} was created suspended and does not run; remove it (and its "
            f"files): kubectl delete runcommand {name}{where}",
        )
        _attach_files(kube, name, created, files, where)
        resumed = kube.merge_patch(RESOURCE, name, {"spec": {"suspend": False}})
        progress.created(resumed)
        return resumed

    def follow(created: dict[str, Any]) -> int:
        return follow_run(kube, args, name, int(created["metadata"]["generation"]))

    return _create_then_follow(args, progress, create, follow)


def _attach_files(
    kube: Kubectl, name: str, created: dict[str, Any], files: Files, where: str
) -> None:
    try:
        kube.create(files.configmap(name, created))
    except KubectlError as error:
        try:
            kube.delete(RESOURCE, name)
            left = f"so runcommand/{name} was deleted again"
        except KubectlError:
            left = f"runcommand/{name} is left suspended: kubectl delete runcommand {name}{where}"
        raise KubectlError(f"the files ConfigMap: {error.message}; {left}") from None


def _invoke_set(kube: Kubectl, args: argparse.Namespace, command: str) -> int:
    """The command on every cluster the selector finds, through a RunCommandSet."""
    try:
        body = set_body(
            f"invoke-{secrets.token_hex(4)}",
            parse_selector(args.selector),
            {"command": command, **({"timeoutSeconds": args.timeout} if args.timeout else {})},
            None if args.max_concurrency is None else int_or_percent(args.max_concurrency),
            None if args.max_failures is None else int_or_percent(args.max_failures),
        )
        body["spec"].update(stages_spec(args.stage, args.approve_each))
    except SelectorError as error:
        raise UsageError(str(error)) from None
    name = body["metadata"]["name"]
    progress = Progress("runcommandset", name, args.namespace)

    def create() -> dict[str, Any]:
        progress.creating()
        created = kube.create(body)
        progress.created(created)
        return created

    return _create_then_follow(args, progress, create, lambda created: follow_set(kube, args, name))
