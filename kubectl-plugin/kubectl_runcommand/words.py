"""The command line a run sends, from the words after `--`."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def command_line(words: Sequence[str]) -> str:
    """ARGV as the shell line ARM runs (`bash -c`): one word is a command line as it stands,
    several are each quoted, so `-- bash -c 'echo one; exit 3'` runs exactly that, as
    `kubectl exec` would."""
    return words[0] if len(words) == 1 else shlex.join(words)
