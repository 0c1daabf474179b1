"""No state or reason literal outside the vocabulary: every string constant in `controller/` that
equals a value of one of `controller.vocabulary`'s StrEnums (found by introspection, so a new one is
covered) fails here, named by file and line. The rule is whole-string equality on a constant that
is code: a docstring, an f-string's fragment or a help text that merely mentions ``Failed`` is
prose, not a value the operator writes or compares."""

from __future__ import annotations

import ast
import enum
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

import pytest

import controller
import controller.vocabulary as vocabulary

PACKAGE = Path(controller.__file__).resolve().parent
ROOT = PACKAGE.parent
VOCABULARY = Path(vocabulary.__file__).resolve()

# Files that still hold literals on this branch, with how many: others are replacing them with the
# vocabulary's names right now. A file may drop below its count, never rise above it; a file that
# has none left must leave this list (the lead empties it after merging).
NOT_YET: dict[str, int] = {}

# Classes that spell another system's vocabulary, whose words happen to equal ours: ARM's
# provisioningState is ARM's (``Succeeded``, ``Failed``, ``Canceled``), compared case-folded, and
# not a state of the operator.
FOREIGN: dict[tuple[str, str], str] = {
    ("controller/arm/models.py", "ProvisioningState"): "ARM's provisioningState values",
}


def vocabulary_words() -> dict[str, str]:
    """Each value of a StrEnum defined in the vocabulary, and the member that names it."""
    words: dict[str, str] = {}
    for value in vars(vocabulary).values():
        if (
            isinstance(value, type)
            and issubclass(value, enum.StrEnum)
            and value.__module__ == vocabulary.__name__
        ):
            for member in value:
                words.setdefault(member.value, f"{value.__name__}.{member.name}")
    return words


def _prose(tree: ast.Module, foreign_classes: set[str]) -> set[int]:
    """The ids of constants that are not code: docstrings, f-string fragments, foreign classes."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            skipped.update(id(part) for part in node.values)
        if isinstance(node, ast.ClassDef) and node.name in foreign_classes:
            skipped.update(id(inner) for inner in ast.walk(node))
    return skipped


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the module defines or imports: ``__all__`` and lazy import tables spell them as
    strings, and an exception class may share its reason's name (SubmissionOutcomeUnknown)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return names


def literals(
    source: str, words: Mapping[str, str], foreign_classes: Collection[str] = ()
) -> Iterator[tuple[int, str]]:
    """(line, value) of each string constant in `source` that is a word of the vocabulary."""
    tree = ast.parse(source)
    skipped = _prose(tree, set(foreign_classes))
    bound = _bound_names(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in words
            and node.value not in bound
            and id(node) not in skipped
        ):
            yield node.lineno, node.value


def modules() -> list[Path]:
    found = sorted(path for path in PACKAGE.rglob("*.py") if path.resolve() != VOCABULARY)
    assert len(found) > 20, f"only {len(found)} modules found under {PACKAGE}"
    return found


@pytest.fixture(scope="module")
def found_literals() -> dict[str, list[tuple[int, str]]]:
    """Every file of `controller/` with the literals it holds, parsed once for the module."""
    words = vocabulary_words()
    found: dict[str, list[tuple[int, str]]] = {}
    for path in modules():
        name = path.relative_to(ROOT).as_posix()
        foreign = {cls for (file, cls) in FOREIGN if file == name}
        hits = sorted(literals(path.read_text(), words, foreign))
        if hits:
            found[name] = hits
    return found


def test_the_words_cover_every_string_enum_of_the_vocabulary() -> None:
    words = vocabulary_words()
    assert {"Pending", "Progressing", "AnswerNotRecorded", "Warning", "InvalidNextLink"} <= set(
        words
    )
    enums = {
        name for name, value in vars(vocabulary).items()
        if isinstance(value, type) and issubclass(value, enum.StrEnum)
    }  # fmt: skip
    assert {"State", "SetState", "Reason", "EventType", "ErrorCode"} <= enums


def test_no_state_or_reason_literal_outside_the_vocabulary(
    found_literals: dict[str, list[tuple[int, str]]],
) -> None:
    words = vocabulary_words()
    problems: list[str] = []
    for name, hits in found_literals.items():
        allowed = NOT_YET.get(name, 0)
        if len(hits) > allowed:
            problems += [f"{name}:{line}: {value!r} is {words[value]}" for line, value in hits]
    assert not problems, "name these from controller.vocabulary:\n" + "\n".join(problems)


def test_the_allow_list_names_only_files_that_still_have_literals(
    found_literals: dict[str, list[tuple[int, str]]],
) -> None:
    counts = Counter({name: len(hits) for name, hits in found_literals.items()})
    stale = {name: (allowed, counts[name]) for name, allowed in NOT_YET.items() if not counts[name]}
    assert not stale, f"these files have no literal left: remove them from NOT_YET: {stale}"


def test_the_foreign_classes_exist() -> None:
    for (file, cls), why in FOREIGN.items():
        tree = ast.parse((ROOT / file).read_text())
        classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
        assert cls in classes, f"{file} has no class {cls} ({why})"


def test_the_check_catches_a_planted_literal(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""A module whose docstring says Failed."""\n'
        "\n"
        "def state(ok: bool, name: str) -> str:\n"
        '    """Failed"""\n'
        '    help_text = "the run Failed, read its logs"\n'
        '    message = f"{name} Failed"\n'
        '    fragment = f"Failed{name}"\n'
        '    return "Succeeded" if ok else help_text + message + fragment\n'
        "\n"
        "class ProvisioningState:\n"
        '    FAILED = "Failed"\n'
        "\n"
        'REASONS = {"x": "AnswerNotRecorded"}\n'
    )
    words = vocabulary_words()
    assert sorted(literals(planted.read_text(), words)) == [
        (8, "Succeeded"),
        (11, "Failed"),
        (13, "AnswerNotRecorded"),
    ]
    assert sorted(literals(planted.read_text(), words, {"ProvisioningState"})) == [
        (8, "Succeeded"),
        (13, "AnswerNotRecorded"),
    ]
