"""A leaderboard as a table: its cells, raw numbers and footer, rendered to CSV, LaTeX (booktabs),
Markdown or JSON by `studies.exports.render`."""

from __future__ import annotations

import numpy as np

from studies.exports.render import (
    LEADERBOARD,
    FormatError,
    Table,
    check_format,
    json_text,
    render,
)
from studies.leaderboard.build import Leaderboard, LeaderboardError

CSV_COLUMNS = (
    "metric",
    "system",
    "is_baseline",
    "estimate",
    "ci_low",
    "ci_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "p_corrected",
    "significance",
)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _fmt_p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _raw(value: float | None) -> str:
    # repr keeps every digit, so the CSV reads back to the same floats.
    return "" if value is None else repr(value)


def _display_rows(board: Leaderboard) -> list[list[str]]:
    out = []
    for r in board.rows:
        out.append(
            [
                r.metric,
                r.system + (" (baseline)" if r.system == board.baseline else ""),
                _fmt(r.estimate),
                f"[{_fmt(r.low)}, {_fmt(r.high)}]",
                "" if r.diff is None else f"{r.diff:+.4f}",
                "" if r.diff is None else f"[{r.diff_low:+.4f}, {r.diff_high:+.4f}]",
                _fmt_p(r.p_corrected),
                r.mark,
            ]
        )
    return out


def _headers(board: Leaderboard) -> list[str]:
    pct = int(board.settings.confidence * 100)
    return [
        "Metric",
        "System",
        "Score",
        f"{pct}% CI",
        "Diff. vs baseline",
        f"Diff. {pct}% CI",
        f"p ({board.settings.correction})",
        "Sig.",
    ]


def _raw_rows(board: Leaderboard) -> list[list[object]]:
    return [
        [
            r.metric,
            r.system,
            r.system == board.baseline,
            repr(r.estimate),
            repr(r.low),
            repr(r.high),
            _raw(r.diff),
            _raw(r.diff_low),
            _raw(r.diff_high),
            _raw(r.p_value),
            _raw(r.p_corrected),
            r.mark,
        ]
        for r in board.rows
    ]


def leaderboard_table(board: Leaderboard) -> Table:
    """The leaderboard as the renderer's table: one block of rows per metric."""
    caption = f"Leaderboard on {board.benchmark} ({board.split})" + (
        " -- synthetic data" if board.synthetic else ""
    )
    return Table(
        headers=_headers(board),
        rows=_display_rows(board),
        title=caption,
        footer=board.footer(),
        name="leaderboard",
        data=(CSV_COLUMNS, _raw_rows(board)),
        align="llrrrrrl",
        block_column=0,
        layout=LEADERBOARD,
    )


def to_csv(board: Leaderboard) -> str:
    return render(leaderboard_table(board), "csv")


def to_latex(board: Leaderboard) -> str:
    return render(leaderboard_table(board), "latex")


def to_markdown(board: Leaderboard) -> str:
    return render(leaderboard_table(board), "markdown")


def to_json(board: Leaderboard) -> str:
    # The whole board (rows, settings, signatures, footer), not only the table's cells.
    return json_text(board.as_dict())


EXPORTERS = {"csv": to_csv, "latex": to_latex, "markdown": to_markdown, "json": to_json}


def export_leaderboard(board: Leaderboard, fmt: str) -> str:
    """The leaderboard in one of the renderer's FORMATS."""
    try:
        check_format(fmt)
    except FormatError as exc:
        raise LeaderboardError(str(exc)) from None
    return EXPORTERS[fmt](board)
