"""The house rules of issue 25, over every module of the three distributions (the operator, the
emulator, the kubectl plugin): no module over 400 lines and no function over 60, so each one can
be read in a sitting. The vocabulary's own rule (no state or reason literal outside it) is
tests/test_vocabulary_literals.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "controller", ROOT / "emulator" / "aks_arm_emulator",
            ROOT / "kubectl-plugin" / "kubectl_runcommand")  # fmt: skip
MODULES = sorted(path for package in PACKAGES for path in package.rglob("*.py"))
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_every_package_is_scanned() -> None:
    for package in PACKAGES:
        assert len([m for m in MODULES if package in m.parents]) >= 5, f"{package} not found"


def test_the_scan_sees_a_long_function() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    assert long_functions(f"def f():\n{body}\ndef g():\n    pass\n") == [("f", 61)]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_small_modules_and_functions(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, "split it by what its parts are"
    assert long_functions(source) == []
