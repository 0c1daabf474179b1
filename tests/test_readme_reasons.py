"""The docs guides' tables name every reason and state the operator writes: each reason in the
first column of a reasons table (a row of its own, or of a group), or in an Events list; each
state in the first column of the states table, and nothing else there. A name elsewhere (in
prose, a code block, another table) does not count. (The docs' generated reference lists them
from the code itself: tests/test_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.core import Reason, State

ROOT = Path(__file__).resolve().parents[1]
# The docs site's guides carry the tables: RunCommand's, RunCommandSet's and the schedule's.
GUIDES = "\n\n".join(
    (ROOT / "docs" / "guides" / name).read_text()
    for name in ("runcommands.md", "fleets.md", "schedules.md")
)
DOCUMENTS = {"docs/guides": GUIDES}
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
    """The backticked names in the items of every **Events** list."""
    lists = markdown.split("**Events**")[1:]
    assert lists, "no **Events** list"
    items = [
        item for after in lists for item in re.findall(
            r"^- (.*(?:\n  .*)*)$", after.split("\n\n#")[0], flags=re.MULTILINE
        )
    ]  # fmt: skip
    return {name for item in items for name in NAME.findall(item)}


# Not the troubleshooting table (`status.reason` | What to do): it lists only some reasons.
REASON_HEADER = re.compile(r"(Set |Schedule )?`status\.reason` \| state \| When")
STATE_HEADER = re.compile(r"state \| meaning \| .*")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_tables_are_found(document: str) -> None:
    """Guards against a check that passes because it looks at nothing."""
    reason_tables = first_column_names(DOCUMENTS[document], REASON_HEADER)
    assert len(reason_tables) == 3  # RunCommand, RunCommandSet and RunCommandSchedule
    assert len(first_column_names(DOCUMENTS[document], STATE_HEADER)) == 1
    assert {"Succeeded", "DeadlineExceeded"} <= reason_tables[0]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_reason_has_a_row_or_an_event_entry(reason: Reason, document: str) -> None:
    markdown = DOCUMENTS[document]
    documented = set().union(*first_column_names(markdown, REASON_HEADER)) | event_names(markdown)
    assert str(reason) in documented, f"{document} has no reasons-table row for `{reason}`"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_states_table_names_exactly_the_states(document: str) -> None:
    (states,) = first_column_names(DOCUMENTS[document], STATE_HEADER)
    assert states == {str(state) for state in State}


def test_a_name_outside_the_first_column_or_the_tables_does_not_count() -> None:
    markdown = (
        "Prose names `Running`.\n\n"
        "| `status.reason` | state | When |\n|---|---|---|\n| `Succeeded` | `Running` | x |\n\n"
        "| other | x |\n|---|---|\n| `Stalled` | y |\n"
    )
    header = re.compile(r"`status\.reason` \| state \| When")
    assert first_column_names(markdown, header) == [{"Succeeded"}]
