"""The stop (SIGTERM): no claim once it has begun, polls and timers dropped, and every
submission already claimed gets ARM's answer recorded before `close` returns, even when the
caller that started it (kopf's worker) is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from tests.helpers import settle
from tests.runtime.fakes import HeldArm, Stack, eventually, start_stack


async def test_a_submission_in_flight_at_the_stop_is_recorded_before_close_returns(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "controller.runtime")
    stack.arm.release.clear()  # ARM holds the POST
    body = stack.kube.create("held")
    kopf_worker = asyncio.create_task(stack.runtime.reconcile(body))
    await stack.arm.posted.wait()

    stack.runtime.begin_stop()
    kopf_worker.cancel()  # kopf cancels its workers as it stops
    with contextlib.suppress(asyncio.CancelledError):
        await kopf_worker
    closing = asyncio.create_task(stack.runtime.close())
    await settle()  # all close could do without ARM's answer, done
    assert not closing.done(), "close returned before ARM answered"
    assert stack.runtime.in_flight == 1
    assert "commandId" not in stack.kube.status("held")

    stack.arm.release.set()
    await asyncio.wait_for(closing, timeout=10)

    status = stack.kube.status("held")
    assert (status["state"], status["commandId"]) == ("Running", stack.arm.commands[0])
    assert stack.runtime.in_flight == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "controller.runtime"]
    assert any("ARM's answer to 1 submission(s) in flight" in line for line in lines), lines
    assert any(
        line.startswith("stopped in ")
        and line.endswith(": 1 submission(s) in flight at the stop answered and recorded")
        for line in lines
    ), lines


async def test_no_run_is_claimed_once_the_stop_has_begun_and_a_restart_claims_it(
    stack: Stack,
) -> None:
    stack.kube.labels_gate = asyncio.Event()  # the submission's authorization reads labels
    body = stack.kube.create("late")
    kopf_worker = asyncio.create_task(stack.runtime.reconcile(body))
    await eventually(lambda: stack.kube.labels_asked == 1)  # preparing: nothing written yet

    stack.runtime.begin_stop()
    stack.kube.labels_gate.set()
    await asyncio.wait_for(kopf_worker, timeout=10)
    await stack.runtime.close()

    assert stack.kube.patches == []
    assert stack.kube.status("late") == {}
    assert stack.arm.posts == []

    restarted = await start_stack(stack.kube, HeldArm())
    try:
        await restarted.runtime.reconcile(stack.kube.objects["late"])
        assert [p.outcome for p in stack.kube.claims()] == ["written"]
        assert stack.kube.status("late")["commandId"] == restarted.arm.commands[0]
    finally:
        await restarted.close()


async def test_polls_pending_at_the_stop_are_dropped(stack: Stack) -> None:
    stack.arm.retry_after = "0"  # ARM says: poll at once
    body = stack.kube.create("polled")
    await stack.runtime.reconcile(body)
    assert stack.runtime.scheduled == 1  # its first poll, due now: its timer fires next turn

    stack.runtime.begin_stop()

    assert stack.runtime.scheduled == 0
    await settle()  # what would have polled by now, has
    assert stack.arm.polls == []
    assert stack.kube.status("polled")["state"] == "Running"  # a restart polls it
