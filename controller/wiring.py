"""Where the operator's parts are built, connected and closed: one HTTP connection pool and one
ARM budget per subscription shared by all identities, the inputs that pick an identity per run,
the runtime and the RunCommandSet controller on top. Everything else takes its collaborators,
so tests build the same parts on fakes (a Kubernetes API in memory, ARM behind an httpx
transport)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from controller import metrics
from controller.arm import ArmThrottle, ThrottleConfig, new_http_client
from controller.fleet import Fleet
from controller.identities import ArmClients
from controller.inputs import InputReader
from controller.kube import KubeApi
from controller.runtime import Runtime
from controller.schedules import Schedules
from controller.settings import OperatorConfig
from controller.stopping import Stop


@dataclass
class Parts:
    kube: KubeApi
    http: httpx.AsyncClient
    clients: ArmClients
    runtime: Runtime
    fleet: Fleet
    schedules: Schedules

    async def start(self) -> None:
        await self.runtime.start()
        await self.fleet.start()
        await self.schedules.start()

    async def close(self) -> None:
        """Schedules and sets first (they claim nothing), then the runtime, which returns once
        the submissions in flight are recorded; the clients they used last."""
        await self.schedules.close()
        await self.fleet.close()
        await self.runtime.close()
        await self.clients.aclose()
        await self.http.aclose()
        await self.kube.close()


def build(config: OperatorConfig, kube: KubeApi, stop: Stop) -> Parts:
    """The parts, each handed its branch of the settings tree (controller/settings.py)."""
    arm = config.arm
    http = new_http_client(arm.ca_file)
    budget = ThrottleConfig() if arm.budget == "aks" else ThrottleConfig(provider=None)
    throttle = ArmThrottle(budget, observer=metrics.ArmMetrics())
    metrics.observe_budget(throttle.levels)
    clients = ArmClients(arm.cloud, http, throttle, ca_file=arm.ca_file)
    inputs = InputReader(config, kube, clients)
    runtime = Runtime(config, kube, inputs, poll_room=throttle.poll_room)
    stop.on_begin(runtime.begin_stop)
    fleet = Fleet(kube, inputs, settings=config.fleet, parents=config.parents)
    schedules = Schedules(kube, settings=config.schedules, parents=config.parents)
    return Parts(kube, http, clients, runtime, fleet, schedules)
