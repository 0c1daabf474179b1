"""kubectl-runcommand: invoke, wait, logs, rerun. See the README's Pipelines section."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .fleet import (
    SET_RESOURCE,
    SelectorError,
    int_or_percent,
    parse_selector,
    progress_table,
    set_body,
    set_exit,
)
from .kubectl import RESOURCE, Kubectl, KubectlError
from .outcome import EXIT_KUBECTL, EXIT_SET_FAILED, EXIT_WAIT_TIMEOUT, finished, outcome

API_VERSION = "aks.gitops.dev/v1alpha1"
POLL_SECONDS = 1.0


class WaitTimeout(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    kube = Kubectl(args.kubeconfig, args.context, args.namespace)
    try:
        return int(args.handler(kube, args))
    except KubectlError as error:
        print(f"kubectl-runcommand: {error}", file=sys.stderr)
        return EXIT_KUBECTL
    except WaitTimeout as error:
        print(f"kubectl-runcommand: {error}", file=sys.stderr)
        return EXIT_WAIT_TIMEOUT
    except KeyboardInterrupt:
        return 130


# invoke -------------------------------------------------------------------------------------


def _invoke(kube: Kubectl, args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("kubectl-runcommand invoke: give the command after --", file=sys.stderr)
        return 2
    if args.selector is not None:
        return _invoke_set(kube, args, command)
    name = f"invoke-{secrets.token_hex(4)}"
    spec: dict[str, Any] = {"cluster": _cluster(args), "command": " ".join(command)}
    if args.timeout is not None:
        spec["timeoutSeconds"] = args.timeout
    files = _files_configmap(name, args.file) if args.file else None
    if files is not None:
        # The ConfigMap exists before the RunCommand that reads it, so the first submission
        # finds it; it is handed to the RunCommand (ownerReference) right after, so it goes
        # with it. Only a plugin killed in between leaves it behind.
        kube.create(files)
        spec["filesFrom"] = [{"configMapRef": {"name": files["metadata"]["name"]}}]
    created = kube.create(
        {"apiVersion": API_VERSION, "kind": "RunCommand", "metadata": {"name": name}, "spec": spec}
    )
    if files is not None:
        owner = {
            "apiVersion": API_VERSION,
            "kind": "RunCommand",
            "name": name,
            "uid": created["metadata"]["uid"],
        }
        kube.merge_patch(
            "configmap", files["metadata"]["name"], {"metadata": {"ownerReferences": [owner]}}
        )
    _say(args, f"runcommand/{name} created")
    if not args.wait:
        if args.output == "json":
            print(json.dumps({"name": name, "namespace": created["metadata"]["namespace"]}))
        else:
            print(name)
        return 0
    return _follow_and_report(kube, args, name, int(created["metadata"]["generation"]))


def _invoke_set(kube: Kubectl, args: argparse.Namespace, command: list[str]) -> int:
    """The command on every cluster the selector finds, through a RunCommandSet: a progress
    table on stderr whenever it changes, then the final table (or, -o json, the set's status)."""
    try:
        body = set_body(
            f"invoke-{secrets.token_hex(4)}",
            parse_selector(args.selector),
            {
                "command": " ".join(command),
                **({"timeoutSeconds": args.timeout} if args.timeout else {}),
            },
            None if args.max_concurrency is None else int_or_percent(args.max_concurrency),
            None if args.max_failures is None else int_or_percent(args.max_failures),
        )
    except SelectorError as error:
        print(f"kubectl-runcommand: {error}", file=sys.stderr)
        return 2
    if args.file:
        print("kubectl-runcommand: -f is not supported with --selector yet", file=sys.stderr)
        return 2
    name = body["metadata"]["name"]
    created = kube.create(body)
    _say(args, f"runcommandset/{name} created")
    if not args.wait:
        print(
            json.dumps({"name": name, "namespace": created["metadata"]["namespace"]})
            if args.output == "json"
            else name
        )
        return 0
    deadline = None if args.wait_timeout is None else time.monotonic() + args.wait_timeout
    shown = None
    while True:
        current = kube.get(name, SET_RESOURCE)
        status = current.get("status") or {}
        table = progress_table(status)
        if table != shown and status.get("state"):
            shown = table
            _say(args, table)
        if finished(current):
            break
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


def _cluster(args: argparse.Namespace) -> dict[str, str]:
    if args.resource_id:
        return {"resourceId": args.resource_id}
    parts = args.cluster.split("/")
    if len(parts) != 3 or not all(parts):
        raise SystemExit("kubectl-runcommand: --cluster takes SUBSCRIPTION/RESOURCE_GROUP/NAME")
    return {"subscriptionId": parts[0], "resourceGroup": parts[1], "name": parts[2]}


def _files_configmap(name: str, paths: Sequence[str]) -> dict[str, Any]:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for path in paths:
        raw = Path(path).read_bytes()
        key = os.path.basename(path)
        try:
            data[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(raw).decode()
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-files"},
        "data": data,
    }
    if binary:
        body["binaryData"] = binary
    return body


# wait, rerun --------------------------------------------------------------------------------


def _wait(kube: Kubectl, args: argparse.Namespace) -> int:
    return _follow_and_report(kube, args, args.name, None)


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
    body = kube.get(args.name)
    status = body.get("status") or {}
    history = status.get("history") or []
    if args.run < 1 or args.run > max(len(history), 1):
        print(f"kubectl-runcommand: {args.name} has {len(history)} finished runs", file=sys.stderr)
        return 1
    entry = history[-args.run] if history else {}
    text = _output_of(kube, status if args.run == 1 else {}, entry.get("logsRef"))
    if args.output == "json":
        print(json.dumps({"name": args.name, "run": entry, "output": text}))
    else:
        sys.stdout.write(text)
    return 0


def _output_of(kube: Kubectl, status: dict[str, Any], ref: dict[str, Any] | None) -> str:
    """The whole output from its ConfigMap or Secret; status.logs (the tail) when there is
    none (spec.output None, or an operator from before logsRef)."""
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


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="passed on to kubectl")
    common.add_argument("--context", help="passed on to kubectl")
    common.add_argument(
        "-n", "--namespace", help="the RunCommand's namespace, passed on to kubectl"
    )
    common.add_argument(
        "-o", "--output", choices=["text", "json"], default="text",
        help="json: one object on stdout with the state, reason, exit code and output",
    )  # fmt: skip
    common.add_argument(
        "--wait-timeout",
        type=float,
        metavar="SECONDS",
        help=f"stop waiting after this long (exit {EXIT_WAIT_TIMEOUT})",
    )
    parser = argparse.ArgumentParser(
        prog="kubectl runcommand",
        description="Run commands on AKS clusters through aks-runcommand-operator RunCommands.",
        epilog="Exit codes: the command's own; 120 ARM or operator error; 121 timeoutSeconds "
        "passed; 122 outcome unknown; 123 a cluster of a --selector set failed; "
        "124 --wait-timeout passed; 125 kubectl or API error.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    invoke = commands.add_parser("invoke", parents=[common], help="run a command and follow it")
    target = invoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--cluster", metavar="SUB/RG/NAME", help="the target AKS cluster")
    target.add_argument("--resource-id", metavar="ID", help="the target AKS cluster's ARM id")
    target.add_argument(
        "--selector",
        metavar="sub=SUB[,rg=RG][,tag=K=V...]",
        help="every cluster ARM lists there with these tags, through a RunCommandSet "
        f"(exit {EXIT_SET_FAILED} if any failed)",
    )
    invoke.add_argument("--max-concurrency", metavar="N|P%", help="with --selector")
    invoke.add_argument("--max-failures", metavar="N|P%", help="with --selector")
    invoke.add_argument(
        "-f", "--file", action="append", default=[], metavar="FILE",
        help="a local file sent with the command, through a ConfigMap (repeatable)",
    )  # fmt: skip
    invoke.add_argument("--timeout", type=int, metavar="SECONDS", help="spec.timeoutSeconds")
    invoke.add_argument(
        "--wait", action=argparse.BooleanOptionalAction, default=True,
        help="follow the run to its end (--no-wait prints the name and exits 0)",
    )  # fmt: skip
    invoke.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    invoke.set_defaults(handler=_invoke)

    wait = commands.add_parser("wait", parents=[common], help="wait for the current run")
    wait.add_argument("name", help="the RunCommand")
    wait.set_defaults(handler=_wait)

    logs = commands.add_parser("logs", parents=[common], help="the whole output of a run")
    logs.add_argument("name", help="the RunCommand")
    logs.add_argument("--run", type=int, default=1, metavar="N", help="1 latest, 2 the one before")
    logs.set_defaults(handler=_logs)

    rerun = commands.add_parser("rerun", parents=[common], help="bump spec.runToken")
    rerun.add_argument("name", help="the RunCommand")
    rerun.add_argument(
        "--wait", action=argparse.BooleanOptionalAction, default=False,
        help="follow the new run like wait",
    )  # fmt: skip
    rerun.set_defaults(handler=_rerun)
    return parser


if __name__ == "__main__":
    sys.exit(main())
