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
from controller.settings import HealthSettings

logger = logging.getLogger("controller.health")


class Unhealthy(Exception):
    """The API server the watches need does not answer, or does not serve RunCommands."""


async def check_api(kube: KubeApi, namespaces: Sequence[str], settings: HealthSettings) -> None:
    """Raises Unhealthy unless a watch of RunCommands could be listed now, in every watched
    namespace (none: cluster-wide), within settings.check_seconds."""
    for namespace in namespaces or (None,):
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        try:
            async with asyncio.timeout(settings.check_seconds):
                served = await kube.runcommands_served(namespace)
        except TimeoutError:
            raise Unhealthy(
                f"the API server did not answer a list of RunCommands {where} "
                f"within {settings.check_seconds:.0f} s"
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


async def wait_for_api(kube: KubeApi, namespaces: Sequence[str], settings: HealthSettings) -> None:
    """At start: wait until the API server answers (one warning per try, as it is expected to
    come up soon: no traceback), then warn of each watched namespace that does not exist, where
    the operator would otherwise idle without a word."""
    attempt = 0
    while True:
        try:
            await check_api(kube, namespaces, settings)
            break
        except Unhealthy as error:
            retries = settings.start_retry_seconds
            delay = retries[min(attempt, len(retries) - 1)]
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
