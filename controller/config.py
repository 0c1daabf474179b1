"""Operator configuration from flags and environment variables (flags win), onto the settings
tree of controller/settings.py; the flags themselves are the table of controller/flags.py."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from controller.arm import Cloud, CredentialConfig, CredentialMode
from controller.core.policy import LabelSelector, OperatorIdentityAllowance
from controller.flags import FLAGS, parser
from controller.settings import OperatorConfig
from controller.vocabulary import SHARD_LABEL

# A Kubernetes label value (the empty value is not a shard).
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DEFAULTS = OperatorConfig()


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
    """The settings tree from flags and environment; bad values exit 2, naming the flag."""
    env = os.environ if env is None else env
    p = parser(env)
    args = p.parse_args(argv)
    values = {flag.path: getattr(args, flag.dest) for flag in FLAGS if flag.path}
    try:
        values.update(_identity(args, env))
    except (ValueError, OSError) as error:
        p.error(str(error))
    if args.arm_ca_file:
        _check_ca_file(p, args.arm_ca_file)
    if args.liveness:
        _check_liveness(p, args.liveness)
    _check_poll_times(p, values)
    values["watching.namespaces"] = _namespaces(args, env)
    values["watching.label_selector"] = _label_selector(p, args)
    values["peering.name"] = None if args.standalone else args.peering
    return _tree(values)


def _tree(values: Mapping[str, object]) -> OperatorConfig:
    """The defaults' tree with `values` ({"branch.field": value}) in place."""
    branches = {}
    for branch in dataclasses.fields(OperatorConfig):
        prefix = branch.name + "."
        changes = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
        branches[branch.name] = dataclasses.replace(getattr(_DEFAULTS, branch.name), **changes)
    return OperatorConfig(**branches)


def _namespaces(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, ...]:
    if args.all_namespaces:
        return ()
    (flag,) = (f for f in FLAGS if f.dest == "namespace")  # its variable: comma-separated
    listed = args.namespace or (env.get(flag.env or "") or "").split(",")
    return tuple(ns.strip() for ns in listed if ns.strip())


def _identity(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, object]:
    """The cloud and the operator's own identity; with --arm-endpoint, sign-in goes to
    AZURE_AUTHORITY_HOST (the cloud's own authority otherwise)."""
    cloud = Cloud.by_name(args.cloud)
    if args.arm_endpoint:
        cloud = Cloud.custom(args.arm_endpoint, env.get("AZURE_AUTHORITY_HOST"))
    selector = args.operator_identity_namespace_selector
    allowance = OperatorIdentityAllowance(
        frozenset(ns.strip() for ns in args.operator_identity_namespaces.split(",") if ns.strip()),
        LabelSelector.parse(selector) if selector.strip() else None,
    )
    return {
        "arm.cloud": cloud,
        "identity.credential": _global_credential(args.credentials, env),
        "identity.operator_identity": allowance,
    }


def _check_poll_times(p: argparse.ArgumentParser, values: Mapping[str, Any]) -> None:
    """Polls stretch from the interval up to the longest: neither of the others exceeds it."""
    longest = values["settings.poll_max_seconds"]
    for flag in ("--poll-interval-seconds", "--poll-initial-seconds"):
        value = values["settings." + flag[2:].replace("-", "_")]
        if value > longest:
            p.error(
                f"argument {flag}: must be at most {longest:g} (--poll-max-seconds, the longest "
                f"polls stretch to), not {value:g}"
            )


def _label_selector(p: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """--watch-label-selector, or --shard-key's short form of it; checked before any watch."""
    selector: str | None = args.watch_label_selector
    if args.shard_key is not None:
        if not _LABEL_VALUE.fullmatch(args.shard_key):
            p.error(
                f"--shard-key {args.shard_key!r} is not a label value: at most 63 letters, "
                "digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
        if selector is not None:
            p.error("--shard-key and --watch-label-selector are one setting: give one of them")
        return f"{SHARD_LABEL}={args.shard_key}"
    if selector is not None:
        try:
            LabelSelector.parse(selector)
        except ValueError as error:
            p.error(f"--watch-label-selector {selector!r}: {error}")
    return selector


__all__ = ["CredentialMode", "OperatorConfig", "load", "parser"]
