"""The layering as it really loads, and CRD hygiene. The import rules themselves are import-linter
contracts in pyproject.toml, checked by `make lint` with indirect imports included."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "controller"


def _properties_without_description(schema: dict[str, object], path: str) -> list[str]:
    missing: list[str] = []
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            where = f"{path}.{name}"
            if name != "metadata" and not sub.get("description"):
                missing.append(where)
            missing += _properties_without_description(sub, where)
    items = schema.get("items")
    if isinstance(items, dict):
        missing += _properties_without_description(items, f"{path}[]")
    return missing


@pytest.mark.parametrize(
    "crd_file",
    [
        "aks.gitops.dev_runcommands.yaml",
        "aks.gitops.dev_runcommandpolicies.yaml",
        "aks.gitops.dev_runcommandsets.yaml",
        "aks.gitops.dev_runcommandschedules.yaml",
    ],
)
def test_every_crd_field_has_a_description(crd_file: str) -> None:
    """So that `kubectl explain runcommand.spec...` helps at every level."""
    crd = yaml.safe_load((ROOT / "crds" / crd_file).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _properties_without_description(schema, "") == []


def test_the_checks_see_what_they_look_for() -> None:
    """Guards against checks that pass because they look at nothing."""
    schema = {"properties": {"a": {"description": "x", "items": {"properties": {"b": {}}}}}}
    assert _properties_without_description(schema, "") == [".a[].b"]


def test_importing_the_core_loads_no_io_library() -> None:
    """import-linter sees the import statements; this sees what an import really loads."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, controller.core; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split("'")
    heavy = {"httpx", "azure", "kubernetes", "kopf", "aiohttp", "urllib3"}
    assert sorted(name for name in loaded if name.split(".")[0] in heavy) == []
