"""What the operator checks of the API server its watches stream from: at start, that it answers
(waited for while it is not ready, one line per try) and that the namespaces the operator was
told to watch exist; then, for the liveness probe, that it still answers.

kopf's own watches log their errors and retry without end, and kopf's liveness endpoint answers
200 as long as every probe handler returns: the probe here fails while the API server cannot be
reached, so the kubelet restarts an operator whose watches have gone silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from controller.kube import ApiError, KubeApi, transient

logger = logging.getLogger("controller.health")

# A liveness check that takes longer than this is a failure (the chart's probe waits 10 s).
CHECK_SECONDS = 5.0
_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)  # at start, while the API server is not ready


class Unhealthy(Exception):
    """The API server the watches need does not answer, or does not serve RunCommands."""


async def check_api(kube: KubeApi, namespaces: Sequence[str]) -> None:
    """Raises Unhealthy unless a watch of RunCommands could be listed now, in every watched
    namespace (none: cluster-wide), within CHECK_SECONDS."""
    for namespace in namespaces or (None,):
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                served = await kube.runcommands_served(namespace)
        except TimeoutError:
            raise Unhealthy(
                f"the API server did not answer a list of RunCommands {where} "
                f"within {CHECK_SECONDS:.0f} s"
            ) from None
        except ApiError as error:
            if transient(error):  # starting, restarting, overloaded
                raise Unhealthy(f"the API server is not ready: {error}") from None
            refused = f"the API server refuses to list RunCommands {where}: {error}"
            raise Unhealthy(refused) from None
        except Exception as error:
            if not transient(error):
                raise
            raise Unhealthy(f"the API server cannot be reached: {error}") from None
        if not served:
            raise Unhealthy(f"RunCommands are not served {where}: is the CRD installed?")


async def wait_for_api(kube: KubeApi, namespaces: Sequence[str]) -> None:
    """At start: wait until the API server answers (one warning per try, as it is expected to
    come up soon: no traceback), then warn of each watched namespace that does not exist, where
    the operator would otherwise idle without a word."""
    attempt = 0
    while True:
        try:
            await check_api(kube, namespaces)
            break
        except Unhealthy as error:
            delay = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
            attempt += 1
            logger.warning("%s; trying again in %.0f s (attempt %d)", error, delay, attempt)
            await asyncio.sleep(delay)
    for namespace in namespaces:
        try:
            exists = await kube.namespace_exists(namespace)
        except Exception as error:
            if not (isinstance(error, ApiError) or transient(error)):
                raise
            logger.info("could not check that namespace %s exists: %s", namespace, error)
            continue
        if not exists:
            logger.warning(
                "namespace %s (--namespace, WATCH_NAMESPACES) does not exist: no RunCommand "
                "there will run until it is created",
                namespace,
            )
