"""The one table renderer: a table (headers, rows, title, footer) as CSV, LaTeX booktabs, Markdown
or JSON, with one escaper per format.

The leaderboard and the reader-study significance tables both render through `render`. They
differ only in layout (declared once each as a `Layout`: where the caption sits, how the
footer is set); every piece of text goes through the same `latex_escape` or
`markdown_escape`. The footer says how the numbers were made (cases, seeds, resamples,
metric signatures, the research-use notice), and every format carries it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

FORMATS: tuple[str, ...] = ("csv", "latex", "markdown", "json")
EXTENSIONS: dict[str, str] = {"csv": "csv", "latex": "tex", "markdown": "md", "json": "json"}


class FormatError(ValueError):
    """A table format that does not exist; the message lists the formats that do."""


def check_format(fmt: str) -> str:
    """`fmt` when it is one of FORMATS, else a FormatError naming them."""
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


# --- numbers ----------------------------------------------------------------------------

MISSING = "–"  # a cell with no value (en dash)


def format_number(
    value: Any, digits: int = 4, *, signed: bool = False, missing: str = MISSING
) -> str:
    """A number as every table prints it: `digits` decimals, no negative zero ("-0.0000"
    is "0.0000": a value that rounds to zero has no sign), `missing` for None and NaN."""
    if value is None:
        return missing
    number = float(value)
    if math.isnan(number):
        return missing
    text = f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"
    if float(text) == 0.0:  # "-0.0000" and "+0.0000": zero has no sign
        text = f"{0.0:.{digits}f}"
    return text


def format_interval(low: Any, high: Any, digits: int = 4, *, signed: bool = False) -> str:
    """ "[low, high]" with `format_number`; "no CI" when a bound is missing."""
    if low is None or high is None or math.isnan(float(low)) or math.isnan(float(high)):
        return "no CI"
    bounds = (format_number(v, digits, signed=signed) for v in (low, high))
    return "[{}, {}]".format(*bounds)


def format_estimate(value: Any, low: Any, high: Any, digits: int = 3, mark: str = "") -> str:
    """A paper-table cell: "0.612 [0.580, 0.640]" and the significance mark."""
    return f"{format_number(value, digits)} {format_interval(low, high, digits)}{mark}"


# --- escaping ---------------------------------------------------------------------------

# Characters LaTeX treats specially in text, and the characters our tables print that
# pdflatex's default (OT1) fonts get wrong: '<', '>' and '|' come out as '¡', '¿' and '—'.
# '<' and '>' stay in text mode, like the other symbols.
LATEX_SPECIAL: dict[str, str] = {
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
    "–": "--",  # en dash: the tables' "no value" cell
    "—": "---",
    "−": "{$-$}",  # U+2212 (OT1 has no \textminus: it prints '=')
    "\u00a0": "~",
}
# A hyphen that starts a number is a minus sign ("-0.12", "[-0.30, 0.10]"), not a hyphen;
# hyphens inside words and dates ("BLEU-4", "2026-01-02", "meteor-1.5") stay.
_MINUS = re.compile(r"(?<![\w.])-(?=\d)")


def latex_escape(text: Any) -> str:
    """Text for a LaTeX document: special characters escaped, leading minus signs set as minus."""
    escaped = "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return _MINUS.sub("$-$", escaped)


def _breakable(text: str) -> str:
    # Footer lines hold long signatures ("BLEU-4|pycocoevalcap:1.2|tok:..."): a line may break
    # after each '|' instead of running past the page.
    return text.replace(r"\textbar{}", r"\textbar{}\allowbreak{}")


def _latex_line_start(text: str) -> str:
    # After '\\' or a booktabs rule, LaTeX reads a leading '[' as an optional argument.
    return "{[}" + text[1:] if text.startswith("[") else text


def markdown_escape(text: Any) -> str:
    """Text for a Markdown table or note: '|' escaped (it splits cells), newlines as spaces."""
    return str(text).replace("|", r"\|").replace("\r\n", " ").replace("\n", " ")


# --- the table model --------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How a kind of table sits in a document (the text itself is escaped the same way in all).

    heading: the title is a heading above the table (Markdown bold line, CSV comment line,
    LaTeX caption and label above the tabular); otherwise it is only a LaTeX caption below.
    small: LaTeX table body in \\small. quote_footer: the footer is one line each (LaTeX
    lines, a Markdown quote); otherwise one LaTeX paragraph and italic Markdown lines.
    aligned_rule: the Markdown delimiter row shows each column's alignment.
    fit_width: the LaTeX tabular is scaled to the text width when wider (graphicx's
    \resizebox), for wide tables with one column per metric.
    """

    heading: bool = True
    small: bool = False
    quote_footer: bool = False
    aligned_rule: bool = True
    fit_width: bool = False


# Reader-study tables: titled, captioned above, notes as one paragraph.
PAPER = Layout()
# The leaderboard: a compact table with its caption below and one footer line per statement.
LEADERBOARD = Layout(heading=False, small=True, quote_footer=True, aligned_rule=False)
# The leaderboard's paper table: captioned and labelled above, one column per metric, scaled
# to the text width.
PAPER_WIDE = Layout(small=True, fit_width=True)


@dataclass(frozen=True)
class Table:
    """One table as every format sees it.

    headers/rows: the formatted cells (LaTeX, Markdown). data: the raw numbers for CSV and
    JSON, either a pandas DataFrame or (columns, rows); None means the formatted cells.
    footer: what the numbers mean and how they were made, one statement each.
    name: the LaTeX label (tab:<name>) and JSON name. align: one 'l'/'r' per column
    (default: two left, the rest right). block_column: a change of value in this column
    starts a new block of rows (LaTeX \\addlinespace).
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str = ""
    footer: Sequence[str] = ()
    name: str = ""
    data: Any = None
    align: str = ""
    block_column: int | None = None
    layout: Layout = PAPER

    @property
    def alignment(self) -> str:
        n = len(self.headers)
        return self.align or "l" * min(2, n) + "r" * max(0, n - 2)

    def raw(self) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows of the raw numbers."""
        if self.data is None:
            return list(self.headers), [list(row) for row in self.rows]
        if hasattr(self.data, "to_dict"):
            return [str(c) for c in self.data.columns], self.data.values.tolist()
        columns, rows = self.data
        return list(columns), [list(row) for row in rows]


# A spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell that starts with one of these
# as a formula: a rater comment `=HYPERLINK("https://...?"&C2)` would leak the row it sits in.
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
# A plain number ("-0.5", "+3", "-1e-3") opens as a number, not a formula: it stays as it is.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet opens as text, never as a formula: text starting with one of
    FORMULA_STARTS gets a leading apostrophe (OWASP's advice); numbers, and text that is a
    plain number, are left alone. Every CSV the workbench writes passes its cells here."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_rows(rows: Any) -> list[list[Any]]:
    """Rows (lists of cells) with every cell through `csv_cell`."""
    return [[csv_cell(cell) for cell in row] for row in rows]


# --- the formats ------------------------------------------------------------------------


def to_csv(table: Table) -> str:
    """The raw numbers, then the title (when a heading) and footer as '#' comment lines.

    `pandas.read_csv(path, comment="#")` reads the numbers back.
    """
    if hasattr(table.data, "to_csv"):
        frame = table.data.rename(columns=csv_cell)
        text = frame.select_dtypes(include=["object", "string"]).columns
        frame[text] = frame[text].map(csv_cell)
        body = frame.to_csv(index=False, lineterminator="\n")
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns, rows = table.raw()
        writer.writerow([csv_cell(column) for column in columns])
        writer.writerows(csv_rows(rows))
        body = buffer.getvalue()
    comments = [table.title] if table.layout.heading and table.title else []
    comments += list(table.footer)
    return body + "".join(f"# {line}\n" for line in comments)


def to_latex(table: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs}) with the footer under it."""
    layout = table.layout
    needs = (
        r"\usepackage{booktabs} and \usepackage{graphicx}"
        if layout.fit_width
        else (r"\usepackage{booktabs}")
    )
    lines = [f"% Requires {needs}.", r"\begin{table}[ht]", r"\centering"]
    if layout.small:
        lines.append(r"\small")
    if layout.heading and table.title:
        lines.append(rf"\caption{{{latex_escape(table.title)}}}")
        if table.name:
            lines.append(rf"\label{{tab:{table.name.replace('_', '-')}}}")
    if layout.fit_width:
        # Scaled down only when wider than the text (graphicx's \resizebox with a \width test).
        lines.append(r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%")
    lines += [rf"\begin{{tabular}}{{{table.alignment}}}", r"\toprule", _latex_row(table.headers)]
    lines.append(r"\midrule")
    previous = None
    for row in table.rows:
        if table.block_column is not None:
            key = row[table.block_column]
            if previous is not None and key != previous:
                lines.append(r"\addlinespace")
            previous = key
        lines.append(_latex_row(row))
    lines += [r"\bottomrule", r"\end{tabular}"]
    if layout.fit_width:
        lines.append("}")
    if not layout.heading and table.title:
        lines.append(rf"\caption{{{latex_escape(table.title)}}}")
    if layout.quote_footer:
        lines.append(r"\par\smallskip\footnotesize")
        lines += [
            _latex_line_start(_breakable(latex_escape(line))) + r"\\" for line in table.footer
        ]
    elif table.footer:
        lines.append(r"\par\smallskip")
        paragraph = " ".join(_breakable(latex_escape(line)) for line in table.footer)
        lines.append(rf"\parbox{{\linewidth}}{{\footnotesize {paragraph}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _latex_row(cells: Sequence[Any]) -> str:
    return _latex_line_start(" & ".join(latex_escape(c) for c in cells)) + r" \\"


def _markdown_row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(markdown_escape(c) for c in cells) + " |"


def to_markdown(table: Table) -> str:
    """A pipe table with the title above it (when a heading) and the footer below."""
    layout = table.layout
    lines = [f"**{markdown_escape(table.title)}**", ""] if layout.heading and table.title else []
    lines.append(_markdown_row(table.headers))
    if layout.aligned_rule:
        marks = ["--:" if a == "r" else "---" for a in table.alignment]
        lines.append("| " + " | ".join(marks) + " |")
    else:
        lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines += [_markdown_row(row) for row in table.rows]
    lines.append("")
    pattern = "> {}  " if layout.quote_footer else "_{}_  "
    lines += [pattern.format(markdown_escape(line)) for line in table.footer]
    return "\n".join(lines) + "\n"


def json_text(document: Any) -> str:
    """A JSON document as the exports write it: indented, numpy numbers as plain numbers."""
    return json.dumps(document, indent=2, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def table_document(table: Table) -> dict[str, Any]:
    """The JSON form of a table: name, title, columns, raw rows as records and the footer."""
    if hasattr(table.data, "to_json"):
        records = json.loads(table.data.to_json(orient="records"))
    else:
        columns, rows = table.raw()
        records = [dict(zip(columns, row, strict=True)) for row in rows]
    return {
        "name": table.name,
        "title": table.title,
        "columns": table.raw()[0],
        "rows": records,
        "footer": list(table.footer),
    }


def to_json(table: Table) -> str:
    return json_text(table_document(table))


RENDERERS: dict[str, Callable[[Table], str]] = {
    "csv": to_csv,
    "latex": to_latex,
    "markdown": to_markdown,
    "json": to_json,
}


def render(table: Table, fmt: str) -> str:
    """The table in one of FORMATS."""
    return RENDERERS[check_format(fmt)](table)
