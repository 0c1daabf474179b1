"""The command line once the plugin is loaded: parse, run the subcommand, and turn what goes
wrong (a PluginError, errors.py) into one line and an exit code.

The parser (parser.py) has one module per subcommand."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .errors import PluginError, UsageError
from .kubectl import Kubectl
from .outcome import EXIT_USAGE
from .parser import build_parser


def run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    kube = Kubectl(args.kubeconfig, args.context, args.namespace)
    try:
        return int(args.handler(kube, args))
    except UsageError as error:
        print(f"kubectl-runcommand {args.subcommand}: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    except PluginError as error:
        print(f"kubectl-runcommand: {error.message}", file=sys.stderr)
        return error.code
    except BrokenPipeError:  # `... | head`: the reader has gone, so has the need to write
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # flushing at exit
        return 141  # as a shell reports a command ended by SIGPIPE
