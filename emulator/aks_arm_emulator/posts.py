"""Every runCommand POST the emulator saw, in arrival order, with what became of it.

`/_emulator/submissions` only lists accepted commands; a test that must prove "ARM was reached
exactly once per run" also needs the POSTs that were refused, throttled, failed, dropped or
abandoned, and for each whether a command started. A record is created when the request
arrives (outcome `pending`) and settled once its answer was written, or could not be.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

Outcome = Literal[
    "pending", "accepted", "refused", "throttled", "serverError", "dropped", "aborted"
]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass
class PostRecord:
    correlation_id: str
    client_request_id: str | None
    cluster: str  # the managed cluster's resource id as the request path named it
    received_at: datetime.datetime
    outcome: Outcome = "pending"
    answered_at: datetime.datetime | None = None
    # The answer the emulator had for the client (also when it could not be delivered).
    status: int | None = None
    code: str | None = None
    # Set the moment a command is started for this POST; never cleared.
    command_id: str | None = None
    # Set by the drop-connection fault, which closes the connection itself.
    dropped: bool = False

    def settle(self, status: int | None, code: str | None, delivered: bool) -> None:
        self.answered_at = _now()
        self.status, self.code = status, code
        if self.dropped:
            self.outcome = "dropped"
        elif not delivered:
            self.outcome = "aborted"
        elif status == 202:
            self.outcome = "accepted"
        elif status == 429:
            self.outcome = "throttled"
        elif status is not None and 400 <= status < 500:
            self.outcome = "refused"
        else:
            self.outcome = "serverError"

    def introspection(self) -> dict[str, Any]:
        return {
            "correlationId": self.correlation_id,
            "clientRequestId": self.client_request_id,
            "cluster": self.cluster,
            "receivedAt": _iso(self.received_at),
            "answeredAt": _iso(self.answered_at),
            "outcome": self.outcome,
            "status": self.status,
            "code": self.code,
            "commandId": self.command_id,
            "commandStarted": self.command_id is not None,
        }


# Set by the request-id middleware on runCommand POSTs; ArmApi fills in what it did.
POST_RECORD_KEY = web.RequestKey("post_record", PostRecord)


class PostLog:
    def __init__(self) -> None:
        self.records: list[PostRecord] = []

    def arrived(
        self, correlation_id: str, client_request_id: str | None, cluster: str
    ) -> PostRecord:
        record = PostRecord(correlation_id, client_request_id, cluster, _now())
        self.records.append(record)
        return record

    def clear(self) -> int:
        count = len(self.records)
        self.records.clear()
        return count


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def deliver(request: web.Request, response: web.StreamResponse) -> bool:
    """Write the answer now, rather than leave it to aiohttp, so the caller learns whether it
    reached the client. aiohttp then finds the response prepared and finished."""
    if client_gone(request):
        return False
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:  # aiohttp's ClientConnectionResetError is one
        return False
    return True
