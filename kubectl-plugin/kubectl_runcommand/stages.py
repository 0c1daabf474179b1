"""Staged fleet rollouts in the plugin: `invoke --selector ... --stage NAME=tag=K=V` and
`--approve-each`, `kubectl runcommand approve SET --stage NAME`, and `kubectl runcommand status
SET` with its stage table. An approval is data in the set's spec (spec.approvals), for the round
the operator reports in status.roundKey, so approving here and approving in Git are the same."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .fleet import SET_RESOURCE, SelectorError, progress_table
from .kubectl import Kubectl, KubectlError
from .outcome import EXIT_USAGE, EXIT_WAIT_TIMEOUT


class ApprovalRefused(ValueError):
    """The approval cannot be given: no such stage, or the operator has not seen the spec."""


def parse_stage(text: str) -> dict[str, Any]:
    """`NAME=tag=K=V[,tag=K2=V2]` as a stage selecting those tags; `NAME` alone takes the
    clusters no earlier stage took (only as the last --stage)."""
    name, sep, rest = text.partition("=")
    if not name:
        raise SelectorError(f"--stage: {text!r} needs a name: NAME=tag=K=V[,tag=K=V] or NAME")
    stage: dict[str, Any] = {"name": name}
    tags: dict[str, str] = {}
    for part in (p.strip() for p in rest.split(",")) if sep and rest else ():
        key, sep_key, value = part.partition("=")
        tag, sep_tag, tag_value = value.partition("=")
        if key != "tag" or not sep_key or not sep_tag or not tag:
            raise SelectorError(f"--stage {name}: {part!r} is not tag=KEY=VALUE")
        tags[tag] = tag_value
    if tags:
        stage["matchTags"] = tags
    return stage


def stages_spec(texts: Sequence[str], approve_each: bool) -> dict[str, Any]:
    """spec.stages from the --stage flags; with --approve-each every stage after the first waits
    for an approval (the invocation itself approves the first)."""
    if not texts:
        if approve_each:
            raise SelectorError("--approve-each needs --stage")
        return {}
    stages = [parse_stage(text) for text in texts]
    names = [s["name"] for s in stages]
    if len(set(names)) != len(names):
        raise SelectorError(f"--stage names must be unique: {', '.join(names)}")
    for stage in stages[:-1]:
        if "matchTags" not in stage:
            raise SelectorError(f"--stage {stage['name']}: only the last stage may omit tags")
    if approve_each:
        for stage in stages[1:]:
            stage["approval"] = "Required"
    return {"stages": stages}


def approval_patch(body: dict[str, Any], stage: str) -> tuple[dict[str, Any] | None, str]:
    """The merge patch approving `stage` for the set's current round (None when it is approved
    already), and what to tell the user. Approvals of other rounds are dropped: they can never
    approve anything again."""
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    name = body["metadata"]["name"]
    names = [str(s.get("name")) for s in spec.get("stages") or ()]
    if stage not in names:
        have = ", ".join(names) if names else "none"
        raise ApprovalRefused(f"runcommandset/{name} has no stage {stage!r} (stages: {have})")
    generation = int(body["metadata"].get("generation", 0))
    round_key = status.get("roundKey")
    if not round_key or int(status.get("observedGeneration") or 0) < generation:
        raise ApprovalRefused(
            f"runcommandset/{name}: the operator has not reported the current round yet "
            "(status.roundKey); try again in a moment"
        )
    approvals = [a for a in spec.get("approvals") or () if a.get("roundKey") == round_key]
    if any(a.get("stage") == stage for a in approvals):
        return (
            None,
            f"runcommandset/{name}: stage {stage} is approved for round {round_key} already",
        )
    approvals.append({"stage": stage, "roundKey": round_key})
    patch = {
        "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
        "spec": {"approvals": approvals},
    }
    waiting = [s for s in status.get("stages") or () if s.get("name") == stage]
    state = waiting[0].get("state") if waiting else "Pending"
    note = "" if state == "WaitingForApproval" else f" (it is {state}: nothing changes now)"
    return patch, f"runcommandset/{name}: stage {stage} approved for round {round_key}{note}"


def stage_table(status: dict[str, Any]) -> str:
    rows: list[Sequence[str]] = [
        ("STAGE", "STATE", "TOTAL", "SUCCEEDED", "FAILED", "RUNNING", "STARTED", "FINISHED",
         "SOAK-ENDS"),
    ]  # fmt: skip
    for entry in status.get("stages") or ():
        rows.append(
            (
                str(entry.get("name", "")),
                str(entry.get("state", "")),
                *(str(entry.get(key, 0)) for key in ("total", "succeeded", "failed", "running")),
                *(str(entry.get(key) or "") for key in ("startedAt", "finishedAt", "soakEndsAt")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def approve(kube: Kubectl, args: argparse.Namespace) -> int:
    body = kube.get(args.name, SET_RESOURCE)
    try:
        patch, said = approval_patch(body, args.stage)
    except ApprovalRefused as error:
        print(f"kubectl-runcommand: {error}", file=sys.stderr)
        return EXIT_USAGE
    if patch is not None:
        kube.merge_patch(SET_RESOURCE, args.name, patch)  # conditional: resourceVersion
    print(said, file=sys.stderr)
    return 0


def status(kube: Kubectl, args: argparse.Namespace) -> int:
    body = kube.get(args.name, SET_RESOURCE)
    current = body.get("status") or {}
    if args.output == "json":
        print(json.dumps({"name": args.name, "status": current}))
        return 0
    out = progress_table(current)
    if current.get("stages"):
        out += "\n" + stage_table(current)
    for entry in current.get("unmatched") or ():
        out += f"not run: {entry.get('clusterId')} ({entry.get('reason')})\n"
    sys.stdout.write(out)
    return 0


def ask_to_approve(
    kube: Kubectl,
    name: str,
    body: dict[str, Any],
    *,
    asked: set[str],
    ask: Callable[[str], str] | None = None,
    err: TextIO | None = None,
) -> int | None:
    """--approve-each: when the set waits at a stage, ask on the terminal. Yes approves it for
    this round; anything else leaves it waiting and ends the invocation (EXIT_WAIT_TIMEOUT), with
    the command that approves it later. None: nothing to ask, follow on."""
    current = body.get("status") or {}
    stage = current.get("stage")
    if current.get("state") != "WaitingForApproval" or not stage or stage in asked:
        return None
    asked.add(stage)
    stream = err if err is not None else sys.stderr
    question = f"stage {stage} waits for approval: start it now? [y/N] "
    answer = (ask or _ask_on_stderr)(question)
    if answer.strip().lower() not in ("y", "yes"):
        print(f"runcommandset/{name} left waiting; approve later with: kubectl runcommand "
              f"approve {name} --stage {stage}", file=stream)  # fmt: skip
        return EXIT_WAIT_TIMEOUT
    try:
        patch, said = approval_patch(body, stage)
    except ApprovalRefused as error:
        print(f"kubectl-runcommand: {error}", file=stream)
        return EXIT_USAGE
    if patch is not None:
        try:
            kube.merge_patch(SET_RESOURCE, name, patch)
        except KubectlError:
            asked.discard(stage)  # the set changed meanwhile: ask again at the next look
            return None
    print(said, file=stream)
    return None


def _ask_on_stderr(question: str) -> str:
    """The question on stderr (stdout carries only the result), the answer from stdin; no
    answer (end of input) is a no."""
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline()


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """The subcommands `approve` and `status`."""
    parser = commands.add_parser(
        "approve", parents=[common], help="approve a stage of a RunCommandSet for this round"
    )
    parser.add_argument("name", help="the RunCommandSet")
    parser.add_argument("--stage", required=True, metavar="NAME", help="the stage to approve")
    parser.set_defaults(handler=approve)
    shown = commands.add_parser(
        "status", parents=[common], help="a RunCommandSet's progress and its stages"
    )
    shown.add_argument("name", help="the RunCommandSet")
    shown.set_defaults(handler=status)


def add_invoke_flags(invoke: argparse.ArgumentParser) -> None:
    invoke.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="NAME=tag=K=V[,...]",
        help="with --selector: a stage of the rollout, in order (repeat); the last may be NAME "
        "alone to take the rest",
    )
    invoke.add_argument(
        "--approve-each",
        action="store_true",
        help="with --stage: wait before each stage after the first and ask on the terminal",
    )
