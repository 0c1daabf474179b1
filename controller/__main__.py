"""`python -m controller` / `aks-runcommand-operator`: run the operator."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from controller import config as configuration
from controller import kubeconfig

if TYPE_CHECKING:
    from controller.stopping import Stop


def main(argv: Sequence[str] | None = None) -> int:
    config = configuration.load(argv)  # bad flags and unreadable files exit 2, naming the flag
    try:
        # Here, not in kopf's login: kopf retries a failed login every minute without end, and a
        # missing or broken file is no outage to wait out.
        kubeconfig.load_configuration()
    except kubeconfig.KubeConfigError as error:
        print(f"aks-runcommand-operator: error: {error}", file=sys.stderr)
        return 2
    # kopf, and the handlers with it, are loaded only once the configuration is known to be
    # usable: a configuration error is said before the import time of kopf's whole stack.
    import kopf

    from controller import metrics

    kopf.configure(
        verbose=config.logging.verbose,
        log_format=kopf.LogFormat.JSON if config.logging.format == "json" else kopf.LogFormat.FULL,
    )
    metrics.label_clusters(config.metrics.cluster_labels)
    if config.metrics.port:
        metrics.serve(config.metrics.port)
    # azure-core and httpx log every HTTP exchange at INFO; our ARM client logs what matters.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not config.logging.verbose:
        # kopf says "Handler 'watch' succeeded." for every event it hands over; the runtime's
        # own lines say what happened to each run. Failures still show (ERROR).
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(operate(config))
    return 0


async def operate(config: configuration.OperatorConfig) -> None:
    """kopf.operator, with the stop of stopping.py: kopf's spawn_tasks and run_tasks, as
    kopf.operator runs them, and between the two our signal handlers in place of kopf's."""
    import kopf

    from controller.handlers import build_registry, memo
    from controller.stopping import Stop

    stop: Stop = Stop()
    current = asyncio.current_task()
    existing = {task for task in asyncio.all_tasks() if task is not current}
    tasks = await kopf.spawn_tasks(
        registry=build_registry(),
        memo=memo(config, stop),
        clusterwide=not config.watching.namespaces,
        namespaces=config.watching.namespaces,
        standalone=config.peering.name is None,
        peering_name=config.peering.name,
        priority=config.peering.priority,
        liveness_endpoint=config.health.liveness,
        stop_flag=stop.flag,
    )
    stop.install(asyncio.get_running_loop())
    await kopf.run_tasks(tasks, ignored=existing)


if __name__ == "__main__":
    sys.exit(main())
