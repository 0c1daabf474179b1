"""Decisions about a run's inputs that are not I/O: which identity wins, which credential modes a
Secret may ask for, and whether the operator can reach the cluster's cloud at all.

The wiring layer (``controller.inputs``) reads the Secrets and ConfigMaps; it asks these
functions what the reads mean, and raises :class:`InputFailure` when they say no.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from controller.failure import Classification, Failure
from controller.vocabulary import Reason

from .spec import RunSpec


class InputFailure(Failure):
    """A run's inputs are missing or unusable; nothing was sent. Missing ones may appear later
    (GitOps applies in any order), so they are retried within spec.retries, with the run's
    backoff only: the reader does not retry at once."""

    def __init__(self, code: Reason, message: str, *, retryable: bool = False) -> None:
        super().__init__(
            message,
            code=code,
            classification=Classification.RETRY_LATER if retryable else Classification.FINAL,
        )


@dataclass(frozen=True)
class SecretIdentity:
    namespace: str
    name: str


@dataclass(frozen=True)
class OperatorIdentity:
    pass


Identity = SecretIdentity | OperatorIdentity


def credentials_secret(spec: RunSpec, default_secret: str) -> str:
    """The Secret to look for: the spec's own, else the namespace default."""
    return spec.credentials_secret or default_secret


def choose_identity(spec: RunSpec, namespace: str, default_secret: str, found: bool) -> Identity:
    """Most specific wins: the spec's Secret, the namespace default, the operator's own.
    Secrets are only ever read from the RunCommand's own namespace."""
    name = credentials_secret(spec, default_secret)
    if found:
        return SecretIdentity(namespace, name)
    if spec.credentials_secret:
        raise InputFailure(
            Reason.CREDENTIALS_NOT_FOUND,
            f"credentials Secret {namespace}/{name} not found",
            retryable=True,
        )
    return OperatorIdentity()


def check_secret_mode(
    mode: str, secret: SecretIdentity, *, workload_identity_from_secrets: bool
) -> None:
    """Workload identity from a Secret exchanges the operator's own service-account token for
    any client id the Secret names: every namespace could borrow every identity that trusts the
    operator. It is refused unless the operator was told otherwise."""
    if mode == "workload-identity" and not workload_identity_from_secrets:
        raise InputFailure(
            Reason.INVALID_CREDENTIALS,
            f"credentials Secret {secret.namespace}/{secret.name} asks for workload identity, "
            "which uses the operator's own token; the operator refuses it unless started "
            "with --allow-workload-identity-from-secrets",
        )


def check_cloud(spec: RunSpec, operator_cloud: str | Literal["Custom"]) -> None:
    """One operator talks to one ARM endpoint: a cluster in another cloud is unreachable."""
    if spec.cloud and operator_cloud != "Custom" and spec.cloud != operator_cloud:
        raise InputFailure(
            Reason.CLOUD_MISMATCH,
            f"spec.cluster.cloud is {spec.cloud} but this operator serves {operator_cloud}; "
            "run an operator for that cloud",
        )
