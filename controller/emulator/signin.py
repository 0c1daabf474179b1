"""A minimal Microsoft Entra ID: OpenID discovery and the v2.0 client-credentials token endpoint.

Accepted callers: any tenant (path segment, echoed as `tid`) and any `client_id`. There are no
app registrations, so a client secret only has to be non-empty and a client assertion only has to
be a well-formed, unexpired JWT with the right audience: the token endpoint URL for a certificate
assertion (`iss == sub == client_id`), `api://AzureADTokenExchange` for a federated token
(workload identity). Signatures of client assertions are not verified.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import jwt
from aiohttp import web

from .errors import oauth_error
from .tokens import TokenAuthority

log = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
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


async def openid_configuration(request: web.Request) -> web.Response:
    tenant = request.match_info["tenant"]
    return web.json_response(_openid_configuration(origin_of(request), tenant))


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


def _check_assertion(assertion: str, client_id: str, token_url: str) -> str | None:
    """Return a description of what is wrong with the assertion, or None when acceptable."""
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return "the client assertion is not a well-formed JWT"
    if not header.get("alg") or header.get("alg") == "none":
        return "the client assertion is unsigned"
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + 30 < time.time():
        return "the client assertion is expired or has no exp"
    audiences = claims.get("aud")
    audience_list = audiences if isinstance(audiences, list) else [audiences]
    if claims.get("iss") == client_id and claims.get("sub") == client_id:
        # Certificate credential: the assertion is addressed to this token endpoint.
        wanted = token_url.rstrip("/").lower()
        if not any(isinstance(a, str) and a.rstrip("/").lower() == wanted for a in audience_list):
            return "the certificate assertion audience is not this token endpoint"
        return None
    # Federated identity credential: a token from an external issuer (e.g. Kubernetes).
    if FEDERATED_AUDIENCE not in audience_list:
        return f"the federated token audience must be {FEDERATED_AUDIENCE}"
    if not claims.get("sub") or not claims.get("iss"):
        return "the federated token has no iss or sub"
    return None


def make_token_handler(authority: TokenAuthority) -> Any:
    async def token(request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        grant_type = str(form.get("grant_type", ""))
        client_id = str(form.get("client_id", ""))
        if grant_type != "client_credentials":
            return oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type; only client_credentials is emulated.",
            )
        if not client_id:
            return oauth_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        audience = _audience_from_scope(str(form.get("scope", "")))
        if audience is None:
            return oauth_error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have "
                "a single scope value with /.default suffixed to the resource identifier.",
            )
        origin = origin_of(request)
        token_url = f"{origin}{request.path}"
        assertion_type = form.get("client_assertion_type")
        if assertion_type is not None:
            if assertion_type != JWT_BEARER:
                return oauth_error(
                    400, "invalid_request", 50027, "Unsupported client_assertion_type."
                )
            problem = _check_assertion(str(form.get("client_assertion", "")), client_id, token_url)
            if problem is not None:
                log.info("sign-in refused: tenant=%s client=%s: %s", tenant, client_id, problem)
                return oauth_error(
                    401, "invalid_client", 700027, f"Client assertion failed: {problem}."
                )
            method = "assertion"
        elif form.get("client_secret"):
            method = "secret"
        else:
            return oauth_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
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


def add_signin_routes(app: web.Application, authority: TokenAuthority) -> None:
    async def keys(request: web.Request) -> web.Response:
        return web.json_response(authority.jwks())

    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", make_token_handler(authority))
    app.router.add_get("/{tenant}/discovery/v2.0/keys", keys)
    app.router.add_get("/common/discovery/instance", instance_discovery)
