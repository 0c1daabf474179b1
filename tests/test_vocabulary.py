"""The vocabulary module is names only: it imports the standard library and nothing else, so
every room of the operator (ARM, the core, the wiring) can name states, reasons and labels from it
without an arrow pointing the wrong way. Checked on its source, beside the import contract, so a
module the contract's list does not name yet fails here too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import ModuleType

import pytest

import controller.failure as failure
import controller.vocabulary as vocabulary


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import reaches into the project"
            roots.add((node.module or "").split(".")[0])
    return roots


@pytest.mark.parametrize("module", [vocabulary, failure], ids=lambda m: m.__name__)
def test_the_shared_names_import_only_the_standard_library(module: ModuleType) -> None:
    """The vocabulary and the failure shape, which every room imports."""
    roots = imported_roots(Path(str(module.__file__)).read_text())
    assert roots, f"{module.__name__}'s imports were not found"
    outside = sorted(root for root in roots if root not in sys.stdlib_module_names)
    assert outside == [], f"{module.__name__} imports {outside}"


def test_the_check_sees_a_project_import() -> None:
    assert imported_roots("from controller.core import fleet\nimport yaml\n") == {
        "controller",
        "yaml",
    }
