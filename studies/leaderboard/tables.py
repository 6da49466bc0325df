"""A leaderboard as tables, rendered to CSV, LaTeX (booktabs), Markdown or JSON by
`studies.exports.render`.

Two tables: the paper table (default), one row per system and one column per chosen metric,
each cell "estimate [CI]" with the significance mark against the baseline, captioned and
labelled for a manuscript; and the long table, one row per metric and system with the
difference to the baseline, its interval and the corrected p-value. Metric names are the
registry's labels (`metrics.registry.column_label`); numbers go through the renderer's
`format_number`, so no table prints "-0.0000".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from metrics.registry import column_label
from metrics.significance import CORRECTION_LABELS, FAMILIES
from studies.exports.render import (
    EXTENSIONS,
    FORMATS,
    LEADERBOARD,
    PAPER_WIDE,
    FormatError,
    Table,
    check_format,
    format_estimate,
    format_interval,
    format_number,
    json_text,
    render,
)
from studies.leaderboard.build import Leaderboard, LeaderboardError

# The leaderboard's tables: "paper" (systems x metrics) and "long" (metric x system rows).
TABLES: tuple[str, ...] = ("paper", "long")

CSV_COLUMNS = (
    "metric",
    "label",
    "system",
    "is_baseline",
    "is_ceiling",
    "estimate",
    "ci_low",
    "ci_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "p_corrected",
    "test",
    "significance",
)


def _fmt_p(value: float | None) -> str:
    if value is None or value != value:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _raw(value: float | None) -> str:
    # repr keeps every digit, so the CSV reads back to the same floats; NaN stays empty.
    return "" if value is None or value != value else repr(float(value))


def _system_name(board: Leaderboard, system: str) -> str:
    if system == board.baseline:
        return f"{system} (baseline)"
    if system in board.ceilings:
        return f"{system} (reference, ceiling)"
    return system


def _display_rows(board: Leaderboard) -> list[list[str]]:
    out = []
    for r in board.rows:
        out.append(
            [
                column_label(r.metric),
                _system_name(board, r.system),
                format_number(r.estimate, 4),
                format_interval(r.low, r.high, 4),
                "" if r.diff is None else format_number(r.diff, 4, signed=True),
                "" if r.diff is None else format_interval(r.diff_low, r.diff_high, 4, signed=True),
                _fmt_p(r.p_corrected),
                r.mark,
            ]
        )
    return out


def _correction(board: Leaderboard) -> str:
    return CORRECTION_LABELS[board.settings.correction]


def _headers(board: Leaderboard) -> list[str]:
    pct = int(round(board.settings.confidence * 100))
    return [
        "Metric",
        "System",
        "Score",
        f"{pct}% CI",
        "Diff. vs baseline",
        f"Diff. {pct}% CI",
        f"p ({_correction(board)})",
        "Sig.",
    ]


def _raw_rows(board: Leaderboard) -> list[list[object]]:
    return [
        [
            r.metric,
            column_label(r.metric),
            r.system,
            r.system == board.baseline,
            r.system in board.ceilings,
            _raw(r.estimate),
            _raw(r.low),
            _raw(r.high),
            _raw(r.diff),
            _raw(r.diff_low),
            _raw(r.diff_high),
            _raw(r.p_value),
            _raw(r.p_corrected),
            board.comparisons[r.metric].test
            if r.diff is not None and r.metric in board.comparisons
            else "",
            r.mark,
        ]
        for r in board.rows
    ]


def _name(board: Leaderboard) -> str:
    # A LaTeX label is letters, digits and hyphens here: safe in \label and \ref.
    return "leaderboard-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{board.benchmark}-{board.split}").strip(
        "-"
    )


def long_table(board: Leaderboard) -> Table:
    """The long table: one block of rows per metric."""
    caption = f"Leaderboard on {board.benchmark} ({board.split})" + (
        " -- synthetic data" if board.synthetic else ""
    )
    return Table(
        headers=_headers(board),
        rows=_display_rows(board),
        title=caption,
        footer=board.footer(),
        name=_name(board) + "-long",
        data=(CSV_COLUMNS, _raw_rows(board)),
        align="llrrrrrl",
        block_column=0,
        layout=LEADERBOARD,
    )


def paper_columns(board: Leaderboard, columns: Sequence[str] | None = None) -> list[str]:
    """The metric columns of the paper table: `columns` (ids or printed names) or all."""
    if not columns:
        return list(board.metrics)
    by_label = {column_label(m): m for m in board.metrics}
    chosen, unknown = [], []
    for name in columns:
        found = name if name in board.metrics else by_label.get(name)
        if found is None:
            unknown.append(name)
        else:
            chosen.append(found)
    if unknown:
        raise LeaderboardError(
            f"column(s) {unknown} are not in this leaderboard; choose from "
            f"{', '.join(board.metrics)}"
        )
    return list(dict.fromkeys(chosen))


def paper_caption(board: Leaderboard) -> str:
    """What the paper table shows, its tests and correction, in one caption."""
    s = board.settings
    pct = int(round(s.confidence * 100))
    tests = sorted({c.test.split(" (")[0] for c in board.comparisons.values() if c.differences})
    correction = _correction(board)
    corrected = (
        "uncorrected"
        if s.correction == "none"
        else f"{correction}-corrected; family: {FAMILIES[s.family]}"
    )
    return (
        f"Report-generation metrics on {board.benchmark} ({board.split}, n = {board.n_cases} cases"
        + (", synthetic data" if board.synthetic else "")
        + f"): score [{pct}% paired bootstrap CI, unadjusted]. "
        + (
            f"Marks: paired {' and '.join(tests)} tests against {board.baseline}, "
            f"{corrected}: * p < 0.05, ** p < 0.01, *** p < 0.001."
            if tests
            else "No system is compared with a baseline."
        )
    )


def paper_table(board: Leaderboard, columns: Sequence[str] | None = None) -> Table:
    """Systems as rows, chosen metrics as columns, "0.612 [0.580, 0.640]*" cells."""
    metrics = paper_columns(board, columns)
    rows, raw = [], []
    for system in board.systems:
        cells = [_system_name(board, system)]
        numbers: list[object] = [system, system == board.baseline, system in board.ceilings]
        for metric in metrics:
            r = board.row(metric, system)
            mark = "" if system in board.ceilings else r.mark
            cells.append(format_estimate(r.estimate, r.low, r.high, 3, mark))
            numbers += [_raw(r.estimate), _raw(r.low), _raw(r.high), _raw(r.p_corrected), mark]
        rows.append(cells)
        raw.append(numbers)
    columns_raw = ["system", "is_baseline", "is_ceiling"]
    for metric in metrics:
        columns_raw += [metric, f"{metric} ci_low", f"{metric} ci_high", f"{metric} p_corrected"]
        columns_raw.append(f"{metric} significance")
    return Table(
        headers=["System", *(column_label(m) for m in metrics)],
        rows=rows,
        title=paper_caption(board),
        footer=board.footer(metrics),
        name=_name(board),
        data=(columns_raw, raw),
        align="l" + "r" * len(metrics),
        layout=PAPER_WIDE,
    )


def leaderboard_table(
    board: Leaderboard, table: str = "paper", columns: Sequence[str] | None = None
) -> Table:
    """One of the leaderboard's TABLES as the renderer's table."""
    if table not in TABLES:
        raise LeaderboardError(f"unknown table {table!r}; use one of {', '.join(TABLES)}")
    return paper_table(board, columns) if table == "paper" else long_table(board)


def to_json(board: Leaderboard) -> str:
    # The whole board (rows, settings, signatures, footer), not only the table's cells.
    return json_text(board.as_dict())


def export_leaderboard(
    board: Leaderboard, fmt: str, table: str = "paper", columns: Sequence[str] | None = None
) -> str:
    """The leaderboard in one of the renderer's FORMATS (JSON: the whole board)."""
    try:
        check_format(fmt)
    except FormatError as exc:
        raise LeaderboardError(str(exc)) from None
    if fmt == "json":
        return to_json(board)
    return render(leaderboard_table(board, table, columns), fmt)


def write_leaderboard_outputs(
    board: Leaderboard, out_dir: str | Path, columns: Sequence[str] | None = None
) -> list[Path]:
    """Both TABLES in CSV, LaTeX and Markdown, the board as JSON, and the figures as PNG
    (300 dpi), SVG and PDF, into `out_dir`."""
    from studies.exports.figures import write_figures
    from studies.leaderboard.figures import leaderboard_figures

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        for table in TABLES if fmt != "json" else ("board",):
            path = out / f"leaderboard_{table}.{EXTENSIONS[fmt]}"
            text = export_leaderboard(board, fmt, table if fmt != "json" else "paper", columns)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    written += write_figures(leaderboard_figures(board, paper_columns(board, columns)), out)
    return written
