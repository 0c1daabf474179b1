"""Operator configuration from flags and environment variables (flags win)."""

from __future__ import annotations

import argparse
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.arm import AZURE_PUBLIC_CLOUD, Cloud, CredentialConfig, CredentialMode
from controller.core import Settings
from controller.core.fleet import SHARD_LABEL
from controller.core.policy import LabelSelector, OperatorIdentityAllowance

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


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(env[name]) if env.get(name) else default


def parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aks-runcommand-operator",
        description="Runs RunCommand resources on AKS clusters through the ARM runCommand API.",
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
        help="label selector (a=b,c!=d,e,!f) of namespaces that may use the operator's own "
        "identity (env OPERATOR_IDENTITY_NAMESPACE_SELECTOR)",
    )
    p.add_argument(
        "--max-log-bytes",
        type=int,
        default=_env_int(env, "MAX_LOG_BYTES", Settings.max_log_bytes),
        help="tail of the output kept in status.logs (env MAX_LOG_BYTES)",
    )
    p.add_argument(
        "--max-context-bytes",
        type=int,
        default=_env_int(env, "MAX_CONTEXT_BYTES", 1024 * 1024),
        help="largest base64 context sent to ARM (env MAX_CONTEXT_BYTES)",
    )
    p.add_argument(
        "--history-limit",
        type=int,
        default=_env_int(env, "HISTORY_LIMIT", Settings.history_limit),
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
        type=int,
        default=_env_int(env, "PEERING_PRIORITY", 0),
        help="peering priority; the highest runs (env PEERING_PRIORITY)",
    )
    p.add_argument(
        "--liveness",
        default=env.get("LIVENESS_ENDPOINT"),
        help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz (env LIVENESS_ENDPOINT)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=_env_int(env, "METRICS_PORT", 0) or None,
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
        type=float,
        default=float(env.get("CLAIM_LEASE_SECONDS") or Settings.claim_lease_seconds),
        help="how long a claim written by another operator is presumed alive before its run is "
        "declared Unknown; must exceed the longest POST (the ARM client's timeouts, 160 s) "
        "(env CLAIM_LEASE_SECONDS)",
    )
    p.add_argument(
        "--fleet-follow-seconds",
        type=float,
        default=float(env.get("FLEET_FOLLOW_SECONDS") or 60.0),
        help="how often a RunCommandSet with followNewClusters lists its clusters again "
        "(env FLEET_FOLLOW_SECONDS)",
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
    return CredentialConfig(
        mode=mode,  # type: ignore[arg-type]  # argparse choices keep it a CredentialMode
        tenant_id=env.get("AZURE_TENANT_ID"),
        client_id=env.get("AZURE_CLIENT_ID"),
        client_secret=env.get("AZURE_CLIENT_SECRET") if mode == "client-secret" else None,
        client_certificate=(
            Path(certificate_path).read_bytes()
            if mode == "client-certificate" and certificate_path
            else None
        ),
        client_certificate_password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
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
    if args.max_log_bytes <= 0 or args.max_context_bytes <= 0 or args.history_limit <= 0:
        p.error("--max-log-bytes, --max-context-bytes and --history-limit must be positive")
    if not args.claim_lease_seconds > 0:
        p.error("--claim-lease-seconds must be positive")
    if not args.fleet_follow_seconds > 0:
        p.error("--fleet-follow-seconds must be positive")
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
