"""The README's tables name every reason and state the operator writes: each reason in the first
column of a reasons table (a row of its own, or of a group), or in the Events list; each state
in the first column of the states table, and nothing else there. A name elsewhere in the README
(in prose, a code block, another table) does not count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.core import Reason, State

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
NAME = re.compile(r"`([A-Za-z]+)`")


def tables(markdown: str) -> list[list[list[str]]]:
    """Every pipe table: its rows (the header first, the |---| line left out) as cells."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def first_column_names(markdown: str, header: re.Pattern[str]) -> list[set[str]]:
    """The backticked names in the first column of each table whose header row matches."""
    return [
        {name for row in table[1:] for name in NAME.findall(row[0])}
        for table in tables(markdown)
        if header.fullmatch(" | ".join(table[0]))
    ]


def event_names(markdown: str) -> set[str]:
    """The backticked names that open the items of the **Events** list."""
    _, found, after = markdown.partition("**Events**")
    assert found, "the README has no **Events** list"
    items = re.findall(r"^- (.*)$", after.split("\n\n#")[0], flags=re.MULTILINE)
    return {name for item in items for name in NAME.findall(item)}


# Not the troubleshooting table (`status.reason` | What to do): it lists only some reasons.
REASON_TABLES = first_column_names(README, re.compile(r"(Set )?`status\.reason` \| state \| When"))
STATE_TABLES = first_column_names(README, re.compile(r"state \| meaning \| .*"))


def test_the_tables_are_found() -> None:
    """Guards against a check that passes because it looks at nothing."""
    assert len(REASON_TABLES) == 2  # RunCommand and RunCommandSet
    assert len(STATE_TABLES) == 1
    assert {"Succeeded", "DeadlineExceeded"} <= REASON_TABLES[0]


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_reason_has_a_row_or_an_event_entry(reason: Reason) -> None:
    documented = set().union(*REASON_TABLES) | event_names(README)
    assert str(reason) in documented, f"README.md has no reasons-table row for `{reason}`"


def test_the_states_table_names_exactly_the_states() -> None:
    (states,) = STATE_TABLES
    assert states == {str(state) for state in State}


def test_a_name_outside_the_first_column_or_the_tables_does_not_count() -> None:
    markdown = (
        "Prose names `Running`.\n\n"
        "| `status.reason` | state | When |\n|---|---|---|\n| `Succeeded` | `Running` | x |\n\n"
        "| other | x |\n|---|---|\n| `Stalled` | y |\n"
    )
    header = re.compile(r"`status\.reason` \| state \| When")
    assert first_column_names(markdown, header) == [{"Succeeded"}]
