"""The claim: written conditionally on the version read, before the POST and only then; a lost
race is decided again from fresh state and never submits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.core import RunSpec
from tests.runtime.fakes import Stack, eventually


async def test_a_run_is_claimed_on_the_version_read_then_posted_once_and_recorded(
    stack: Stack,
) -> None:
    body = stack.kube.create("first")

    await stack.runtime.reconcile(body)

    claim, record = stack.kube.patches
    assert claim.outcome == "written"
    assert claim.resource_version == body["metadata"]["resourceVersion"]
    assert (claim.status["state"], claim.status["claimedBy"]) == ("Submitting", "op-1")
    assert stack.arm.correlation_ids() == [claim.status["correlationId"]]
    status = stack.kube.status("first")
    assert status["state"] == "Running"
    assert status["commandId"] == stack.arm.commands[0]
    assert status["correlationId"] == claim.status["correlationId"]
    assert record.status["commandId"] == stack.arm.commands[0]


async def test_a_claim_that_loses_the_race_is_decided_again_and_never_submits(
    stack: Stack,
) -> None:
    body = stack.kube.create("raced")
    peer_claim: dict[str, Any] = {
        "state": "Submitting",
        "reason": "Submitting",
        "correlationId": "claimed-by-the-peer",
        "claimedBy": "op-2",
        "claimedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "specHash": RunSpec.parse(body["spec"]).run_hash,
    }
    # Between our read and our claim, a peer claims the run.
    stack.kube.before_patch.append(lambda _: stack.kube.touch("raced", peer_claim))

    await stack.runtime.reconcile(body)

    await eventually(lambda: stack.kube.status("raced").get("reason") == "WaitingForClaim")
    ours = [p for p in stack.kube.claims() if p.status.get("claimedBy") == "op-1"]
    assert [p.outcome for p in ours] == ["conflict"]
    assert stack.kube.status("raced")["correlationId"] == "claimed-by-the-peer"
    assert stack.arm.posts == []
