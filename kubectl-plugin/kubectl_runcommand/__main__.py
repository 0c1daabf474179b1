"""kubectl-runcommand: invoke, wait, logs, rerun, approve, status, schedule, trigger. See the
README's Pipelines section.

The parser (parser.py) has one module per subcommand; what goes wrong is raised as a
PluginError (errors.py) and printed here as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .errors import PluginError, UsageError
from .kubectl import Kubectl
from .outcome import EXIT_INTERRUPTED, EXIT_USAGE
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
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
    except KeyboardInterrupt:
        print("kubectl-runcommand: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `... | head`: the reader has gone, so has the need to write
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # flushing at exit
        return 141  # as a shell reports a command ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
