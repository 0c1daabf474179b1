"""The command line: the flags every subcommand shares, and one adder per subcommand that
declares its own flags and its handler. A handler takes the Kubectl and the parsed flags and
returns the exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from . import stages
from .arguments import cluster_of, seconds
from .invoke import add_invoke
from .logs import add_logs
from .outcome import EXIT_USAGE, EXIT_WAIT_TIMEOUT
from .rerun import add_rerun
from .schedule import add_commands as add_schedule_commands
from .wait import add_wait

# One function per subcommand: it adds its parser (with `common`'s flags) and its handler.
SUBCOMMANDS: tuple[Callable[[Any, argparse.ArgumentParser], None], ...] = (
    add_invoke,
    add_wait,
    add_logs,
    add_rerun,
    stages.register,  # approve, status
    lambda commands, common: add_schedule_commands(commands, common, cluster_of),  # schedule
)


class _Parser(argparse.ArgumentParser):
    """A usage error in one line, as every other error of the plugin (argparse prints the
    whole usage first); `--help` has it."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.replace("kubectl runcommand", "kubectl-runcommand", 1)
        self.exit(EXIT_USAGE, f"{where}: {message} (see --help)\n")


def _common_flags() -> argparse.ArgumentParser:
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
        type=seconds,
        metavar="SECONDS",
        help=f"stop waiting after this long (exit {EXIT_WAIT_TIMEOUT}); the run goes on",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
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
