"""Operator configuration from flags and environment variables (flags win)."""

from __future__ import annotations

import argparse
import os
import re
import socket
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from controller.arm import (
    AZURE_PUBLIC_CLOUD,
    LONGEST_REQUEST_SECONDS,
    Cloud,
    CredentialConfig,
    CredentialMode,
)
from controller.core import Settings
from controller.core.policy import LabelSelector, OperatorIdentityAllowance
from controller.vocabulary import SHARD_LABEL

DEFAULT_CREDENTIALS_SECRET = "aks-runcommand-credentials"  # noqa: S105 - a Secret's name
# A Kubernetes label value (the empty value is not a shard).
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...]  # empty: all namespaces
    cloud: Cloud
    arm_ca_file: str | None
    credential: CredentialConfig
    default_credentials_secret: str
    workload_identity_from_secrets: bool
    operator_identity: OperatorIdentityAllowance
    max_context_bytes: int
    settings: Settings
    peering: str | None
    priority: int
    liveness: str | None
    metrics_port: int | None
    metrics_cluster_labels: bool
    log_format: str
    verbose: bool
    fleet_follow_seconds: float = (
        60.0  # RunCommandSets with followNewClusters rediscover this often
    )
    # "aks": ARM's buckets plus the AKS resource provider's "all other APIs" budget (60, then
    # 1/s per subscription, submits and polls together); "arm": ARM's buckets only.
    arm_budget: str = "aks"
    # The API server sends only RunCommands and RunCommandSets matching this selector (a shard,
    # e.g. sharding.aks.gitops.dev/key=blue); None: all.
    watch_label_selector: str | None = None


def _env(env: Mapping[str, str], name: str, default: object) -> str:
    """A default as text, so argparse converts and checks it as it does a flag's value: a bad
    environment variable is then refused as its flag would be, naming the flag."""
    return env.get(name) or str(default)


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


def _poll_interval_seconds(text: str) -> float:
    value = _positive_seconds(text)
    if value > Settings.poll_max_seconds:
        raise argparse.ArgumentTypeError(
            f"must be at most {Settings.poll_max_seconds:.0f} (the longest polls stretch to), "
            f"not {text}"
        )
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


def parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    p = _Parser(
        prog="aks-runcommand-operator",
        description="Runs RunCommand resources on AKS clusters through the ARM runCommand API.",
        formatter_class=_HelpWithDefaults,
    )
    watched = [ns.strip() for ns in env.get("WATCH_NAMESPACES", "").split(",") if ns.strip()]
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="namespace to watch (repeatable; env WATCH_NAMESPACES, comma-separated); "
        "default: all namespaces",
    )
    p.add_argument("--all-namespaces", "-A", action="store_true", help="watch all namespaces")
    p.add_argument(
        "--cloud",
        default=env.get("AZURE_CLOUD", AZURE_PUBLIC_CLOUD.name),
        help="AzurePublicCloud, AzureUSGovernment or AzureChinaCloud (env AZURE_CLOUD)",
    )
    p.add_argument(
        "--arm-endpoint",
        default=env.get("ARM_ENDPOINT"),
        help="custom ARM endpoint, such as the local emulator (env ARM_ENDPOINT)",
    )
    p.add_argument(
        "--arm-ca-file",
        default=env.get("ARM_CA_FILE"),
        help="CA bundle for the ARM and sign-in endpoints' TLS (env ARM_CA_FILE)",
    )
    p.add_argument(
        "--credentials",
        default=env.get("AZURE_CREDENTIAL_MODE", "default"),
        choices=[
            "default",
            "workload-identity",
            "managed-identity",
            "client-secret",
            "client-certificate",
        ],
        help="the operator's own identity; settings come from azure-identity's "
        "standard AZURE_* variables (env AZURE_CREDENTIAL_MODE)",
    )
    p.add_argument(
        "--default-credentials-secret",
        default=env.get("DEFAULT_CREDENTIALS_SECRET", DEFAULT_CREDENTIALS_SECRET),
        help="per-namespace default credentials Secret (env DEFAULT_CREDENTIALS_SECRET)",
    )
    p.add_argument(
        "--allow-workload-identity-from-secrets",
        action="store_true",
        default=env.get("ALLOW_WORKLOAD_IDENTITY_FROM_SECRETS", "").lower() == "true",
        help="let credential Secrets select workload identity with another client id; every "
        "namespace can then use every identity that trusts the operator's service account "
        "(env ALLOW_WORKLOAD_IDENTITY_FROM_SECRETS=true)",
    )
    p.add_argument(
        "--operator-identity-namespaces",
        default=env.get("OPERATOR_IDENTITY_NAMESPACES", ""),
        help="comma-separated namespaces whose RunCommands may use the operator's own identity "
        "when they have no credentials Secret; '*' allows every namespace; default: none "
        "(env OPERATOR_IDENTITY_NAMESPACES)",
    )
    p.add_argument(
        "--operator-identity-namespace-selector",
        default=env.get("OPERATOR_IDENTITY_NAMESPACE_SELECTOR", ""),
        help="label selector (a=b,c!=d,e,!f,g in (x,y)) of namespaces that may use the "
        "operator's own identity (env OPERATOR_IDENTITY_NAMESPACE_SELECTOR)",
    )
    p.add_argument(
        "--max-log-bytes",
        type=_positive_int,
        default=_env(env, "MAX_LOG_BYTES", Settings.max_log_bytes),
        help="tail of the output kept in status.logs (env MAX_LOG_BYTES)",
    )
    p.add_argument(
        "--max-context-bytes",
        type=_positive_int,
        default=_env(env, "MAX_CONTEXT_BYTES", 1024 * 1024),
        help="largest base64 context sent to ARM (env MAX_CONTEXT_BYTES)",
    )
    p.add_argument(
        "--history-limit",
        type=_positive_int,
        default=_env(env, "HISTORY_LIMIT", Settings.history_limit),
        help="finished runs kept in status.history (env HISTORY_LIMIT)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--peering",
        default=env.get("PEERING_NAME"),
        help="kopf peering object name, for several replicas (env PEERING_NAME)",
    )
    group.add_argument("--standalone", action="store_true", help="no peering (the default)")
    p.add_argument(
        "--priority",
        type=_whole_number,
        default=_env(env, "PEERING_PRIORITY", 0),
        help="peering priority; the highest runs (env PEERING_PRIORITY)",
    )
    p.add_argument(
        "--liveness",
        default=env.get("LIVENESS_ENDPOINT"),
        help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz (env LIVENESS_ENDPOINT)",
    )
    p.add_argument(
        "--metrics-port",
        type=_port_or_off,
        default=env.get("METRICS_PORT") or None,
        help="serve Prometheus /metrics on this port (env METRICS_PORT); off by default",
    )
    p.add_argument(
        "--metrics-cluster-labels",
        action=argparse.BooleanOptionalAction,
        default=env.get("METRICS_CLUSTER_LABELS", "true").lower() not in ("0", "false", "no"),
        help="label counts with the target's subscription, resource_group and cluster; "
        "--no-metrics-cluster-labels for very large fleets (env METRICS_CLUSTER_LABELS)",
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=env.get("LOG_FORMAT", "text"),
        help="log format (env LOG_FORMAT)",
    )
    p.add_argument(
        "--instance-name",
        default=env.get("POD_NAME") or socket.gethostname(),
        help="this operator's name in the claims it writes (status.claimedBy); must differ "
        "between replicas and stay the same across restarts of one (env POD_NAME; default: "
        "the host name)",
    )
    p.add_argument(
        "--claim-lease-seconds",
        type=_claim_lease_seconds,
        default=_env(env, "CLAIM_LEASE_SECONDS", Settings.claim_lease_seconds),
        help="how long a claim written by another operator is presumed alive before its run is "
        "declared Unknown; must exceed the longest POST (the ARM client's timeouts, "
        f"{LONGEST_REQUEST_SECONDS:.0f} s) (env CLAIM_LEASE_SECONDS)",
    )
    p.add_argument(
        "--fleet-follow-seconds",
        type=_positive_seconds,
        default=_env(env, "FLEET_FOLLOW_SECONDS", 60.0),
        help="how often a RunCommandSet with followNewClusters lists its clusters again "
        "(env FLEET_FOLLOW_SECONDS)",
    )
    p.add_argument(
        "--poll-interval-seconds",
        type=_poll_interval_seconds,
        default=_env(env, "POLL_INTERVAL_SECONDS", Settings.poll_interval_seconds),
        help="a running command is polled at least this often while its subscription's budget "
        "has room (as `az`, which polls every 5 s), so its result is recorded within about "
        "this much of its end; as the budget fills, polls stretch up to "
        f"{Settings.poll_max_seconds:.0f} s (env POLL_INTERVAL_SECONDS)",
    )
    p.add_argument(
        "--arm-budget",
        choices=["aks", "arm"],
        default=env.get("ARM_BUDGET", "aks"),
        help="the request budget the operator keeps to: aks (the default) adds the AKS resource "
        "provider's documented 'all other APIs' limit, 60 requests then 1/s per subscription "
        "for submits and polls together, to ARM's buckets; arm keeps to ARM's buckets only "
        "(env ARM_BUDGET)",
    )
    p.add_argument(
        "--shard-key",
        default=env.get("SHARD_KEY") or None,
        help="handle only RunCommands and RunCommandSets whose label "
        f"{SHARD_LABEL} equals this value: short for --watch-label-selector "
        f"{SHARD_LABEL}=VALUE; default: all (env SHARD_KEY)",
    )
    p.add_argument(
        "--watch-label-selector",
        default=env.get("WATCH_LABEL_SELECTOR") or None,
        help="watch only RunCommands and RunCommandSets matching this label selector, filtered "
        f"by the API server (as Flux's flag): e.g. '{SHARD_LABEL}=blue', or "
        f"'!{SHARD_LABEL}' for the shard of unlabelled objects; default: all "
        "(env WATCH_LABEL_SELECTOR)",
    )
    p.add_argument("--verbose", action="store_true", help="debug logs")
    p.set_defaults(env_namespaces=watched)
    return p


def _global_credential(mode: str, env: Mapping[str, str]) -> CredentialConfig:
    """The operator's own identity, from azure-identity's standard environment variables."""
    certificate_path = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    certificate = None
    if mode == "client-certificate" and certificate_path:
        try:
            certificate = Path(certificate_path).read_bytes()
        except OSError as error:
            raise ValueError(
                f"client certificate {certificate_path} (env AZURE_CLIENT_CERTIFICATE_PATH) "
                f"cannot be read: {error.strerror or error}"
            ) from None
    return CredentialConfig(
        mode=mode,  # type: ignore[arg-type]  # argparse choices keep it a CredentialMode
        tenant_id=env.get("AZURE_TENANT_ID"),
        client_id=env.get("AZURE_CLIENT_ID"),
        client_secret=env.get("AZURE_CLIENT_SECRET") if mode == "client-secret" else None,
        client_certificate=certificate,
        client_certificate_password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
    )


def _check_ca_file(p: argparse.ArgumentParser, path: str) -> None:
    """A CA bundle that cannot be read is a configuration error: said at once (exit 2), not
    retried by kopf's startup loop."""
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        p.error(f"--arm-ca-file {path} (env ARM_CA_FILE): no such file")
    except ssl.SSLError as error:  # an OSError too: first
        p.error(f"--arm-ca-file {path} (env ARM_CA_FILE): not a PEM CA bundle ({error.reason})")
    except OSError as error:
        p.error(f"--arm-ca-file {path} (env ARM_CA_FILE): cannot be read: {error.strerror}")


def _check_liveness(p: argparse.ArgumentParser, endpoint: str) -> None:
    parts = urllib.parse.urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
        p.error(f"--liveness {endpoint!r} (env LIVENESS_ENDPOINT): the port is not a number")
    if parts.scheme != "http" or not parts.hostname or port is None:
        p.error(
            f"--liveness {endpoint!r} (env LIVENESS_ENDPOINT): an http URL with a host and a "
            "port, e.g. http://0.0.0.0:8080/healthz"
        )


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> OperatorConfig:
    """The configuration from flags and environment; with --arm-endpoint, sign-in goes to
    AZURE_AUTHORITY_HOST (the cloud's own authority otherwise)."""
    env = os.environ if env is None else env
    p = parser(env)
    args = p.parse_args(argv)
    namespaces = () if args.all_namespaces else tuple(args.namespace or args.env_namespaces)
    try:
        cloud = Cloud.by_name(args.cloud)
        if args.arm_endpoint:
            cloud = Cloud.custom(args.arm_endpoint, env.get("AZURE_AUTHORITY_HOST"))
        credential = _global_credential(args.credentials, env)
        operator_identity = OperatorIdentityAllowance(
            frozenset(
                ns.strip() for ns in args.operator_identity_namespaces.split(",") if ns.strip()
            ),
            LabelSelector.parse(args.operator_identity_namespace_selector)
            if args.operator_identity_namespace_selector.strip()
            else None,
        )
    except (ValueError, OSError) as error:
        p.error(str(error))
    if args.arm_ca_file:
        _check_ca_file(p, args.arm_ca_file)
    if args.liveness:
        _check_liveness(p, args.liveness)
    watch_label_selector = args.watch_label_selector
    if args.shard_key is not None:
        if not _LABEL_VALUE.fullmatch(args.shard_key):
            p.error(
                f"--shard-key {args.shard_key!r} is not a label value: at most 63 letters, "
                "digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
        if watch_label_selector is not None:
            p.error("--shard-key and --watch-label-selector are one setting: give one of them")
        watch_label_selector = f"{SHARD_LABEL}={args.shard_key}"
    elif watch_label_selector is not None:
        try:
            LabelSelector.parse(watch_label_selector)
        except ValueError as error:
            p.error(f"--watch-label-selector {watch_label_selector!r}: {error}")
    return OperatorConfig(
        namespaces=namespaces,
        cloud=cloud,
        arm_ca_file=args.arm_ca_file,
        credential=credential,
        default_credentials_secret=args.default_credentials_secret,
        workload_identity_from_secrets=args.allow_workload_identity_from_secrets,
        operator_identity=operator_identity,
        max_context_bytes=args.max_context_bytes,
        settings=Settings(
            max_log_bytes=args.max_log_bytes,
            history_limit=args.history_limit,
            holder=args.instance_name,
            claim_lease_seconds=args.claim_lease_seconds,
            poll_interval_seconds=args.poll_interval_seconds,
        ),
        peering=None if args.standalone else args.peering,
        priority=args.priority,
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        metrics_cluster_labels=args.metrics_cluster_labels,
        log_format=args.log_format,
        verbose=args.verbose,
        fleet_follow_seconds=args.fleet_follow_seconds,
        arm_budget=args.arm_budget,
        watch_label_selector=watch_label_selector,
    )


__all__ = ["CredentialMode", "OperatorConfig", "load"]
