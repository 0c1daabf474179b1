"""Assembles the emulator: ARM and sign-in routes, the request-id middleware, and the
`/_emulator/...` introspection and control endpoints (no authentication: loopback tests only)."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from .arm import ArmApi
from .arm_wire import CORRELATION_KEY, run_command_cluster
from .commands import CommandRunner
from .config import ConfigError, EmulatorConfig, Mode, cluster_from_mapping, faults_to_mapping
from .errors import ERROR_CODE_KEY, ArmErrorAnswer, arm_error
from .faults import FaultInjector
from .posts import POST_RECORD_KEY, PostLog, deliver
from .run_command import ClientGone, DropConnection
from .signin import add_signin_routes
from .tenancy import add_tenancy_routes
from .tokens import TokenAuthority

log = logging.getLogger(__name__)

RUNNER_KEY = web.AppKey("runner", CommandRunner)
AUTHORITY_KEY = web.AppKey("authority", TokenAuthority)
# ARM answers by "METHOD STATUS" (e.g. "GET 429"), so benchmarks can see throttling and load.
STATS_KEY = web.AppKey("stats", Counter[str])
# Requests by operation ("managedClusters list", ...): what a test counts to see ARM budgets spent.
OPERATIONS_KEY = web.AppKey("operations", Counter[str])
POSTS_KEY = web.AppKey("posts", PostLog)
FAULTS_KEY = web.AppKey("faults", FaultInjector)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ARM's tracing headers on every answer; logs carry method, path and ids, never headers."""
    correlation_id = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
    request_id = str(uuid.uuid4())
    request[CORRELATION_KEY] = correlation_id
    client_request_id = request.headers.get("x-ms-client-request-id")
    cluster = run_command_cluster(request)
    record = None
    if cluster is not None:
        record = request.app[POSTS_KEY].arrived(correlation_id, client_request_id, cluster)
        request[POST_RECORD_KEY] = record
    try:
        response = await handler(request)
    except (DropConnection, ClientGone) as exc:
        # No answer can be written. Returning (rather than raising) keeps aiohttp from logging
        # a traceback for an intended fault or a client that left.
        if record is not None:
            record.settle(None, None, delivered=False)
        log.info(
            "%s %s -> %s (correlation %s)",
            request.method,
            request.path,
            "connection dropped" if isinstance(exc, DropConnection) else "client gone",
            correlation_id,
        )
        return web.Response(status=204)
    except ArmErrorAnswer as exc:
        response = exc.response()
    except web.HTTPException as exc:
        response = arm_error(exc.status, exc.reason.replace(" ", ""), exc.text or exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = arm_error(500, "InternalServerError", "The emulator hit an internal error.")
    if request.path.startswith("/subscriptions/"):
        request.app[STATS_KEY][f"{request.method} {response.status}"] += 1
        if request.method == "GET" and request.path.casefold().endswith("/managedclusters"):
            request.app[OPERATIONS_KEY]["managedClusters list"] += 1
    response.headers["x-ms-request-id"] = request_id
    response.headers["x-ms-correlation-request-id"] = correlation_id
    if client_request_id:
        response.headers["x-ms-client-request-id"] = client_request_id
    if record is not None:
        delivered = await deliver(request, response)
        record.settle(response.status, response.get(ERROR_CODE_KEY), delivered)
    log.info(
        "%s %s -> %s (request %s, correlation %s)",
        request.method,
        request.path,
        response.status,
        request_id,
        correlation_id,
    )
    return response


async def list_submissions(request: web.Request) -> web.Response:
    runner = request.app[RUNNER_KEY]
    return web.json_response(
        {"submissions": [s.introspection() for s in runner.submissions.values()]}
    )


async def clear_submissions(request: web.Request) -> web.Response:
    removed = request.app[RUNNER_KEY].clear()
    return web.json_response({"removed": removed})


async def list_posts(request: web.Request) -> web.Response:
    records = request.app[POSTS_KEY].records
    return web.json_response({"posts": [r.introspection() for r in records]})


async def clear_posts(request: web.Request) -> web.Response:
    return web.json_response({"removed": request.app[POSTS_KEY].clear()})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": faults_to_mapping(request.app[FAULTS_KEY].config)})


async def set_faults(request: web.Request) -> web.Response:
    try:
        changes = await request.json()
    except ValueError:
        return arm_error(400, "InvalidFaults", "The body must be a JSON object of fault knobs.")
    try:
        updated = request.app[FAULTS_KEY].update(changes)
    except ConfigError as exc:
        return arm_error(400, "InvalidFaults", str(exc))
    log.info("faults changed: %s", faults_to_mapping(updated))
    return web.json_response({"faults": faults_to_mapping(updated)})


async def revoke_tokens(request: web.Request) -> web.Response:
    revoked = request.app[AUTHORITY_KEY].revoke_all()
    log.info("revoked %d access token(s)", revoked)
    return web.json_response({"revoked": revoked})


async def stats(request: web.Request) -> web.Response:
    counts: Counter[str] = request.app[STATS_KEY]
    operations: Counter[str] = request.app[OPERATIONS_KEY]
    return web.json_response({"requests": dict(counts), "operations": dict(operations)})


def cluster_routes(app: web.Application, arm: ArmApi, mode: Mode) -> None:
    """POST /_emulator/clusters adds a cluster (a `clusters:` entry of the config, as JSON);
    DELETE /_emulator/clusters removes one (subscriptionId, resourceGroup, name). Lists and
    runCommand see the change at once, as a fleet that grows and shrinks would."""

    async def add(request: web.Request) -> web.Response:
        try:
            cluster = cluster_from_mapping(await request.json(), mode)
        except (ValueError, ConfigError) as exc:
            return arm_error(400, "InvalidCluster", str(exc))
        if not arm.add_cluster(cluster):
            return arm_error(409, "ClusterExists", f"{cluster.resource_id} exists already.")
        log.info("cluster added: %s", cluster.resource_id)
        return web.json_response({"id": cluster.resource_id}, status=201)

    async def remove(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            removed = arm.remove_cluster(
                body["subscriptionId"], body["resourceGroup"], body["name"]
            )
        except (ValueError, KeyError, TypeError) as exc:
            return arm_error(
                400, "InvalidCluster", f"name subscriptionId, resourceGroup and name: {exc}"
            )
        return web.json_response({"removed": removed})

    app.router.add_post("/_emulator/clusters", add)
    app.router.add_delete("/_emulator/clusters", remove)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(config: EmulatorConfig, state_dir: Path | None = None) -> web.Application:
    """A ready aiohttp application; run it with web.AppRunner/TCPSite or aiohttp's test server.
    With `state_dir`, accepted commands outlive a restart on the same directory."""
    app = web.Application(middlewares=[request_ids], client_max_size=config.max_request_bytes)
    authority = TokenAuthority(config.token_lifetime_seconds)
    faults = FaultInjector(config.faults)
    runner = CommandRunner(config, faults, state_dir)
    app[AUTHORITY_KEY] = authority
    app[RUNNER_KEY] = runner
    app[STATS_KEY] = Counter()
    app[OPERATIONS_KEY] = Counter()
    app[POSTS_KEY] = PostLog()
    app[FAULTS_KEY] = faults
    arm = ArmApi(config, authority, runner, faults)

    app.router.add_get("/_emulator/submissions", list_submissions)
    app.router.add_delete("/_emulator/submissions", clear_submissions)
    app.router.add_get("/_emulator/posts", list_posts)
    app.router.add_delete("/_emulator/posts", clear_posts)
    app.router.add_get("/_emulator/faults", get_faults)
    app.router.add_post("/_emulator/faults", set_faults)
    app.router.add_post("/_emulator/revoke-tokens", revoke_tokens)
    app.router.add_get("/_emulator/stats", stats)
    app.router.add_get("/_emulator/health", health)
    cluster_routes(app, arm, config.mode)
    add_tenancy_routes(app, arm)
    app.router.add_route("*", "/subscriptions/{tail:.*}", arm.handle)
    add_signin_routes(app, authority, config.signin)

    async def stop_commands(_: web.Application) -> None:
        await runner.shutdown()

    app.on_shutdown.append(stop_commands)
    return app
