"""The operator's health, as a kubelet sees it (issue 24, defect 5): liveness answers 500 while
the API server its watches need cannot be reached, and 200 again once it is back; an operator
started before its API server waits, saying so once per try; a watched namespace that does not
exist is said at start. Runs on its own control plane, as its API server is stopped on purpose.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, running
from tests.kube import eventually, kubectl
from tests.operator.conftest import CRD
from tests.stack import Emulator, Operator, running_operator


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, kubectl_path: str) -> Iterator[ControlPlane]:
    with running("health", tmp_path_factory.mktemp("health")) as started:
        kubectl(kubectl_path, started.kubeconfig, "apply", "--server-side", "-f", str(CRD))
        kubectl(kubectl_path, started.kubeconfig, "wait", "--for=condition=Established",
                "crd/runcommands.aks.gitops.dev")  # fmt: skip
        yield started


def liveness(operator: Operator) -> int:
    url = f"http://127.0.0.1:{operator.liveness_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_liveness_fails_while_the_api_server_is_unreachable_and_recovers(
    plane: ControlPlane, emulator: Emulator, tmp_path: Path
) -> None:
    with running_operator(
        plane.kubeconfig, emulator, tmp_path, "--namespace", "default", "--namespace", "ghost"
    ) as operator:
        assert liveness(operator) == 200
        log = operator.log.read_text()
        assert "namespace ghost (--namespace, WATCH_NAMESPACES) does not exist" in log
        assert "namespace default (--namespace" not in log
        plane.stop_apiserver()
        try:
            # kopf keeps a probe's answer for 10 s: the outage shows within that and a check.
            eventually("answering 500 while unreachable", lambda: liveness(operator) == 500)
            assert "the API server cannot be reached" in operator.log.read_text()
        finally:
            plane.start_apiserver()
        eventually("answering 200 once the API server is back", lambda: liveness(operator) == 200)


def test_an_operator_started_before_its_api_server_waits_one_line_per_try(
    plane: ControlPlane, emulator: Emulator, tmp_path: Path
) -> None:
    operator = Operator(plane.kubeconfig, emulator, tmp_path, ("--namespace", "default"))
    failures: list[BaseException] = []

    def start() -> None:
        try:
            operator.start()  # returns once liveness answers 200
        except BaseException as error:
            failures.append(error)

    plane.stop_apiserver()
    starting = threading.Thread(target=start)
    try:
        starting.start()
        eventually(
            "saying it waits for the API server",
            lambda: operator.log.exists()
            and operator.log.read_text().count("trying again in") >= 2,
            timeout=60,
        )
    finally:
        plane.start_apiserver()  # the main thread: its processes die with this one, not a thread
    starting.join()
    try:
        assert not failures, failures
        assert liveness(operator) == 200
        log = operator.log.read_text().splitlines()
        waits = [line for line in log if "trying again in" in line]
        assert all(
            "the API server cannot be reached" in line or "the API server is not ready" in line
            for line in waits
        ), waits
        assert "Traceback" not in operator.log.read_text()
    finally:
        operator.stop()
