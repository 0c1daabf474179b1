"""The wiring: the parts built in one place, the stop connected to the runtime, all closed."""

from __future__ import annotations

import logging

import pytest

from controller import wiring
from controller.stopping import Stop
from tests.runtime.fakes import FakeKube, operator_config


async def test_the_stop_reaches_the_runtime_at_once_and_close_ends_the_drain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "controller.runtime")
    stop = Stop()
    parts = wiring.build(operator_config(), FakeKube(), stop)
    await parts.start()

    stop.begin()

    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if line.startswith("stopping:")] == [
        "stopping: no new run is claimed; waiting for ARM's answer to 0 submission(s) in flight"
    ]
    await parts.close()
    assert any(line.startswith("stopped in ") for line in (r.getMessage() for r in caplog.records))
    assert parts.http.is_closed
