"""`make bench` writes one PNG per scenario (benchmarks/plots.py): each kind of plot is drawn here
from made-up figures, and the file it leaves is a PNG that shows what it was given."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib import image

from benchmarks import plots

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def plots_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(plots, "PLOTS_DIR", tmp_path)
    return tmp_path


def drawn(path: Path) -> bytes:
    data = path.read_bytes()
    assert data.startswith(PNG), f"{path} is not a PNG"
    assert image.imread(path).shape[:2] == (450, 800), "not the 8 x 4.5 in figure at 100 dpi"
    return data


def test_a_timeline_is_written_under_its_scenario(plots_dir: Path) -> None:
    path = plots.timeline(
        "scale", "scale", {"started": [1.0, 2.0, 3.0], "recorded": [4.0, 5.0]}, start=0.0,
        floor_seconds=3.0,
    )  # fmt: skip
    assert path == plots_dir / "scale.png"
    drawn(path)


def test_a_spread_draws_its_samples() -> None:
    groups = {"arm, 5 s": {"az way": [5.1, 5.3], "operator": [0.4, 0.6]}}
    few = drawn(plots.spread("latency", "latency", groups, "seconds"))
    groups["aks, 45 s"] = {"az way": [9.0], "operator": [30.0]}
    more = drawn(plots.spread("latency", "latency", groups, "seconds"))
    assert few != more, "the plot does not change with its samples"


def test_a_series_is_written() -> None:
    drawn(plots.series("memory", "memory", [0.0, 1.0, 2.0], [80.0, 120.0, 90.0], "MiB"))
