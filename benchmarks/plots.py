"""`make bench` plots: one PNG per scenario (matplotlib, written without a display), so a run's
shape shows at a glance next to its figures: runs started, finished in ARM and recorded in
status over time, against the budget's floor."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a bench machine or in CI
import matplotlib.pyplot as plt  # after the backend is chosen
from matplotlib.figure import Figure

PLOTS_DIR = Path(
    os.environ.get("BENCH_PLOTS", Path(__file__).resolve().parents[1] / ".cache" / "bench")
)


def epoch(timestamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp (the emulator's POST log)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def timeline(
    scenario: str,
    title: str,
    curves: dict[str, Sequence[float]],
    *,
    start: float,
    floor_seconds: float | None = None,
) -> Path:
    """Cumulative counts over seconds since ``start`` (epoch seconds), one step curve per name
    (e.g. started, finished in ARM, recorded), and the floor as a dashed vertical line: the
    least makespan the budget allows."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for label, moments in curves.items():
        xs = sorted(moment - start for moment in moments)
        axes.step([0.0, *xs], range(len(xs) + 1), where="post", label=f"{label} ({len(xs)})")
    if floor_seconds is not None:
        axes.axvline(
            floor_seconds,
            color="grey",
            linestyle="--",
            label=f"budget floor ({floor_seconds:.0f} s)",
        )
    axes.set_xlabel("seconds since the first apply")
    axes.set_ylabel("runs")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, scenario)


def series(
    scenario: str, title: str, xs: Sequence[float], ys: Sequence[float], ylabel: str
) -> Path:
    """One measured quantity over time (e.g. RSS during a cold start)."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    axes.plot(list(xs), list(ys))
    axes.set_xlabel("seconds since the operator started")
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    return _save(figure, scenario)


def spread(
    scenario: str, title: str, groups: Mapping[str, Mapping[str, Sequence[float]]], ylabel: str
) -> Path:
    """Every sample as a point, one column per group (e.g. a profile and a command length) and
    one colour per series in it (e.g. the az way, a fresh operator): a few runs per cell, so the
    points themselves say more than a box would."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    names = list(dict.fromkeys(name for series in groups.values() for name in series))
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        xs: list[float] = []
        ys: list[float] = []
        for column, series in enumerate(groups.values()):
            values = series.get(name, ())
            xs.extend(column - 0.4 + width * (index + 0.5) for _ in values)
            ys.extend(values)
        axes.scatter(xs, ys, label=name, s=18)
    axes.set_xticks(range(len(groups)), list(groups))
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3, axis="y")
    axes.legend(loc="upper left", fontsize=8)
    return _save(figure, scenario)


def _save(figure: Figure, scenario: str) -> Path:
    PLOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = PLOTS_DIR / f"{scenario}.png"
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    print(f"  plot: {path}")
    return path
