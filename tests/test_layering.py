"""The design card's dependency rules, checked on the import statements themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "controller"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            prefix = "." * node.level
            names.add(prefix + node.module)
    return names


def modules(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py"))


# The operator's wiring modules: only they may know both ARM and Kubernetes.
WIRING = tuple(
    f"controller.{name}"
    for name in ("runtime", "handlers", "kube", "config", "identities", "metrics")
)
# (where, imports it must never make)
RULES = [
    ("arm", ("kopf", "kubernetes", "controller.core", "controller.emulator", *WIRING)),
    ("core", ("kopf", "kubernetes", "httpx", "azure", "aiohttp", "controller.emulator", *WIRING)),
    (
        "emulator",
        ("kopf", "kubernetes", "httpx", "azure", "controller.arm", "controller.core", *WIRING),
    ),
]


@pytest.mark.parametrize(("subpackage", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_layers_import_only_downwards(subpackage: str, forbidden: tuple[str, ...]) -> None:
    found = modules(subpackage)
    assert found, f"no modules under controller/{subpackage}"
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in found
        for name in imports_of(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert violations == []


def test_nothing_on_the_operator_path_imports_the_emulator() -> None:
    operator_modules = [p for p in PACKAGE.glob("*.py")] + modules("arm") + modules("core")
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in operator_modules
        for name in imports_of(path)
        if "emulator" in name
    ]
    assert violations == []


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


def test_every_crd_field_has_a_description() -> None:
    """So that `kubectl explain runcommand.spec...` helps at every level."""
    crd = yaml.safe_load((ROOT / "crds" / "aks.gitops.dev_runcommands.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _properties_without_description(schema, "") == []


def test_the_checks_see_what_they_look_for() -> None:
    """Guards against checks that pass because they look at nothing."""
    assert "kopf" in imports_of(PACKAGE / "handlers.py")
    assert "controller.arm" in imports_of(PACKAGE / "core" / "decide.py")
    schema = {"properties": {"a": {"description": "x", "items": {"properties": {"b": {}}}}}}
    assert _properties_without_description(schema, "") == [".a[].b"]
