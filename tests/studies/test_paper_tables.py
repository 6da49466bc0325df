"""Paper tables and figures (issue 17) and the leaderboard's statistics options (issue 11):
the wide booktabs table and the reader tables compiled by pdflatex, the correction family,
McNemar's test for yes/no clinical columns, copied-reference systems, no "-0.0000", figures
in PNG (300 dpi), SVG and PDF."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_leaderboard import _config, populate
from typer.testing import CliRunner

from metrics.significance import SignificanceSettings
from studies.exports.render import format_interval, format_number
from studies.leaderboard.build import (
    Leaderboard,
    LeaderboardError,
    LeaderboardRow,
    build_leaderboard,
)
from studies.leaderboard.tables import export_leaderboard, write_leaderboard_outputs
from studies.reader_stats import tables as reader_tables
from studies.reader_stats.analysis import AnalysisSettings, analyze_study
from studies.reader_stats.simulation import simulate_judgments
from studies.store.db import Store
from studies.store.schema import Benchmark, Case, Generation, System

METRICS = ["bleu", "rouge_l", "rouge", "clinical"]


def _add_reference_system(store: Store) -> None:
    """A system of the `reference` kind: each case's reference report, copied."""
    with store.session() as session:
        bench = session.query(Benchmark).filter_by(name="colon-lb").one()
        system = System(name="reference", kind="reference", fingerprint="fp-reference")
        session.add(system)
        for case in session.query(Case).filter_by(benchmark_id=bench.id, split="test"):
            session.add(
                Generation(
                    system_fingerprint="fp-reference",
                    case_id=case.id,
                    prompt_hash="r",
                    text=case.references[0],
                )
            )


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Leaderboard:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('paper') / 'lb.db'}")
    try:
        populate(store)
        _add_reference_system(store)
        return build_leaderboard(store, _config(metrics=METRICS, family="all"))
    finally:
        store.dispose()


def test_reference_systems_are_left_out_of_the_table_and_the_family(store: Store) -> None:
    """At ebb17df the copied `reference` system sat in the default table and in the Holm
    family."""
    populate(store)
    _add_reference_system(store)
    board = build_leaderboard(store, _config(metrics=["rouge"]))
    assert "reference" not in board.systems
    assert any("Left out: reference" in line for line in board.footer())
    shown = build_leaderboard(store, _config(metrics=["rouge"], include_reference=True))
    assert "reference" in shown.systems and shown.ceilings == ["reference"]
    comparison = shown.comparisons["rougeL"]
    # Outside the family: its p stays uncorrected, and the others' correction ignores it.
    assert comparison.p_corrected["reference"] == comparison.p_values["reference"]
    assert comparison.p_corrected["wrong"] == pytest.approx(
        board.comparisons["rougeL"].p_corrected["wrong"]
    )
    paper = export_leaderboard(shown, "markdown")
    assert "reference (reference, ceiling)" in paper
    assert all(r.mark == "" for r in shown.rows if r.system == "reference")


def test_family_option_and_footer(board: Leaderboard) -> None:
    """At ebb17df LeaderboardConfig had no family: the correction was per metric only."""
    assert board.settings.family == "all"
    footer = " ".join(board.footer())
    assert "Holm correction, family over all comparisons of the table" in footer
    assert "intervals are unadjusted" in footer
    from statsmodels.stats.multitest import multipletests

    keys = [(m, s) for m in board.comparisons for s in board.comparisons[m].p_values]
    want = multipletests([board.comparisons[m].p_values[s] for m, s in keys], method="holm")[1]
    got = [board.comparisons[m].p_corrected[s] for m, s in keys]
    assert got == pytest.approx(want)
    with pytest.raises(LeaderboardError, match="unknown correction family 'pairs'"):
        build_leaderboard(Store("sqlite://"), _config(family="pairs"))


def test_yes_no_clinical_columns_get_mcnemar(board: Leaderboard) -> None:
    """Surveillance agreement is 0/1 per decided case: McNemar's test, not randomization."""
    comparison = board.comparisons["surveillance-agreement"]
    assert comparison.test == "McNemar (exact)"
    assert board.comparisons["lesion-recall"].test.startswith("McNemar")
    assert board.comparisons["BLEU-4"].test == "approximate randomization"
    assert "McNemar's test (exact binomial below 25 discordant cases)" in " ".join(board.footer())


def test_no_negative_zero_anywhere() -> None:
    """At ebb17df a difference bound of -1e-9 printed as "-0.0000"."""
    assert format_number(-1e-9) == "0.0000" and format_number(-1e-9, signed=True) == "0.0000"
    assert format_interval(-0.0455, -1e-7, signed=True) == "[-0.0455, 0.0000]"
    rows = [
        LeaderboardRow("CIDEr", "retrieval", 0.0146, 0.0, 0.0455),
        LeaderboardRow("CIDEr", "lora", 0.1551, np.nan, np.nan, 0.1405, -0.0455, -1e-12, 0.5, 0.5),
        LeaderboardRow("BLEU-4", "retrieval", 0.1, -1e-9, 0.2),
        LeaderboardRow("BLEU-4", "lora", 0.0, -1e-9, 1e-9, -0.1, -0.2, -1e-12, 0.5, 0.5),
    ]
    board = Leaderboard(
        benchmark="b",
        split="test",
        synthetic=True,
        systems=["retrieval", "lora"],
        baseline="retrieval",
        metrics=["CIDEr", "BLEU-4"],
        rows=rows,
        comparisons={},
        signatures={"CIDEr": "CIDEr-D", "BLEU-4": "BLEU-4"},
        settings=SignificanceSettings(n_resamples=10),
        cases=[],
        per_case={},
    )
    data = json.loads(export_leaderboard(board, "json"))
    assert data["rows"][1]["low"] is None  # NaN bounds are null in JSON
    for table in ("paper", "long"):
        for fmt in ("latex", "markdown"):
            assert not re.search(r"-0\.0+\b", export_leaderboard(board, fmt, table))
    # The reader tables format through the same function ("-0.00" at ebb17df).
    assert reader_tables.fmt_ci(0.25, -0.001, 0.5) == "0.25 [0.00, 0.50]"
    assert reader_tables.fmt_number(float("nan")) == "–"


def test_paper_table_is_wide_captioned_and_the_same_in_csv_and_markdown(
    board: Leaderboard,
) -> None:
    latex = export_leaderboard(board, "latex", columns=["BLEU-4", "ROUGE-L (rouge-score)"])
    assert r"\caption{Report-generation metrics on colon-lb" in latex
    assert r"\label{tab:leaderboard-colon-lb-test}" in latex
    assert "Holm-corrected" in latex and "unadjusted" in latex
    header = next(line for line in latex.splitlines() if line.startswith("System &"))
    assert header == r"System & BLEU-4 & ROUGE-L (rouge-score) \\"
    copy = board.row("BLEU-4", "copy")
    cell = f"{copy.estimate:.3f} [{copy.low:.3f}, {copy.high:.3f}]{copy.mark}"
    assert f"copy & {cell} &" in latex
    # Both ROUGE-L variants say whose they are.
    full = export_leaderboard(board, "markdown")
    assert "ROUGE-L (pycocoevalcap)" in full and "ROUGE-L (rouge-score)" in full
    assert "| rougeL |" not in full
    assert f"| copy | {cell} |" in full
    rows = list(
        csv.DictReader(
            io.StringIO(
                "\n".join(
                    line
                    for line in export_leaderboard(board, "csv").splitlines()
                    if not line.startswith("#")
                )
            )
        )
    )
    assert [r["system"] for r in rows] == board.systems
    assert float(rows[1]["BLEU-4"]) == copy.estimate
    with pytest.raises(LeaderboardError, match="not in this leaderboard"):
        export_leaderboard(board, "latex", columns=["BLEURT"])


@pytest.fixture(scope="module")
def reader_analysis():  # noqa: ANN201
    study = simulate_judgments(
        {"lora_v2": 0.8, "base": 0.0, "template": -0.7},
        n_cases=8,
        raters=3,
        raters_per_item=2,
        tie_nu=0.4,
        seed=41,
    )
    metric = pd.DataFrame(
        [
            {"case": c, "system": s, "bleu_4": (i * 7 + j) % 10 / 10.0}
            for i, c in enumerate(study["case"].unique())
            for j, s in enumerate(("lora_v2", "base", "template"))
        ]
    )
    settings = AnalysisSettings(n_resamples=50, seed=7, comparator="base", margin=0.5)
    return analyze_study(study, settings, metric_table=metric)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex: run `make latex`")
def test_leaderboard_and_reader_tables_compile_with_pdflatex(
    board: Leaderboard,
    reader_analysis,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    """Issue 17's 'Done when': the tables as a manuscript takes them, through a real LaTeX
    engine (one pdflatex run)."""
    analysis = reader_analysis
    tables = reader_tables.study_tables(analysis)
    reader = reader_tables.render_many(tables, analysis.provenance, "latex")
    for table in tables:  # every reader table has its caption and label
        assert rf"\label{{tab:{table.name.replace('_', '-')}}}" in reader
    assert reader.count(r"\caption{") == len(tables)
    body = "\n".join(
        [
            export_leaderboard(board, "latex"),
            export_leaderboard(board, "latex", table="long"),
            reader,
            r"See Table~\ref{tab:leaderboard-colon-lb-test}.",
        ]
    )
    document = "\n".join(
        [
            r"\documentclass{article}",
            r"\usepackage[T1]{fontenc}",
            r"\usepackage[utf8]{inputenc}",
            r"\usepackage{booktabs}",
            r"\usepackage{graphicx}",
            r"\usepackage[margin=2cm]{geometry}",
            r"\begin{document}",
            body,
            r"\end{document}",
            "",
        ]
    )
    (tmp_path / "paper.tex").write_text(document, encoding="utf-8")
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "paper.pdf").read_bytes().startswith(b"%PDF")
    log = (tmp_path / "paper.log").read_text(encoding="latin-1")
    assert "Missing character" not in log


def test_leaderboard_out_writes_tables_and_print_quality_figures(
    board: Leaderboard, tmp_path: Path
) -> None:
    from PIL import Image

    written = write_leaderboard_outputs(board, tmp_path, ["BLEU-4", "clinical"])
    names = {p.name for p in written}
    for name in ("leaderboard_paper.tex", "leaderboard_long.csv", "leaderboard_board.json"):
        assert name in names
    for fmt in ("png", "svg", "pdf"):
        assert f"forest_differences.{fmt}" in names
    with Image.open(tmp_path / "forest_differences.png") as image:
        assert round(image.info["dpi"][0]) == 300
    assert (tmp_path / "forest_differences.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "forest_differences.pdf").read_bytes().startswith(b"%PDF")
    data = json.loads((tmp_path / "leaderboard_board.json").read_text())
    assert data["labels"]["rougeL"] == "ROUGE-L (rouge-score)"


def test_study_out_writes_every_figure_in_three_formats(
    reader_analysis,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    from PIL import Image

    analysis = reader_analysis
    written = reader_tables.write_study_outputs(analysis, tmp_path, formats=("csv",))
    names = {p.name for p in written}
    figures = ("bt_estimates", "win_matrix", "likert_distribution", "agreement", "metric_agreement")
    for figure in figures:
        for fmt in ("png", "svg", "pdf"):
            assert f"{figure}.{fmt}" in names, (figure, fmt)
    with Image.open(tmp_path / "bt_estimates.png") as image:
        assert round(image.info["dpi"][0]) == 300


def test_cli_family_and_out(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import app

    url = f"sqlite:///{tmp_home / 'lb.db'}"
    monkeypatch.setenv("MEDVISION_DATABASE_URL", url)
    store = Store(url)
    try:
        populate(store)
    finally:
        store.dispose()
    runner = CliRunner()
    out = tmp_home / "out"
    args = ["leaderboard", "--benchmark", "colon-lb", "--baseline", "baseline"]
    args += ["--metrics", "rouge", "--bootstrap", "50", "--permutations", "50"]
    result = runner.invoke(
        app, [*args, "--family", "all", "--format", "markdown", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "family over all comparisons" in result.stdout
    assert (out / "forest_differences.png").exists() and (out / "leaderboard_paper.tex").exists()
    result = runner.invoke(app, [*args, "--family", "pairs"])
    assert result.exit_code == 2 and "--family 'pairs'" in result.output
