"""kubectl-runcommand: invoke, wait, logs, rerun. See the README's Pipelines section.

Each subcommand is one `_add_*` function that declares its flags and its handler; SUBCOMMANDS
lists them. A handler takes the Kubectl and the parsed flags and returns the exit code; what
goes wrong is raised as a PluginError (errors.py) and printed as one line by main()."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import stages
from .errors import Interrupted, NotThere, PluginError, UsageError
from .files import Files, read_files
from .fleet import (
    SET_RESOURCE,
    SelectorError,
    int_or_percent,
    parse_selector,
    progress_table,
    set_body,
    set_exit,
)
from .interrupt import deferred_interrupt
from .kubectl import RESOURCE, Kubectl, KubectlError
from .outcome import (
    EXIT_INTERRUPTED,
    EXIT_SET_FAILED,
    EXIT_USAGE,
    EXIT_WAIT_TIMEOUT,
    finished,
    outcome,
)
from .schedule import add_commands as add_schedule_commands
from .stages import add_invoke_flags, ask_to_approve, stages_spec
from .words import command_line

API_VERSION = "aks.gitops.dev/v1alpha1"
POLL_SECONDS = 1.0
Handler = Callable[[Kubectl, argparse.Namespace], int]
Subcommands = "argparse._SubParsersAction[argparse.ArgumentParser]"


class WaitTimeout(PluginError):
    code = EXIT_WAIT_TIMEOUT


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    kube = Kubectl(args.kubeconfig, args.context, args.namespace)
    try:
        return int(args.handler(kube, args))
    except UsageError as error:
        print(f"kubectl-runcommand {args.subcommand}: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    except PluginError as error:
        print(f"kubectl-runcommand: {error.message}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("kubectl-runcommand: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `... | head`: the reader has gone, so has the need to write
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # flushing at exit
        return 141  # as a shell reports a command ended by SIGPIPE


# invoke -------------------------------------------------------------------------------------


def _invoke(kube: Kubectl, args: argparse.Namespace) -> int:
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
        _say(args, f"{progress.kind}/{progress.name} created")
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
        return _follow_and_report(kube, args, name, int(created["metadata"]["generation"]))

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

    return _create_then_follow(
        args, progress, create, lambda created: _follow_set(kube, args, name)
    )


def _follow_set(kube: Kubectl, args: argparse.Namespace, name: str) -> int:
    """A progress table on stderr whenever it changes, then the final table (or, -o json, the
    set's status); exit 0 when every cluster succeeded, EXIT_SET_FAILED otherwise."""
    deadline = None if args.wait_timeout is None else time.monotonic() + args.wait_timeout
    shown = None
    asked: set[str] = set()  # --approve-each: the stages asked about
    while True:
        current = kube.get(name, SET_RESOURCE)
        status = current.get("status") or {}
        table = progress_table(status)
        if table != shown and status.get("state"):
            shown = table
            _say(args, table)
        if finished(current):
            break
        approve_each = getattr(args, "approve_each", False)  # wait and logs follow sets too
        if approve_each and (left := ask_to_approve(kube, name, current, asked=asked)):
            return left
        _pause_until(deadline, args, f"runcommandset/{name}", status)
    code, summary = set_exit(status)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "name": name,
                    "namespace": current["metadata"]["namespace"],
                    "status": status,
                    "pluginExitCode": code,
                }
            )
        )
    else:
        sys.stdout.write(table)
    if summary is not None:
        print(f"kubectl-runcommand: runcommandset/{name}: {summary}", file=sys.stderr)
    return code


# wait, rerun --------------------------------------------------------------------------------

_RUNCOMMAND_KINDS = ("runcommand", "runcommands", "runcmd", RESOURCE)
_SET_KINDS = ("runcommandset", "runcommandsets", "runcmdset", SET_RESOURCE)


def _find(kube: Kubectl, target: str) -> tuple[str, dict[str, Any]]:
    """`NAME`, `runcommand/NAME` or `runcommandset/NAME`: the resource and the object. A bare
    NAME is a RunCommand, else a RunCommandSet (what `invoke --selector --no-wait` printed)."""
    kind, slash, name = target.rpartition("/")
    if slash and kind.lower() in _RUNCOMMAND_KINDS:
        return RESOURCE, kube.get(name)
    if slash and kind.lower() in _SET_KINDS:
        return SET_RESOURCE, kube.get(name, SET_RESOURCE)
    if slash:
        raise UsageError(f"{target}: give NAME, runcommand/NAME or runcommandset/NAME")
    try:
        return RESOURCE, kube.get(name)
    except KubectlError as error:
        if not error.not_found:
            raise
    try:
        return SET_RESOURCE, kube.get(name, SET_RESOURCE)
    except KubectlError as error:
        if not error.not_found:
            raise
        raise NotThere(f"no RunCommand or RunCommandSet named {name}") from None


def _wait(kube: Kubectl, args: argparse.Namespace) -> int:
    resource, body = _find(kube, args.name)
    if resource == SET_RESOURCE:
        return _follow_set(kube, args, body["metadata"]["name"])
    return _follow_and_report(kube, args, body["metadata"]["name"], None)


def _rerun(kube: Kubectl, args: argparse.Namespace) -> int:
    token = f"rerun-{int(time.time())}-{secrets.token_hex(3)}"
    patched = kube.merge_patch(RESOURCE, args.name, {"spec": {"runToken": token}})
    _say(args, f"runcommand/{args.name} spec.runToken={token}")
    if not args.wait:
        return 0
    return _follow_and_report(kube, args, args.name, int(patched["metadata"]["generation"]))


def _follow_and_report(
    kube: Kubectl, args: argparse.Namespace, name: str, generation: int | None
) -> int:
    """Print state changes until the run of `generation` (or of the generation current at each
    look) has ended; then its whole output, and exit as it did."""
    deadline = None if args.wait_timeout is None else time.monotonic() + args.wait_timeout
    last = None
    while True:
        body = kube.get(name)
        status = body.get("status") or {}
        seen = (status.get("state"), status.get("reason"), status.get("observedGeneration"))
        wanted = generation if generation is not None else int(body["metadata"]["generation"])
        current = int(status.get("observedGeneration") or 0) >= wanted
        if seen != last and status.get("state") and current:  # not the previous run's state
            last = seen
            _say(
                args,
                f"{status.get('state')}: {status.get('reason', '')}: {status.get('message', '')}",
            )
        at_least = generation is None or int(body["metadata"]["generation"]) >= generation
        if at_least and finished(body):
            break
        _pause_until(deadline, args, f"runcommand/{name}", status)
    result = outcome(status)
    text = _output_of(kube, status, status.get("logsRef"))
    if args.output == "json":
        print(json.dumps(_summary(body, text, result.code)))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if result.reason is not None:
        print(f"kubectl-runcommand: {name}: {result.reason}", file=sys.stderr)
    return result.code


def _pause_until(
    deadline: float | None, args: argparse.Namespace, what: str, status: dict[str, Any]
) -> None:
    """Wait one poll interval, or raise WaitTimeout once --wait-timeout has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise WaitTimeout(
            f"{what} had not finished after {args.wait_timeout}s (state {status.get('state')})"
        )
    time.sleep(POLL_SECONDS)


def _summary(body: dict[str, Any], output: str, code: int) -> dict[str, Any]:
    status = body.get("status") or {}
    keys = ("state", "reason", "message", "exitCode", "commandId", "correlationId", "logsRef")
    return {
        "name": body["metadata"]["name"],
        "namespace": body["metadata"]["namespace"],
        "generation": body["metadata"]["generation"],
        **{key: status.get(key) for key in keys},
        "pluginExitCode": code,
        "output": output,
    }


# logs ---------------------------------------------------------------------------------------


def _logs(kube: Kubectl, args: argparse.Namespace) -> int:
    resource, body = _find(kube, args.name)
    if resource == SET_RESOURCE:
        if args.run != 1:
            raise UsageError("--run is for a RunCommand; each child of a set has its own")
        return _set_logs(kube, args, body)
    status = body.get("status") or {}
    history = status.get("history") or []
    if args.run > max(len(history), 1):
        raise NotThere(f"{args.name} has {len(history)} finished runs, not {args.run}")
    entry = history[-args.run] if history else {}
    text = _output_of(kube, status if args.run == 1 else {}, entry.get("logsRef"))
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
            {**entry, "output": _output_of(kube, child_status, child_status.get("logsRef"))}
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
        _say(args, f"{len(clusters)} of {status.get('total')} clusters shown (status lists 50)")
    return 0


def _output_of(kube: Kubectl, status: dict[str, Any], ref: dict[str, Any] | None) -> str:
    """The whole output from its ConfigMap or Secret; status.logs (the tail) when there is
    none (spec.output None, or an operator from before logsRef)."""
    import base64

    if not ref:
        return str(status.get("logs") or "")
    kind = "secret" if ref.get("kind") == "Secret" else "configmap"
    key = ref.get("key", "output")
    obj = kube.json("get", kind, str(ref["name"]))
    if kind == "configmap" and key in (obj.get("data") or {}):
        return str(obj["data"][key])
    encoded = (obj.get("binaryData") or obj.get("data") or {}).get(key, "")
    return base64.b64decode(encoded).decode("utf-8", errors="replace")


# the command line ---------------------------------------------------------------------------


def _say(args: argparse.Namespace, line: str) -> None:
    """Progress for people, on stderr: stdout carries only the output (or the JSON)."""
    print(line, file=sys.stderr, flush=True)


def _cluster(text: str) -> dict[str, str]:
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not SUBSCRIPTION/RESOURCE_GROUP/NAME")
    return {"subscriptionId": parts[0], "resourceGroup": parts[1], "name": parts[2]}


def _cluster_of(args: argparse.Namespace) -> dict[str, str]:
    """--cluster or --resource-id, for the subcommands that parse them as plain strings."""
    if args.resource_id:
        return {"resourceId": args.resource_id}
    try:
        return _cluster(args.cluster)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"--cluster: {error}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least 1")
    return value


def _add_invoke(commands: Any, common: argparse.ArgumentParser) -> None:
    invoke = commands.add_parser(
        "invoke",
        parents=[common],
        help="run a command and follow it",
        description="Run COMMAND on a cluster (or, --selector, a fleet) and follow it. One word "
        "after -- is a shell command line as it stands (-- 'echo a; exit 3'); several words are "
        "each quoted, so they arrive exactly as given, as with kubectl exec "
        "(-- bash -c 'echo a; exit 3').",
    )
    target = invoke.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--cluster",
        type=_cluster,
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
        type=_at_least_one,
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
    invoke.set_defaults(handler=_invoke)


def _add_wait(commands: Any, common: argparse.ArgumentParser) -> None:
    wait = commands.add_parser(
        "wait", parents=[common], help="wait for the current run of a RunCommand or set"
    )
    wait.add_argument("name", metavar="NAME", help="NAME, runcommand/NAME or runcommandset/NAME")
    wait.set_defaults(handler=_wait)


def _add_logs(commands: Any, common: argparse.ArgumentParser) -> None:
    logs = commands.add_parser("logs", parents=[common], help="the whole output of a run")
    logs.add_argument(
        "name",
        metavar="NAME",
        help="NAME, runcommand/NAME or runcommandset/NAME (each child's output)",
    )
    logs.add_argument(
        "--run",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="1 the latest run, 2 the one before, ...",
    )
    logs.set_defaults(handler=_logs)


def _add_rerun(commands: Any, common: argparse.ArgumentParser) -> None:
    rerun = commands.add_parser("rerun", parents=[common], help="bump spec.runToken")
    rerun.add_argument("name", metavar="NAME")
    rerun.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="follow the new run and exit as it did",
    )
    rerun.set_defaults(handler=_rerun)


# One function per subcommand: it adds its parser (with `common`'s flags) and its handler.
SUBCOMMANDS: tuple[Callable[[Any, argparse.ArgumentParser], None], ...] = (
    _add_invoke,
    _add_wait,
    _add_logs,
    _add_rerun,
    stages.register,  # approve, status
    lambda commands, common: add_schedule_commands(commands, common, _cluster_of),  # schedule
)


class _Parser(argparse.ArgumentParser):
    """A usage error in one line, as every other error of the plugin (argparse prints the
    whole usage first); `--help` has it."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.replace("kubectl runcommand", "kubectl-runcommand", 1)
        self.exit(EXIT_USAGE, f"{where}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="passed to kubectl")
    common.add_argument("--context", help="passed to kubectl")
    common.add_argument("-n", "--namespace", help="passed to kubectl")
    common.add_argument(
        "-o",
        "--output",
        choices=["text", "json"],
        default="text",
        help="json: one JSON object on stdout instead of the output",
    )
    common.add_argument(
        "--wait-timeout",
        type=_seconds,
        metavar="SECONDS",
        help=f"stop waiting after this long (exit {EXIT_WAIT_TIMEOUT}); the run goes on",
    )
    parser = _Parser(
        prog="kubectl runcommand",
        description="Run commands on AKS clusters through aks-runcommand-operator RunCommands.",
        epilog="Exit codes: the command's own; 120 ARM or operator error; 121 timeoutSeconds "
        "passed; 122 outcome unknown; 123 a cluster of a --selector set failed; "
        "124 --wait-timeout passed; 125 kubectl or API error, or not there; 2 usage error; "
        "130 Ctrl-C (the line on stderr says what runs on).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="subcommand")
    for add in SUBCOMMANDS:
        add(commands, common)
    return parser


if __name__ == "__main__":
    sys.exit(main())
