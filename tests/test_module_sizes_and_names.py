"""The runtime's and the ARM client's modules stay small and name the vocabulary (issue 25): no
module over 400 lines, no function over 60, and no state, reason, event type or error code
written as a literal where ``controller.vocabulary`` names it. ARM's own provisioningState
values and codes are ARM's vocabulary, named once in ``controller/arm/models.py``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import vocabulary

ROOT = Path(__file__).resolve().parents[1] / "controller"
MODULES = sorted(
    [ROOT / "runtime.py", *(ROOT / "perform").glob("*.py")]
    + [ROOT / "arm" / name for name in ("__init__.py", "client.py", "listing.py", "models.py",
                                        "polling.py", "session.py", "submission.py")]
)  # fmt: skip
# The classes that name ARM's vocabulary: their values may equal an operator state's.
ARM_VOCABULARY = {"ProvisioningState", "ArmCode"}
NAMED = {
    str(member)
    for enum in (vocabulary.State, vocabulary.SetState, vocabulary.Reason, vocabulary.EventType,
                 vocabulary.ErrorCode)
    for member in enum
}  # fmt: skip


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the module imports or defines: ``__all__`` and lazy tables spell them as strings."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return names


def literals(source: str) -> Iterator[tuple[int, str]]:
    """String constants that are a vocabulary name, outside docstrings, ARM's own enums and the
    module's spelled-out names (an error class may share a reason's name)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    bound = _bound_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in ARM_VOCABULARY:
            skip.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip and node.value in NAMED - bound:
            yield node.lineno, str(node.value)


def test_the_scan_finds_a_literal_and_skips_docstrings_and_arm_enums() -> None:
    source = (
        '"""Failed"""\n'
        "class ProvisioningState:\n    FAILED = 'Failed'\n"
        "def f():\n    '''Running'''\n    return 'Running'\n"
        "from x import Failed\n__all__ = ['Failed']\n"
    )
    assert list(literals(source)) == [(6, "Running")]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_state_reason_or_code_literal(path: Path) -> None:
    assert list(literals(path.read_text())) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_small_modules_and_functions(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= 400
    long = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []
