"""What goes wrong on the plugin's side, as one line and an exit code (see outcome.py for the
codes): main() prints `kubectl-runcommand: MESSAGE` and exits with `code`, never a traceback."""

from __future__ import annotations

from .interrupt import EXIT_INTERRUPTED
from .outcome import EXIT_KUBECTL, EXIT_USAGE


class PluginError(Exception):
    """A failure the person at the terminal can act on; `code` is the plugin's exit code."""

    code = EXIT_KUBECTL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(PluginError):
    """The command line cannot be used as given: a flag, a value, a file to send."""

    code = EXIT_USAGE


class NotThere(PluginError):
    """What was asked for is not on the API server (a run beyond status.history)."""

    code = EXIT_KUBECTL


class Interrupted(PluginError):
    """Ctrl-C: the message says what the plugin had created by then and how to follow it."""

    code = EXIT_INTERRUPTED
