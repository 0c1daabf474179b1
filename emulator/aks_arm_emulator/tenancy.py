"""The tenant-level ARM reads the `az` CLI makes before any cluster call, so az works against
the emulator unchanged:

- `GET /metadata/endpoints?api-version=...`: the cloud's endpoints, which `az cloud register
  --endpoint-resource-manager URL` reads. Unauthenticated, as ARM's is. The emulator is both the
  resource manager and the login endpoint, and its own base URL is the ARM audience;
- `GET /subscriptions` and `GET /subscriptions/{id}` (Subscriptions - List / Get), which `az
  login` calls to find the accounts it may use: the subscriptions of the configured clusters,
  each in the tenant of the caller's token, as a principal sees its home tenant's;
- `GET /tenants` (Tenants - List): that tenant.

They take an ARM token like every other ARM route and the configured `apiVersions` range, but
neither ARM's throttle buckets nor injected faults: those model the cluster operations.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .arm import ArmApi
from .config import UUID_RE
from .errors import ArmErrorAnswer
from .signin import origin_of

CLOUD_NAME = "AksArmEmulator"


def cloud_metadata(origin: str) -> dict[str, Any]:
    """The shape of ARM's `/metadata/endpoints` (api-version 2022-09-01 and later: one cloud)."""
    return {
        "name": CLOUD_NAME,
        "portal": origin,
        "resourceManager": f"{origin}/",
        "authentication": {
            "loginEndpoint": origin,
            "audiences": [f"{origin}/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {},
    }


def _subscription(subscription_id: str, tenant_id: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": subscription_id,
        "tenantId": tenant_id,
        "displayName": f"aks-arm-emulator {subscription_id}",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def add_tenancy_routes(app: web.Application, arm: ArmApi) -> None:
    """Registered before the `/subscriptions/{tail}` catch-all of the cluster routes."""

    async def metadata(request: web.Request) -> web.Response:
        arm.check_api_version(request)
        return web.json_response(cloud_metadata(origin_of(request)))

    async def list_subscriptions(request: web.Request) -> web.Response:
        tenant = arm.authenticate(request).tenant_id
        arm.check_api_version(request)
        value = [_subscription(sub, tenant) for sub in arm.subscription_ids()]
        return web.json_response({"value": value, "count": {"type": "Total", "value": len(value)}})

    async def get_subscription(request: web.Request) -> web.Response:
        tenant = arm.authenticate(request).tenant_id
        arm.check_api_version(request)
        wanted = request.match_info["subscription"]
        if not UUID_RE.match(wanted):
            raise ArmErrorAnswer(
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{wanted}' is malformed or invalid.",
            )
        if wanted.lower() not in arm.subscription_ids():
            raise ArmErrorAnswer(
                404, "SubscriptionNotFound", f"The subscription '{wanted}' could not be found."
            )
        return web.json_response(_subscription(wanted.lower(), tenant))

    async def list_tenants(request: web.Request) -> web.Response:
        tenant = arm.authenticate(request).tenant_id
        arm.check_api_version(request)
        entry = {
            "id": f"/tenants/{tenant}",
            "tenantId": tenant,
            "tenantCategory": "Home",
            "displayName": "aks-arm-emulator",
            "defaultDomain": "aks-arm-emulator.invalid",
            "domains": ["aks-arm-emulator.invalid"],
            "tenantType": "AAD",
        }
        return web.json_response({"value": [entry]})

    app.router.add_get("/metadata/endpoints", metadata)
    app.router.add_get("/subscriptions", list_subscriptions)
    app.router.add_get("/subscriptions/{subscription}", get_subscription)
    app.router.add_get("/tenants", list_tenants)
