"""An emulator restarted on the same state directory still answers for what it accepted, as ARM
does across its own restarts (issue 24): a finished command keeps its result, and one that was
running when the emulator stopped ends Failed with a reason that says so, not "not found"."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aks_arm_emulator import EmulatorConfig
from aks_arm_emulator.commands import JOURNAL, CommandRunner
from aks_arm_emulator.config import ScriptedConfig
from aks_arm_emulator.faults import FaultInjector

from tests.emulator.emulator_harness import (
    Emulator,
    arm_token,
    call,
    cluster,
    running_emulator,
    submit,
    wait_done,
)


def config(duration: float) -> EmulatorConfig:
    scripted = ScriptedConfig(exit_code=3, logs="kept\n", duration_seconds=duration)
    return EmulatorConfig(clusters=(cluster(),), mode="scripted", scripted=scripted)


async def accepted(emulator: Emulator) -> str:
    """Submit; the Location's path (the port changes with a restart)."""
    status, headers, _ = await submit(emulator, await arm_token(emulator))
    assert status == 202
    return headers["Location"].split("/", 3)[3]


async def result(emulator: Emulator, path: str) -> tuple[int, dict[str, object]]:
    status, _, body = await call(
        emulator, "GET", f"{emulator.base_url}/{path}", token=await arm_token(emulator)
    )
    return status, body


async def test_a_finished_command_keeps_its_result_across_a_restart(tmp_path: Path) -> None:
    with running_emulator(config(0.0), tmp_path, journal=True) as emulator:
        path = await accepted(emulator)
        token = await arm_token(emulator)
        before = await wait_done(emulator, token, f"{emulator.base_url}/{path}")
    with running_emulator(config(0.0), tmp_path, journal=True) as restarted:
        status, after = await result(restarted, path)
    assert status == 200, after
    assert after == before
    assert before["properties"]["exitCode"] == 3 and before["properties"]["logs"] == "kept\n"


async def test_a_command_running_at_shutdown_ends_failed_with_the_reason(tmp_path: Path) -> None:
    with running_emulator(config(60.0), tmp_path, journal=True) as emulator:
        path = await accepted(emulator)
        status, _ = await result(emulator, path)
        assert status == 202  # running
    with running_emulator(config(60.0), tmp_path, journal=True) as restarted:
        status, body = await result(restarted, path)
    assert status == 200, body
    properties = body["properties"]
    assert isinstance(properties, dict)
    assert (properties["provisioningState"], properties["reason"]) == ("Failed", "EmulatorShutdown")


async def test_a_command_running_when_the_emulator_was_killed_ends_failed(tmp_path: Path) -> None:
    """A SIGKILL leaves the journal saying Running: the next emulator cannot follow it further."""
    runner = CommandRunner(config(60.0), FaultInjector(config(60.0).faults), tmp_path)
    submission = runner.accept(
        cluster(), "sleep 60", None, correlation_id="c", client_request_id=None,
        cluster_token_sent=False,
    )  # fmt: skip
    await asyncio.sleep(0)  # running; the journal is what a SIGKILL now would leave behind
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert json.loads(lines[-1])["state"] == "Running"
    try:
        reborn = CommandRunner(config(60.0), FaultInjector(config(60.0).faults), tmp_path)
        restored = reborn.submissions[submission.command_id]
        assert (restored.state, restored.reason) == ("Failed", "EmulatorRestarted")
        assert restored.command == "sleep 60" and restored.correlation_id == "c"
    finally:
        await runner.shutdown()
