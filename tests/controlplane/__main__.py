"""python -m tests.controlplane up --name NAME --dir DIR | down --dir DIR"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .launcher import ControlPlaneError, start, stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a control plane in the background")
    up.add_argument("--name", required=True)
    up.add_argument("--dir", required=True, type=Path)
    down = commands.add_parser("down", help="stop the control plane in DIR")
    down.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print(start(args.name, args.dir, die_with_parent=False).kubeconfig, flush=True)
        elif not stop(args.dir):
            print(f"no control plane recorded in {args.dir}", file=sys.stderr)
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
