"""Stops as Kubernetes makes them (SIGTERM, then SIGKILL after the pod's grace) while ARM holds
every runCommand POST: the operator claims nothing more, waits for the POSTs it has sent,
records their answers and exits, well within the grace. Checked against the emulator's log of
every POST it saw: nothing Unknown, nothing posted twice, nothing lost. A second SIGTERM while
stopping is a crash: the operator exits at once, and its claim ends Unknown.

Each scenario runs on its own management API server and scripted emulator (test_chaos.py's
chaos), so nothing here disturbs the rest of the suite.
"""

from __future__ import annotations

import random
import re
import signal
import statistics
import time
from pathlib import Path

import pytest

from tests.helpers import poll_until
from tests.operator import test_chaos
from tests.operator.test_chaos import (
    OPERATOR_DIED,
    Chaos,
    check_exactly_once,
    report,
    runs_posted,
)

chaos = test_chaos.chaos  # the harness: a management API server and an emulator of its own

GRACE_SECONDS = 30.0  # Kubernetes' default; the chart's is longer (values.yaml)
HOLD_SECONDS = 2.0  # how long ARM holds each POST, as a slow ARM does
STOP_BEGINS = re.compile(r"waiting for ARM's answer to (\d+) submission\(s\) in flight")
STOP_ENDS = re.compile(r"stopped in ([\d.]+)s: (\d+) submission\(s\) in flight at the stop")


def in_flight_at_stops(log: Path) -> list[int]:
    """The submissions in flight each stop began with, from the operator's log lines."""
    return [int(n) for n in STOP_BEGINS.findall(log.read_text())]


def drains(log: Path) -> list[tuple[float, int]]:
    """Each stop's drain as the operator logged its end: seconds, submissions recorded."""
    return [(float(s), int(n)) for s, n in STOP_ENDS.findall(log.read_text())]


def wait_for_pending_posts(chaos: Chaos, count: int, timeout: float = 60) -> None:
    poll_until(
        lambda: sum(1 for p in chaos.emulator.posts() if p["outcome"] == "pending"),
        lambda held: held >= count,
        what=f"ARM holds {count} POSTs at once",
        timeout=timeout,
        interval=0.05,
    )


def check_every_run_recorded_once(
    chaos: Chaos, statuses: dict[str, dict[str, object]], names: list[str]
) -> dict[str, int]:
    figures = check_exactly_once(chaos, statuses, [(name, "1") for name in names])
    assert figures["succeeded"] == len(names), figures
    posted = runs_posted(chaos.emulator)
    assert {f"echo {name} 1": 1 for name in names} == dict(posted), "one started POST per run"
    return figures


def test_sigterm_mid_post_records_every_answer_and_exits_within_the_grace(
    chaos: Chaos, capsys: pytest.CaptureFixture[str]
) -> None:
    hold = 5.0
    chaos.emulator.set_faults(submitLatencySeconds=hold)
    operator = chaos.operator("sigterm-op")
    names = [f"held-{i}" for i in range(3)]
    chaos.apply_runs(names)
    wait_for_pending_posts(chaos, len(names))

    seconds, killed = operator.terminate(GRACE_SECONDS)

    assert not killed, f"the operator did not stop within {GRACE_SECONDS}s"
    assert seconds < GRACE_SECONDS / 2, f"the stop took {seconds:.1f}s"
    assert in_flight_at_stops(operator.log) == [len(names)]
    ((drained, recorded_at_stop),) = drains(operator.log)
    assert recorded_at_stop == len(names)
    recorded = chaos.statuses()
    assert all(recorded[name].get("commandId") for name in names), recorded
    assert [p["outcome"] for p in chaos.emulator.posts()] == ["accepted"] * len(names)

    chaos.emulator.set_faults(submitLatencySeconds=0.0)
    operator.start()
    statuses = chaos.wait_all_final(len(names), timeout=60)
    figures = check_every_run_recorded_once(chaos, statuses, names)
    assert {name: statuses[name]["commandId"] for name in names} == {
        name: recorded[name]["commandId"] for name in names
    }
    report(capsys, "SIGTERM mid-POST", {"POST held (s)": hold, "drain (s)": drained,
                                         "exit (s)": round(seconds, 1), **figures})  # fmt: skip


@pytest.mark.timeout(900)
def test_chaos_sigterms_with_posts_held_leave_nothing_unknown_duplicated_or_lost(
    chaos: Chaos, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261201)
    started = time.monotonic()
    chaos.emulator.set_faults(submitLatencySeconds=HOLD_SECONDS)
    operator = chaos.operator("sigterm-chaos-op")
    names = [f"run-{i:03d}" for i in range(100)]
    exits: list[float] = []
    kills = 0
    for batch, stops in enumerate((5, 5, 5, 4, 4)):
        chaos.apply_runs(names[batch * 20 : (batch + 1) * 20])
        for _ in range(stops):  # at random moments while runs are claimed, posted and polled
            time.sleep(rng.uniform(0.2, 2.5))
            seconds, killed = operator.terminate(GRACE_SECONDS)
            exits.append(seconds)
            kills += killed
            time.sleep(rng.uniform(0.0, 0.5))
            operator.start()

    statuses = chaos.wait_all_final(len(names), timeout=300)
    figures = check_every_run_recorded_once(chaos, statuses, names)
    in_flight, drained = in_flight_at_stops(operator.log), drains(operator.log)
    report(capsys, "SIGTERM chaos", {
        "SIGTERMs": len(exits), "SIGKILLs after the grace": kills,
        "submissions in flight at the stops": sum(in_flight),
        "stops with submissions in flight": sum(1 for n in in_flight if n),
        "drain max (s)": max(seconds for seconds, _ in drained),
        "exit median (s)": round(statistics.median(exits), 1),
        "exit max (s)": round(max(exits), 1), "grace (s)": GRACE_SECONDS,
        **figures, "seconds": round(time.monotonic() - started),
    })  # fmt: skip
    assert len(exits) == len(in_flight) == len(drained) == 23
    assert kills == 0
    assert max(exits) < GRACE_SECONDS / 2, exits
    assert sum(in_flight) > 0, "no stop came while a POST was held: the test proved nothing"


def test_a_second_sigterm_while_stopping_is_a_crash(chaos: Chaos) -> None:
    hold = 20.0
    chaos.emulator.set_faults(submitLatencySeconds=hold)
    operator = chaos.operator("impatient-op")
    chaos.apply_runs(["crashed"])
    wait_for_pending_posts(chaos, 1)
    assert operator.process is not None

    started = time.monotonic()
    operator.process.send_signal(signal.SIGTERM)
    deadline = started + 10
    while not in_flight_at_stops(operator.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_flight_at_stops(operator.log) == [1]
    operator.process.send_signal(signal.SIGTERM)
    code = operator.process.wait(GRACE_SECONDS)

    assert time.monotonic() - started < hold / 2, "the second SIGTERM waited for the POST"
    assert code == 128 + signal.SIGTERM
    assert "received again while stopping: exiting now" in operator.log.read_text()
    assert drains(operator.log) == []  # no drain ended: the answer was never recorded
    chaos.emulator.set_faults(submitLatencySeconds=0.0)
    operator.start()
    (status,) = chaos.wait_all_final(1, timeout=60).values()
    assert status["state"] == "Unknown" and OPERATOR_DIED in status["message"], status
