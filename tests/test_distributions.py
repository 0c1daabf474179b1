"""Three distributions in one repository: the operator (controller/), the emulator (emulator/,
`aks-arm-emulator`) and the kubectl plugin (kubectl-plugin/, `kubectl-runcommand`). Each wheel
holds its own package only, because of what it is built from; the operator never loads the two
others. Built as the release builds them (`python -m build`, .github/workflows/release.yml)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# directory -> (distribution, its one import package, its console script)
DISTRIBUTIONS = {
    ".": ("aks-runcommand-operator", "controller", "aks-runcommand-operator"),
    "emulator": ("aks-arm-emulator", "aks_arm_emulator", "aks-arm-emulator"),
    "kubectl-plugin": ("kubectl-runcommand", "kubectl_runcommand", "kubectl-runcommand"),
}
OTHER_PACKAGES = ("aks_arm_emulator", "kubectl_runcommand")


def project(directory: str) -> dict[str, Any]:
    data = tomllib.loads((REPO_ROOT / directory / "pyproject.toml").read_text())
    assert isinstance(data, dict)
    return data


def pins(requirements: list[str]) -> dict[str, str]:
    return dict(requirement.split("==") for requirement in requirements)


def test_importing_every_operator_module_loads_neither_the_emulator_nor_the_plugin() -> None:
    """import-linter sees import statements; this sees what importing all of `controller`
    really loads, in a fresh interpreter."""
    probe = (
        "import importlib, pkgutil, sys, controller\n"
        "names = [m.name for m in pkgutil.walk_packages(controller.__path__, 'controller.')]\n"
        "for name in names: importlib.import_module(name)\n"
        f"print(len(names), sorted(m for m in sys.modules if m.startswith({OTHER_PACKAGES!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) > 20  # it walked the operator's modules
    assert loaded.strip() == "[]"


def test_the_probe_sees_a_module_that_loads_the_emulator() -> None:
    """The check above can fail: the same probe, on a module that imports the emulator."""
    probe = (
        "import sys, aks_arm_emulator.config\n"
        f"print(sorted(m for m in sys.modules if m.startswith({OTHER_PACKAGES!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "'aks_arm_emulator.config'" in done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each distribution's wheel, built with the release's front end from its directory. Without
    build isolation: the backend is the test extra's hatchling, pinned as every [build-system]."""
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for directory, (name, _, _) in DISTRIBUTIONS.items():
        target = out / name
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(target)],
            cwd=REPO_ROOT / directory,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        (built[directory],) = target.glob("*.whl")
    return built


@pytest.mark.parametrize("directory", list(DISTRIBUTIONS))
def test_each_wheel_holds_its_own_package_and_script_only(
    wheels: dict[str, Path], directory: str
) -> None:
    name, package, script = DISTRIBUTIONS[directory]
    with zipfile.ZipFile(wheels[directory]) as wheel:
        names = wheel.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    assert wheels[directory].name.startswith(name.replace("-", "_") + "-")
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {package}
    assert f"{package}/__main__.py" in names and f"{package}/py.typed" in names
    console = [line for line in scripts.splitlines() if " = " in line]
    assert console == [f"{script} = {package}.__main__:main"]


def test_the_build_pins_agree() -> None:
    """The test extra's hatchling is the one every distribution builds with, and its `build` the
    one the release workflow installs."""
    extras = pins(project(".")["project"]["optional-dependencies"]["test"])
    for directory in DISTRIBUTIONS:
        assert project(directory)["build-system"]["requires"] == [
            f"hatchling=={extras['hatchling']}"
        ], directory
    workflow = (REPO_ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert f"pip install build=={extras['build']}\n" in workflow


def test_the_emulator_pins_what_the_operator_pins_and_the_plugin_depends_on_nothing() -> None:
    """One environment holds all three for the tests: a shared dependency has one pin."""
    operator = pins(project(".")["project"]["dependencies"])
    emulator = pins(project("emulator")["project"]["dependencies"])
    shared = operator.keys() & emulator.keys()
    assert shared >= {"aiohttp", "cryptography", "PyJWT", "PyYAML"}
    assert {k: emulator[k] for k in shared} == {k: operator[k] for k in shared}
    assert project("kubectl-plugin")["project"]["dependencies"] == []


def test_the_test_extra_names_the_two_others_and_make_installs_them_from_their_paths() -> None:
    test_extra = project(".")["project"]["optional-dependencies"]["test"]
    for directory in ("emulator", "kubectl-plugin"):
        meta = project(directory)["project"]
        assert f"{meta['name']}=={meta['version']}" in test_extra
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "pip install --quiet -e ./emulator -e ./kubectl-plugin -e '.[test,dev]'" in makefile
