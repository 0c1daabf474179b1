"""A minimal Microsoft Entra ID: OpenID discovery and the v2.0 client-credentials token endpoint.

By default any tenant (path segment, echoed as `tid`) and any `client_id` are accepted: a client
secret only has to be non-empty and a client assertion only has to be a well-formed, unexpired
JWT with the right audience: the token endpoint URL for a certificate assertion
(`iss == sub == client_id`), `api://AzureADTokenExchange` for a federated token (workload
identity). The `signin:` section makes it refuse like Entra ID: unknown tenants, wrong secrets,
certificate assertions not signed by a registered certificate (see registrations.py).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .config import SigninConfig
from .errors import oauth_error
from .registrations import Refusal, Registrations, unknown_tenant
from .tokens import TokenAuthority

log = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# OpenID scopes msal may add; they never decide the audience.
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}


def origin_of(request: web.Request) -> str:
    """The base URL the caller used, e.g. https://127.0.0.1:43123."""
    return f"{request.scheme}://{request.host}"


def _openid_configuration(origin: str, tenant: str) -> dict[str, Any]:
    base = f"{origin}/{tenant}"
    return {
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "aks-arm-emulator",
    }


async def instance_discovery(request: web.Request) -> web.Response:
    # Only reached by clients pointed at this host for discovery; msal itself asks
    # login.microsoftonline.com unless `disable_instance_discovery=True`.
    origin = origin_of(request)
    return web.json_response(
        {
            "tenant_discovery_endpoint": f"{origin}/common/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [],
        }
    )


def _audience_from_scope(scope: str) -> str | None:
    requested = [s for s in scope.split() if s and s not in _RESERVED_SCOPES]
    if len(requested) != 1 or not requested[0].endswith("/.default"):
        return None
    audience = requested[0][: -len("/.default")]
    return audience or None


def _refuse(request: web.Request, refusal: Refusal) -> web.Response:
    # msal sends client-request-id; Entra echoes it as correlation_id.
    return oauth_error(
        refusal.status,
        refusal.error,
        refusal.aadsts,
        refusal.text,
        correlation_id=request.headers.get("client-request-id"),
    )


def make_discovery_handler(registrations: Registrations) -> Any:
    async def openid_configuration(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not registrations.tenant_known(tenant, for_discovery=True):
            # Entra's discovery answers 400 invalid_tenant; msal turns any 4xx here into a
            # ValueError, which azure-identity's credentials raise as ClientAuthenticationError.
            return _refuse(request, Refusal(400, "invalid_tenant", 90002, unknown_tenant(tenant)))
        return web.json_response(_openid_configuration(origin_of(request), tenant))

    return openid_configuration


def _malformed(form: Any) -> Refusal | None:
    """Refusals of the request's shape, before any credential is looked at."""
    if form.get("grant_type") != "client_credentials":
        return Refusal(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; only client_credentials is emulated.",
        )
    if not form.get("client_id"):
        return Refusal(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    if _audience_from_scope(str(form.get("scope", ""))) is None:
        return Refusal(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have "
            "a single scope value with /.default suffixed to the resource identifier.",
        )
    assertion_type = form.get("client_assertion_type")
    if assertion_type is not None and assertion_type != JWT_BEARER:
        return Refusal(400, "invalid_request", 50027, "Unsupported client_assertion_type.")
    if assertion_type is None and not form.get("client_secret"):
        return Refusal(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    return None


def make_token_handler(authority: TokenAuthority, registrations: Registrations) -> Any:
    async def token(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if not registrations.tenant_known(tenant):
            return _refuse(request, Refusal(400, "invalid_request", 90002, unknown_tenant(tenant)))
        form = await request.post()
        malformed = _malformed(form)
        if malformed is not None:
            return _refuse(request, malformed)
        client_id = str(form["client_id"])
        audience = _audience_from_scope(str(form["scope"]))
        assert audience is not None  # checked by _malformed
        origin = origin_of(request)
        if form.get("client_assertion_type") is not None:
            method = "assertion"
            refusal = registrations.check_assertion(
                str(form.get("client_assertion", "")), client_id, f"{origin}{request.path}"
            )
        else:
            method = "secret"
            refusal = registrations.check_secret(client_id, str(form["client_secret"]))
        if refusal is not None:
            log.info(
                "sign-in refused: tenant=%s client=%s method=%s AADSTS%s",
                tenant,
                client_id,
                method,
                refusal.aadsts,
            )
            return _refuse(request, refusal)
        access_token = authority.issue(
            issuer=f"{origin}/{tenant}/v2.0",
            tenant_id=tenant,
            client_id=client_id,
            audience=audience,
        )
        log.info(
            "sign-in: tenant=%s client=%s method=%s aud=%s", tenant, client_id, method, audience
        )
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": authority.lifetime_seconds,
                "ext_expires_in": authority.lifetime_seconds,
                "access_token": access_token,
            }
        )

    return token


def add_signin_routes(
    app: web.Application, authority: TokenAuthority, config: SigninConfig
) -> None:
    registrations = Registrations(config)

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(authority.jwks())

    app.router.add_get(
        "/{tenant}/v2.0/.well-known/openid-configuration", make_discovery_handler(registrations)
    )
    app.router.add_post("/{tenant}/oauth2/v2.0/token", make_token_handler(authority, registrations))
    app.router.add_get("/{tenant}/discovery/v2.0/keys", keys)
    app.router.add_get("/common/discovery/instance", instance_discovery)
