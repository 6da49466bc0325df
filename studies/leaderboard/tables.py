"""A leaderboard as CSV, LaTeX (booktabs), Markdown or JSON."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from studies.leaderboard.build import FORMATS, Leaderboard, LeaderboardError


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _fmt_p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


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


def to_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
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
        ]
    )
    for r in board.rows:
        writer.writerow(
            [
                r.metric,
                r.system,
                r.system == board.baseline,
                repr(r.estimate),
                repr(r.low),
                repr(r.high),
                "" if r.diff is None else repr(r.diff),
                "" if r.diff_low is None else repr(r.diff_low),
                "" if r.diff_high is None else repr(r.diff_high),
                "" if r.p_value is None else repr(r.p_value),
                "" if r.p_corrected is None else repr(r.p_corrected),
                r.mark,
            ]
        )
    for line in board.footer():
        buffer.write(f"# {line}\n")
    return buffer.getvalue()


def to_markdown(board: Leaderboard) -> str:
    headers = _headers(board)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in _display_rows(board):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines.append("")
    lines.extend(f"> {line}  " for line in board.footer())
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(board: Leaderboard) -> str:
    headers = [latex_escape(h) for h in _headers(board)]
    lines = [
        "% Requires \\usepackage{booktabs}.",
        "\\begin{table}[ht]",
        "\\centering",
        "\\small",
        "\\begin{tabular}{llrrrrrl}",
        "\\toprule",
        " & ".join(headers) + " \\\\",
        "\\midrule",
    ]
    previous = None
    for row in _display_rows(board):
        if previous is not None and row[0] != previous:
            lines.append("\\addlinespace")
        previous = row[0]
        lines.append(" & ".join(latex_escape(cell) for cell in row) + " \\\\")
    lines.append("\\bottomrule")
    lines.append("\\end{tabular}")
    caption = f"Leaderboard on {board.benchmark} ({board.split})" + (
        " -- synthetic data" if board.synthetic else ""
    )
    lines.append(f"\\caption{{{latex_escape(caption)}}}")
    lines.append("\\par\\smallskip\\footnotesize")
    lines.extend(latex_escape(line) + "\\\\" for line in board.footer())
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def to_json(board: Leaderboard) -> str:
    return json.dumps(board.as_dict(), indent=2, sort_keys=False, default=float) + "\n"


def export_leaderboard(board: Leaderboard, fmt: str) -> str:
    exporters = {"csv": to_csv, "latex": to_latex, "markdown": to_markdown, "json": to_json}
    if fmt not in exporters:
        raise LeaderboardError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return exporters[fmt](board)
