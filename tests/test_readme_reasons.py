"""The README's reason tables name every reason and state the operator writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.core import Reason, State

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", [*Reason, *State], ids=str)
def test_the_readme_explains(name: str) -> None:
    assert f"`{name}`" in README, f"README.md does not explain `{name}`"
