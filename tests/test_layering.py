"""The layering as it really loads, and CRD hygiene. The import rules themselves are import-linter
contracts in pyproject.toml, checked by `make lint` with indirect imports included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _int_or_string_fields(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if schema.get("x-kubernetes-int-or-string") or {
        str(s.get("type")) for s in schema.get("anyOf") or ()
    } == {"integer", "string"}:
        found.append((path, schema))
    for name, child in (schema.get("properties") or {}).items():
        found += _int_or_string_fields(child, f"{path}.{name}")
    if "items" in schema:
        found += _int_or_string_fields(schema["items"], f"{path}[]")
    return found


def test_int_or_string_fields_are_declared_so_and_say_so() -> None:
    """`x-kubernetes-int-or-string: true` (so the API server accepts both and CEL sees the type);
    kubectl explain still prints a schema without a type as <Object>, so the description says
    what the field takes (issue 24)."""
    crd = yaml.safe_load((ROOT / "crds" / "aks.gitops.dev_runcommandsets.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = _int_or_string_fields(schema, "")
    assert [path for path, _ in fields] == [
        ".spec.maxConcurrency",
        ".spec.maxFailures",
        ".spec.stages[].maxConcurrency",
        ".spec.stages[].maxFailures",
    ]
    for path, field in fields:
        assert field.get("x-kubernetes-int-or-string") is True, path
        assert "type" not in field, path  # a structural schema allows none beside the extension
        assert field["description"].startswith("IntOrString (kubectl explain shows Object): ")


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
