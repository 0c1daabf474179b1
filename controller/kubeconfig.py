"""The way to the API server, as kopf's login and kubectl read it: in-cluster (a pod's
ServiceAccount token) or else the kubeconfig. Only the `kubernetes` package's configuration
loader is used (with its token refresh); the calls themselves are in controller/kube.py."""

from __future__ import annotations

import os
from typing import Any

import kubernetes

__all__ = ["KubeConfigError", "load_configuration"]


class KubeConfigError(Exception):
    """The way to the API server cannot be read (no kubeconfig, a broken one, no in-cluster
    token): a configuration error that no retry mends, so the operator exits at once."""


def load_configuration() -> Any:
    """The `kubernetes` client's configuration, in-cluster or else from the kubeconfig, in the
    order kopf's login reads them; KubeConfigError names the file that failed."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException as in_cluster:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):  # in a pod: its token is the way
            token = kubernetes.config.incluster_config.SERVICE_TOKEN_FILENAME
            raise KubeConfigError(
                f"in-cluster configuration (KUBERNETES_SERVICE_HOST is set; token {token}, "
                f"mounted unless automountServiceAccountToken is false): {in_cluster}"
            ) from None
        _load_kubeconfig()
    return kubernetes.client.Configuration.get_default_copy()


def _load_kubeconfig() -> None:
    named = os.environ.get("KUBECONFIG")
    source = "env KUBECONFIG" if named else "the default; set KUBECONFIG to use another"
    files = [os.path.expanduser(f) for f in (named or "~/.kube/config").split(os.pathsep) if f]
    if not any(os.path.isfile(f) for f in files):
        raise KubeConfigError(
            f"kubeconfig {os.pathsep.join(files)} ({source}): no such file, and not in a pod"
        )
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(files)
        )
    # The loader fails in many ways on a malformed file (YAML errors, TypeError, KeyError, ...):
    # each is the same configuration error.
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__  # one line
        raise KubeConfigError(
            f"kubeconfig {os.pathsep.join(files)} ({source}) cannot be used: {reason}"
        ) from None
