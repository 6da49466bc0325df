"""The one table renderer: its escapers character by character, real pdflatex on a booktabs
table holding every special character, and the leaderboard and reader tables escaping the
same text the same way."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from metrics.significance import SignificanceSettings
from studies.exports import render
from studies.exports.render import (
    FORMATS,
    LEADERBOARD,
    PAPER,
    Table,
    latex_escape,
    markdown_escape,
)
from studies.leaderboard.build import Leaderboard, LeaderboardError, LeaderboardRow
from studies.leaderboard.tables import export_leaderboard
from studies.reader_stats import tables as reader_tables
from studies.reader_stats.analysis import Provenance

# Every character either old escaper handled, the Unicode dashes, and text around them.
SPECIALS = "\\ & % $ # _ { } ~ ^ < > | – — − \u00a0"
TRICKY = [
    "lora_v2 & base",
    "100% of $5 #1",
    r"C:\data\{set}",
    "x~y^2",
    "p <0.001, a|b, c>d",
    "<-1 and >-0.5",
    "−0.25 and – and —",
    "[0.10, 0.20]",  # a leading '[' after '\\' is an optional argument
    "BLEU-4 on 2026-01-02, meteor-1.5, -0.30 [-0.40, -0.20]",
]


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("$", r"\$"),
        ("#", r"\#"),
        ("_", r"\_"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}"),
        ("<", r"\textless{}"),
        (">", r"\textgreater{}"),
        ("|", r"\textbar{}"),
        ("–", "--"),
        ("—", "---"),
        ("−", "{$-$}"),
        ("\u00a0", "~"),
        ("a", "a"),
    ],
)
def test_latex_escape_each_special_character(char: str, escaped: str) -> None:
    assert latex_escape(char) == escaped
    assert latex_escape(f"x{char}y") == f"x{escaped}y"


def test_latex_minus_sign_before_numbers_only() -> None:
    assert latex_escape("-0.12") == "$-$0.12"
    assert latex_escape("[-0.30, -0.10]") == "[$-$0.30, $-$0.10]"
    assert latex_escape("BLEU-4") == "BLEU-4"
    assert latex_escape("2026-01-02") == "2026-01-02"
    assert latex_escape("meteor-1.5") == "meteor-1.5"
    assert latex_escape("-x") == "-x"
    assert latex_escape("<-1") == r"\textless{}$-$1"
    assert latex_escape(3) == "3"


def test_markdown_escape() -> None:
    assert markdown_escape("a|b") == r"a\|b"
    assert markdown_escape("two\nlines\r\nhere") == "two lines here"
    assert markdown_escape("<_*>") == "<_*>"


def _table(layout=PAPER) -> Table:  # noqa: ANN001
    return Table(
        headers=["System", "Text", "Score"],
        rows=[["a", text, f"{k / 10:.2f}"] for k, text in enumerate(TRICKY)]
        + [[text, "b", "-0.5"] for text in TRICKY],
        title="All specials: " + SPECIALS,
        footer=["Footer " + SPECIALS, *TRICKY],
        name="specials_table",
        block_column=0,
        layout=layout,
    )


def test_every_format_renders_and_check_format_names_them() -> None:
    assert set(render.RENDERERS) == set(FORMATS) == set(render.EXTENSIONS)
    for fmt in FORMATS:
        assert "Footer" in render.render(_table(), fmt)
    with pytest.raises(render.FormatError, match="unknown format 'docx'; use one of csv"):
        render.render(_table(), "docx")


def test_csv_and_json_hold_the_raw_cells_and_the_footer() -> None:
    table = _table()
    text = render.render(table, "csv")
    back = pd.read_csv(io.StringIO(text), comment="#", keep_default_na=False, dtype=str)
    # A cell with '#' is cut there by comment="#" (unquoted, as before); the others read back.
    rows = [list(r) for r in table.rows]
    kept = [i for i, row in enumerate(rows) if not any("#" in cell for cell in row)]
    assert [back.values.tolist()[i] for i in kept] == [rows[i] for i in kept]
    assert text.splitlines()[-1] == "# " + TRICKY[-1]
    document = json.loads(render.render(table, "json"))
    assert document["columns"] == ["System", "Text", "Score"]
    assert document["rows"][1] == {"System": "a", "Text": TRICKY[1], "Score": "0.10"}
    assert document["footer"][0].startswith("Footer")


def test_markdown_table_keeps_its_columns() -> None:
    text = render.render(_table(), "markdown")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(_table().rows)
    for line in rows:
        assert line.replace(r"\|", "").count("|") == 4


def _pdflatex(body: str, folder: Path) -> str:
    document = "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage{booktabs}",
            r"\begin{document}",
            body,
            r"\end{document}",
            "",
        ]
    )
    (folder / "t.tex").write_text(document, encoding="utf-8")
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (folder / "t.pdf").stat().st_size > 0
    log = (folder / "t.log").read_text(encoding="latin-1")
    assert "Missing character" not in log
    if shutil.which("pdftotext") is None:
        return ""
    return subprocess.run(
        ["pdftotext", "-layout", "t.pdf", "-"], cwd=folder, capture_output=True, text=True
    ).stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("layout", [PAPER, LEADERBOARD], ids=["paper", "leaderboard"])
def test_booktabs_table_with_every_special_character_compiles(layout, tmp_path: Path) -> None:  # noqa: ANN001
    text = _pdflatex(render.render(_table(layout), "latex"), tmp_path)
    if text:  # the characters come out as written, not as OT1's '¡', '¿', '—'
        flat = " ".join(text.split()).replace("˜", "~").replace("ˆ", "^")
        for needle in (
            "a|b",
            "c>d",
            "<0.001",
            "C:\\data\\{set}",
            "x~y^2",
            "100% of $5 #1",
            "<−1 and >−0.5",
            "−0.25 and – and —",
            "[0.10, 0.20]",
            "−0.30 [−0.40, −0.20]",
            "BLEU-4 on 2026-01-02, meteor-1.5",
        ):
            assert needle in flat, needle


# --- the leaderboard and the reader tables share the escaper ------------------------------

NAME = "lora|v2<b>"


def _board() -> Leaderboard:
    rows = [
        LeaderboardRow("BLEU-4", "template", 0.1, 0.05, 0.15),
        LeaderboardRow("BLEU-4", NAME, 0.2, 0.1, 0.3, -0.1, -0.2, -0.05, 0.0004, 0.0008, "***"),
    ]
    return Leaderboard(
        benchmark="synthetic-colon",
        split="test",
        synthetic=True,
        systems=["template", NAME],
        baseline="template",
        metrics=["BLEU-4"],
        rows=rows,
        comparisons={},
        signatures={"BLEU-4": "BLEU-4|pycocoevalcap"},
        settings=SignificanceSettings(n_resamples=10),
        cases=[],
        per_case={},
    )


def _provenance() -> Provenance:
    settings = {
        "level": 0.95,
        "n_resamples": 10,
        "cluster": "case",
        "seed": 0,
        "correction": "bh",
        "tie_model": "half",
        "style": False,
    }
    return Provenance(
        source="test",
        n_cases=1,
        n_raters=1,
        n_judgments=1,
        n_systems=2,
        synthetic=False,
        generated_at="2026-01-02 03:04 UTC",
        version="0",
        settings=settings,
    )


def test_leaderboard_and_reader_tables_escape_a_system_name_the_same_way() -> None:
    """Before: the leaderboard wrote 'lora\\textbar{}v2\\textless{}b\\textgreater{}', the reader
    tables 'lora|v2$<$b$>$' (a '|' that OT1 prints as an em dash)."""
    board_latex = export_leaderboard(_board(), "latex", table="long")
    significance = reader_tables.SignificanceTable(
        "bradley_terry",
        "Bradley-Terry strengths",
        pd.DataFrame({"system": [NAME], "bt": [0.2]}),
        pd.DataFrame({"System": [NAME], "BT": ["0.20 [-0.10, 0.30]"]}),
    )
    reader_latex = reader_tables.render(significance, _provenance(), "latex")
    escaped = r"lora\textbar{}v2\textless{}b\textgreater{}"
    assert escaped == latex_escape(NAME)
    assert f"& {escaped} (baseline)" not in board_latex
    assert f"& {escaped} & 0.2000" in board_latex
    assert f"{escaped} & 0.20 [$-$0.10, 0.30]" in reader_latex
    # The leaderboard's differences are minus signs too (it printed hyphens).
    assert "& $-$0.1000 & [$-$0.2000, $-$0.0500]" in board_latex
    assert "Benjamini-Hochberg" in reader_latex


def test_both_tables_carry_the_one_research_notice() -> None:
    from model.notice import RESEARCH_NOTICE

    board = _board()
    for fmt in FORMATS:
        assert RESEARCH_NOTICE in export_leaderboard(board, fmt)
    significance = reader_tables.SignificanceTable(
        "t", "T", pd.DataFrame({"x": [1]}), pd.DataFrame({"X": ["1"]})
    )
    for fmt in FORMATS:
        assert RESEARCH_NOTICE in reader_tables.render(significance, _provenance(), fmt)


def test_leaderboard_rejects_an_unknown_format() -> None:
    with pytest.raises(LeaderboardError, match="unknown format 'xlsx'"):
        export_leaderboard(_board(), "xlsx")
