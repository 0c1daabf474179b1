"""kubectl-runcommand: invoke, wait, logs, rerun, approve, status, schedule, trigger. See the
README's Pipelines section.

main() latches Ctrl-C before it loads the rest of the plugin (command_line.py): a SIGINT that
arrives while Python imports it can otherwise be dropped (interrupt.py says how), and the
plugin would go on to create what the person had just stopped."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .interrupt import EXIT_INTERRUPTED, latch_interrupts, raise_if_interrupted


def main(argv: Sequence[str] | None = None) -> int:
    latch_interrupts()
    try:
        from .command_line import run  # loaded under the latch, see above

        raise_if_interrupted()
        return run(argv)
    except KeyboardInterrupt:
        print("kubectl-runcommand: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
