"""The record: ARM's answer to our claim is written whatever it takes while the claim stands
(lost races, the API server away), and said in an event when the claim no longer stands."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from controller.kube import ApiError
from tests.runtime.fakes import FakeKube, HeldArm, Stack, start_stack


def _claim_goes_through(_: dict[str, Any]) -> None:
    pass


def _api_server_away(_: dict[str, Any]) -> None:
    raise ApiError(503, "the API server is restarting")


async def test_the_answer_is_recorded_after_lost_races_that_keep_our_claim(stack: Stack) -> None:
    body = stack.kube.create("edited")
    # Between the claim and the record, someone else writes twice (a label, an edit): each
    # costs the record a 409; the claim still stands.
    edit = lambda _: stack.kube.touch("edited")  # noqa: E731
    stack.kube.before_patch += [_claim_goes_through, edit, edit]

    await stack.runtime.reconcile(body)

    assert [p.outcome for p in stack.kube.patches] == ["written", "conflict", "conflict", "written"]
    assert stack.kube.status("edited")["commandId"] == stack.arm.commands[0]
    assert len(stack.arm.posts) == 1
    assert [reason for _, reason, _ in stack.kube.events] == ["Submitted"]


async def test_the_answer_is_recorded_after_the_api_server_answered_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "controller.runtime")
    # The tries to record come 10 ms apart here: the API server is away for two of them.
    stack = await start_stack(FakeKube(), HeldArm(), record_backoff=(0.01,))
    try:
        body = stack.kube.create("outage")
        stack.kube.before_patch += [_claim_goes_through, _api_server_away, _api_server_away]

        await stack.runtime.reconcile(body)
    finally:
        await stack.close()

    outcomes = [p.outcome for p in stack.kube.patches]
    assert outcomes[0] == outcomes[3] == "written"
    assert len(outcomes) == 4 and all("503" in outcome for outcome in outcomes[1:3])
    lines = [r.getMessage() for r in caplog.records if r.name == "controller.runtime"]
    assert sum("cannot record ARM's answer yet" in line for line in lines) == 2, lines
    status = stack.kube.status("outage")
    assert (status["state"], status["commandId"]) == ("Running", stack.arm.commands[0])
    assert len(stack.arm.posts) == 1


async def test_an_answer_to_a_claim_given_up_meanwhile_is_said_in_an_event(stack: Stack) -> None:
    body = stack.kube.create("superseded")
    next_run = {"state": "Submitting", "correlationId": "the-next-run", "claimedBy": "op-2"}
    # While our POST was out, a peer gave up our claim (its lease ran out) and started anew.
    stack.kube.before_patch += [
        _claim_goes_through,
        lambda _: stack.kube.touch("superseded", next_run),
    ]

    await stack.runtime.reconcile(body)

    status = stack.kube.status("superseded")
    assert status["correlationId"] == "the-next-run"
    assert "commandId" not in status
    (name, reason, message), *_ = stack.kube.events
    assert (name, reason) == ("superseded", "AnswerNotRecorded")
    assert stack.arm.commands[0] in message
    assert stack.runtime.scheduled == 0  # nothing of ours left to poll
