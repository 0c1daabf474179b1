"""The operator's flags, as a table: one row of ``FLAGS`` per flag says its names, the setting
of the tree (controller/settings.py) it sets, how its text is parsed, its environment variable
(flags win) and its help. controller/config.py reads them into the tree."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from controller.arm import (
    AZURE_PUBLIC_CLOUD,
    LONGEST_REQUEST_SECONDS,
)
from controller.settings import OperatorConfig
from controller.vocabulary import SHARD_LABEL

_DEFAULTS = OperatorConfig()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _port_or_off(text: str) -> int | None:
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535, or 0: off)")
    return value or None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _claim_lease_seconds(text: str) -> float:
    value = _positive_seconds(text)
    if value <= LONGEST_REQUEST_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must exceed the longest POST ({LONGEST_REQUEST_SECONDS:.0f} s, the ARM client's "
            f"timeouts), not {text}: a shorter lease lets a second operator resubmit a command "
            "whose first POST may still be in flight"
        )
    return value


def _true(text: str) -> bool:
    return text.lower() == "true"


def _not_false(text: str) -> bool:
    return text.lower() not in ("0", "false", "no")


def _default_of(path: str) -> object:
    """A setting's default, read from the tree: each default is written once, there."""
    value: object = _DEFAULTS
    for name in path.split("."):
        value = getattr(value, name)
    return value


# value: takes a value (`parse` converts it); switch: on when given; env-switch: on when given
# or when `parse` says its variable is; boolean: --x / --no-x; append: repeatable.
Kind = Literal["value", "switch", "env-switch", "boolean", "append"]


@dataclass(frozen=True)
class Flag:
    """One flag: `path` is the setting it sets ("" for those load() combines itself, such as
    --cloud with --arm-endpoint); its default is the environment variable `env`, else the
    setting's own default (or `default`)."""

    names: tuple[str, ...]
    path: str
    help: str
    env: str | None = None
    parse: Callable[[str], Any] | None = None
    kind: Kind = "value"
    choices: tuple[str, ...] | None = None
    default: object = None  # or a callable, called when the parser is built
    group: str | None = None  # flags of one group exclude each other

    @property
    def dest(self) -> str:
        return self.names[0].lstrip("-").replace("-", "_")

    def default_in(self, env: Mapping[str, str]) -> object:
        """The environment's value as text, so argparse converts and checks it as it does a
        flag's: a bad environment variable is then refused as its flag would be, naming it."""
        text = env.get(self.env) if self.env else None
        fallback = self.default() if callable(self.default) else self.default
        if fallback is None and self.path:
            fallback = _default_of(self.path)
        if self.kind == "env-switch" or self.kind == "boolean":
            assert self.parse is not None
            return self.parse(text) if text else fallback
        if text:
            return text
        return str(fallback) if self.parse is not None and fallback is not None else fallback


_CREDENTIAL_MODES = (
    "default", "workload-identity", "managed-identity", "client-secret", "client-certificate"
)  # fmt: skip

FLAGS: tuple[Flag, ...] = (
    Flag(("--namespace", "-n"), "", "namespace to watch (repeatable; env WATCH_NAMESPACES, "
         "comma-separated); default: all namespaces", env="WATCH_NAMESPACES", kind="append"),
    Flag(("--all-namespaces", "-A"), "", "watch all namespaces", kind="switch"),
    Flag(("--cloud",), "", "AzurePublicCloud, AzureUSGovernment or AzureChinaCloud (env "
         "AZURE_CLOUD)", env="AZURE_CLOUD", default=AZURE_PUBLIC_CLOUD.name),
    Flag(("--arm-endpoint",), "", "custom ARM endpoint, such as the local emulator (env "
         "ARM_ENDPOINT)", env="ARM_ENDPOINT"),
    Flag(("--arm-ca-file",), "arm.ca_file", "CA bundle for the ARM and sign-in endpoints' TLS "
         "(env ARM_CA_FILE)", env="ARM_CA_FILE"),
    Flag(("--credentials",), "", "the operator's own identity; settings come from "
         "azure-identity's standard AZURE_* variables (env AZURE_CREDENTIAL_MODE)",
         env="AZURE_CREDENTIAL_MODE", choices=_CREDENTIAL_MODES, default="default"),
    Flag(("--default-credentials-secret",), "identity.default_credentials_secret",
         "per-namespace default credentials Secret (env DEFAULT_CREDENTIALS_SECRET)",
         env="DEFAULT_CREDENTIALS_SECRET"),
    Flag(("--allow-workload-identity-from-secrets",), "identity.workload_identity_from_secrets",
         "let credential Secrets select workload identity with another client id; every "
         "namespace can then use every identity that trusts the operator's service account "
         "(env ALLOW_WORKLOAD_IDENTITY_FROM_SECRETS=true)",
         env="ALLOW_WORKLOAD_IDENTITY_FROM_SECRETS", parse=_true, kind="env-switch"),
    Flag(("--operator-identity-namespaces",), "", "comma-separated namespaces whose RunCommands "
         "may use the operator's own identity when they have no credentials Secret; '*' allows "
         "every namespace; default: none (env OPERATOR_IDENTITY_NAMESPACES)",
         env="OPERATOR_IDENTITY_NAMESPACES", default=""),
    Flag(("--operator-identity-namespace-selector",), "", "label selector (a=b,c!=d,e,!f,g in "
         "(x,y)) of namespaces that may use the operator's own identity (env "
         "OPERATOR_IDENTITY_NAMESPACE_SELECTOR)", env="OPERATOR_IDENTITY_NAMESPACE_SELECTOR",
         default=""),
    Flag(("--max-log-bytes",), "settings.max_log_bytes", "tail of the output kept in "
         "status.logs (env MAX_LOG_BYTES)", env="MAX_LOG_BYTES", parse=_positive_int),
    Flag(("--max-context-bytes",), "inputs.max_context_bytes", "largest base64 context sent to "
         "ARM (env MAX_CONTEXT_BYTES)", env="MAX_CONTEXT_BYTES", parse=_positive_int),
    Flag(("--history-limit",), "settings.history_limit", "finished runs kept in status.history "
         "(env HISTORY_LIMIT)", env="HISTORY_LIMIT", parse=_positive_int),
    Flag(("--peering",), "", "kopf peering object name, for several replicas (env "
         "PEERING_NAME)", env="PEERING_NAME", group="peering"),
    Flag(("--standalone",), "", "no peering (the default)", kind="switch", group="peering"),
    Flag(("--priority",), "peering.priority", "peering priority; the highest runs (env "
         "PEERING_PRIORITY)", env="PEERING_PRIORITY", parse=_whole_number),
    Flag(("--liveness",), "health.liveness", "liveness endpoint, e.g. "
         "http://0.0.0.0:8080/healthz (env LIVENESS_ENDPOINT)", env="LIVENESS_ENDPOINT"),
    Flag(("--metrics-port",), "metrics.port", "serve Prometheus /metrics on this port (env "
         "METRICS_PORT); off by default", env="METRICS_PORT", parse=_port_or_off),
    Flag(("--metrics-cluster-labels",), "metrics.cluster_labels", "label counts with the "
         "target's subscription, resource_group and cluster; --no-metrics-cluster-labels for "
         "very large fleets (env METRICS_CLUSTER_LABELS)", env="METRICS_CLUSTER_LABELS",
         parse=_not_false, kind="boolean"),
    Flag(("--log-format",), "logging.format", "log format (env LOG_FORMAT)", env="LOG_FORMAT",
         choices=("text", "json")),
    Flag(("--instance-name",), "settings.holder", "this operator's name in the claims it writes "
         "(status.claimedBy); must differ between replicas and stay the same across restarts "
         "of one (env POD_NAME; default: the host name)", env="POD_NAME",
         default=socket.gethostname),
    Flag(("--claim-lease-seconds",), "settings.claim_lease_seconds", "how long a claim written "
         "by another operator is presumed alive before its run is declared Unknown; must exceed "
         "the longest POST (the ARM client's timeouts, "
         f"{LONGEST_REQUEST_SECONDS:.0f} s) (env CLAIM_LEASE_SECONDS)",
         env="CLAIM_LEASE_SECONDS", parse=_claim_lease_seconds),
    Flag(("--fleet-follow-seconds",), "fleet.follow_seconds", "how often a RunCommandSet with "
         "followNewClusters lists its clusters again (env FLEET_FOLLOW_SECONDS)",
         env="FLEET_FOLLOW_SECONDS", parse=_positive_seconds),
    Flag(("--poll-interval-seconds",), "settings.poll_interval_seconds", "a running command is "
         "polled at least this often while its subscription's budget has room (as `az`, which "
         "polls every 5 s), so its result is recorded within about this much of its end; as the "
         "budget fills, polls stretch up to --poll-max-seconds (env POLL_INTERVAL_SECONDS)",
         env="POLL_INTERVAL_SECONDS", parse=_positive_seconds),
    Flag(("--poll-initial-seconds",), "settings.poll_initial_seconds", "a command is first polled "
         "this long after its submission while no run like it has ended yet in its "
         "subscription, and its polls back off from it, doubling; at most "
         "--poll-max-seconds (env POLL_INITIAL_SECONDS)", env="POLL_INITIAL_SECONDS",
         parse=_positive_seconds),
    Flag(("--poll-max-seconds",), "settings.poll_max_seconds", "the longest a running command "
         "goes unpolled as its subscription's budget fills (env POLL_MAX_SECONDS)",
         env="POLL_MAX_SECONDS", parse=_positive_seconds),
    Flag(("--arm-budget",), "arm.budget", "the request budget the operator keeps to: aks (the "
         "default) adds the AKS resource provider's documented 'all other APIs' limit, 60 "
         "requests then 1/s per subscription for submits and polls together, to ARM's buckets; "
         "arm keeps to ARM's buckets only (env ARM_BUDGET)", env="ARM_BUDGET",
         choices=("aks", "arm")),
    Flag(("--shard-key",), "", "handle only RunCommands and RunCommandSets whose label "
         f"{SHARD_LABEL} equals this value: short for --watch-label-selector "
         f"{SHARD_LABEL}=VALUE; default: all (env SHARD_KEY)", env="SHARD_KEY"),
    Flag(("--watch-label-selector",), "", "watch only RunCommands and RunCommandSets matching "
         "this label selector, filtered by the API server (as Flux's flag): e.g. "
         f"'{SHARD_LABEL}=blue', or '!{SHARD_LABEL}' for the shard of unlabelled objects; "
         "default: all (env WATCH_LABEL_SELECTOR)", env="WATCH_LABEL_SELECTOR"),
    Flag(("--verbose",), "logging.verbose", "debug logs", kind="switch"),
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, as every other startup error: the usage would bury it in a pod's log."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _HelpWithDefaults(argparse.HelpFormatter):
    """--help shows each flag's default (after the environment), unless its text says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, "", False, True, argparse.SUPPRESS) or any(
            said in text for said in ("default:", "by default", "the default")
        ):
            return text
        return f"{text} (default: %(default)s)"


_ACTIONS: Mapping[Kind, Any] = {
    "value": "store", "switch": "store_true", "env-switch": "store_true",
    "boolean": argparse.BooleanOptionalAction, "append": "append",
}  # fmt: skip


def parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The parser of FLAGS, each flag's default read from `env`."""
    p = _Parser(
        prog="aks-runcommand-operator",
        description="Runs RunCommand resources on AKS clusters through the ARM runCommand API.",
        formatter_class=_HelpWithDefaults,
    )
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for flag in FLAGS:
        into: Any = p
        if flag.group is not None:
            if flag.group not in groups:
                groups[flag.group] = p.add_mutually_exclusive_group()
            into = groups[flag.group]
        options: dict[str, Any] = {
            "action": _ACTIONS[flag.kind],
            "help": flag.help,
            "dest": flag.dest,
        }
        if flag.kind == "value":
            options["type"] = flag.parse
            options["choices"] = flag.choices
        if flag.kind != "switch":
            options["default"] = None if flag.kind == "append" else flag.default_in(env)
        into.add_argument(*flag.names, **options)
    return p
