"""Leaderboard figures: a forest plot of every system's difference to the baseline with its
interval, one panel per metric (exported by `studies.exports.figures`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from metrics.registry import column_label
from metrics.significance import CORRECTION_LABELS
from model.notice import RESEARCH_NOTICE
from studies.leaderboard.build import Leaderboard


def plot_forest(board: Leaderboard, metrics: Sequence[str] | None = None) -> Any:
    """Differences to the baseline with their (unadjusted) intervals, one panel per metric;
    filled markers where the corrected p is below 0.05."""
    from matplotlib.figure import Figure

    shown = list(metrics or board.metrics)
    systems = [s for s in board.systems if s != board.baseline]
    columns = min(4, max(1, len(shown)))
    rows = math.ceil(len(shown) / columns) if shown else 1
    figure = Figure(
        figsize=(3.2 * columns, 0.45 * max(1, len(systems)) * rows + 1.2 * rows + 0.6),
        layout="constrained",
    )
    pct = int(round(board.settings.confidence * 100))
    y = np.arange(len(systems))[::-1]
    for k, metric in enumerate(shown):
        ax = figure.add_subplot(rows, columns, k + 1)
        for position, system in zip(y, systems, strict=True):
            row = board.row(metric, system)
            if row.diff is None:
                continue
            low, high = row.diff_low, row.diff_high
            ceiling = system in board.ceilings
            colour = "0.55" if ceiling else "tab:blue"
            if low == low and high == high:
                ax.hlines(position, low, high, color=colour, linewidth=2)
            else:  # NaN bounds: the table's footer says why
                ax.annotate(
                    "no CI",
                    (row.diff, position),
                    xytext=(0, 6),
                    textcoords="offset points",
                    ha="center",
                    fontsize=6,
                    color="0.3",
                )
            significant = bool(row.mark) and not ceiling
            ax.plot(
                row.diff,
                position,
                "o",
                color=colour,
                markerfacecolor=colour if significant else "white",
                markersize=6,
            )
        ax.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, systems if k % columns == 0 else [""] * len(systems), fontsize=8)
        ax.set_title(column_label(metric), fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    correction = board.settings.correction
    filled = (
        "filled: p < 0.05 (uncorrected)"
        if correction == "none"
        else f"filled: {CORRECTION_LABELS[correction]}-corrected p < 0.05"
    )
    figure.suptitle(
        f"Difference to {board.baseline} with {pct}% paired bootstrap CI (unadjusted); {filled}",
        fontsize=9,
    )
    label = "SYNTHETIC DATA · " if board.synthetic else ""
    figure.supxlabel(
        f"{board.benchmark} ({board.split}), n = {board.n_cases} cases · {label}{RESEARCH_NOTICE}",
        fontsize=7,
        color="0.4",
    )
    return figure


def leaderboard_figures(board: Leaderboard, metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """The leaderboard's figures by file name (no figure without a baseline comparison)."""
    if len(board.systems) < 2:
        return {}
    return {"forest_differences": plot_forest(board, metrics)}
