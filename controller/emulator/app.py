"""Assembles the emulator: ARM and sign-in routes, introspection, the request-id middleware."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from .arm import CORRELATION_KEY, ArmApi, DropConnection
from .commands import CommandRunner
from .config import EmulatorConfig
from .errors import arm_error
from .signin import add_signin_routes
from .tokens import TokenAuthority

log = logging.getLogger(__name__)

RUNNER_KEY = web.AppKey("runner", CommandRunner)
AUTHORITY_KEY = web.AppKey("authority", TokenAuthority)
# ARM answers by "METHOD STATUS" (e.g. "GET 429"), so benchmarks can see throttling and load.
STATS_KEY = web.AppKey("stats", Counter[str])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ARM's tracing headers on every answer; logs carry method, path and ids, never headers."""
    correlation_id = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
    request_id = str(uuid.uuid4())
    request[CORRELATION_KEY] = correlation_id
    try:
        response = await handler(request)
    except DropConnection:
        # The transport is already aborted; this response is never written. Returning (rather
        # than raising) keeps aiohttp from logging a traceback for an intended fault.
        log.info(
            "%s %s -> connection dropped (correlation %s)",
            request.method,
            request.path,
            correlation_id,
        )
        return web.Response(status=204)
    except web.HTTPException as exc:
        response = arm_error(exc.status, exc.reason.replace(" ", ""), exc.text or exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = arm_error(500, "InternalServerError", "The emulator hit an internal error.")
    if request.path.startswith("/subscriptions/"):
        request.app[STATS_KEY][f"{request.method} {response.status}"] += 1
    response.headers["x-ms-request-id"] = request_id
    response.headers["x-ms-correlation-request-id"] = correlation_id
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        response.headers["x-ms-client-request-id"] = client_request_id
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


async def stats(request: web.Request) -> web.Response:
    counts: Counter[str] = request.app[STATS_KEY]
    return web.json_response({"requests": dict(counts)})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(config: EmulatorConfig) -> web.Application:
    """A ready aiohttp application; run it with web.AppRunner/TCPSite or aiohttp's test server."""
    app = web.Application(middlewares=[request_ids], client_max_size=config.max_request_bytes)
    authority = TokenAuthority(config.token_lifetime_seconds)
    runner = CommandRunner(config)
    app[AUTHORITY_KEY] = authority
    app[RUNNER_KEY] = runner
    app[STATS_KEY] = Counter()
    arm = ArmApi(config, authority, runner)

    app.router.add_get("/_emulator/submissions", list_submissions)
    app.router.add_delete("/_emulator/submissions", clear_submissions)
    app.router.add_get("/_emulator/stats", stats)
    app.router.add_get("/_emulator/health", health)
    app.router.add_route("*", "/subscriptions/{tail:.*}", arm.handle)
    add_signin_routes(app, authority)

    async def stop_commands(_: web.Application) -> None:
        await runner.shutdown()

    app.on_shutdown.append(stop_commands)
    return app
