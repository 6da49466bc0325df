"""Significance tables (CSV, LaTeX, Markdown) with provenance footers, plots, and the
`medvision stats pairwise` command on a judgments file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from studies.reader_stats import tables as reader_tables
from studies.reader_stats.analysis import AnalysisSettings, analyze_pairwise, analyze_study
from studies.reader_stats.simulation import simulate_judgments


@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    return simulate_judgments(
        {"lora_v2": 0.8, "base": 0.0, "template": -0.7},
        n_cases=15,
        raters=3,
        raters_per_item=2,
        tie_nu=0.4,
        gold_per_rater=2,
        duplicates_per_rater=2,
        seed=41,
    )


@pytest.fixture(scope="module")
def analysis(study: pd.DataFrame):  # noqa: ANN201
    metric = pd.DataFrame(
        [
            {"case": c, "system": s, "bleu_4": hash((c, s)) % 100 / 100.0}
            for c in study["case"].unique()
            for s in ("lora_v2", "base", "template")
        ]
    )
    settings = AnalysisSettings(n_resamples=200, seed=7, comparator="base", margin=0.5)
    return analyze_study(study, settings, metric_table=metric)


def test_every_table_renders_in_every_format_with_its_footer(analysis) -> None:  # noqa: ANN001
    tables = reader_tables.study_tables(analysis)
    names = [t.name for t in tables]
    assert names[0] == "paper"
    assert {
        "bradley_terry",
        "pairwise",
        "win_matrix",
        "likert_means",
        "likert_paired",
        "likert_models",
        "harm",
        "agreement",
        "kappa_pairs",
        "rater_quality",
        "metric_agreement",
    } <= set(names)
    provenance = analysis.provenance
    for table in tables:
        for fmt in reader_tables.FORMATS:
            text = reader_tables.render(table, provenance, fmt)
            assert "SYNTHETIC DATA" in text
            assert "n cases = 15, n raters = 3" in text
            assert "bootstrap resamples = 200" in text and "seed = 7" in text
            assert "multiple comparisons: Holm" in text
            assert "not a medical device" in text
    paper = tables[0]
    latex = reader_tables.render(paper, provenance, "latex")
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex
    assert r"lora\_v2" in latex and "lora_v2" not in latex.replace(r"lora\_v2", "")
    assert latex.count(r" \\") == 1 + len(paper.display)
    markdown = reader_tables.render(paper, provenance, "markdown")
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(paper.display)
    assert "Safety NI vs base" in markdown


def test_csv_holds_the_raw_numbers_and_reads_back(analysis, tmp_path: Path) -> None:  # noqa: ANN001
    table = reader_tables.bt_table(analysis)
    path = tmp_path / "bt.csv"
    path.write_text(reader_tables.render(table, analysis.provenance, "csv"))
    back = pd.read_csv(path, comment="#")
    pd.testing.assert_frame_equal(back, table.data, check_dtype=False)
    assert path.read_text().splitlines()[-1].startswith("# Research software")


def test_paper_table_agrees_with_the_analyses(analysis) -> None:  # noqa: ANN001
    paper = reader_tables.paper_table(analysis).data.set_index("system")
    bt = analysis.bt.table().set_index("system")
    assert paper["bt"].to_dict() == pytest.approx(bt["bt"].to_dict())
    means = analysis.likert_means.set_index(["criterion", "system"])["mean"]
    assert paper.loc["lora_v2", "safety_mean"] == pytest.approx(means[("safety", "lora_v2")])
    assert paper.index[0] == "lora_v2"


def test_real_data_is_not_labelled_synthetic(study: pd.DataFrame) -> None:
    real = study.copy()
    real.attrs["synthetic"] = False
    result = analyze_pairwise(real, AnalysisSettings(n_resamples=20))
    text = reader_tables.render_many(
        reader_tables.pairwise_tables(result), result.provenance, "markdown"
    )
    assert "SYNTHETIC" not in text and "not a medical device" in text


def test_outputs_folder_has_tables_plots_and_manifest(analysis, tmp_path: Path) -> None:  # noqa: ANN001
    written = reader_tables.write_study_outputs(analysis, tmp_path)
    names = {p.name for p in written}
    for stem in ("paper", "pairwise", "agreement"):
        assert {f"{stem}.csv", f"{stem}.tex", f"{stem}.md"} <= names
    for plot in ("bt_estimates", "win_matrix", "likert_distribution", "agreement"):
        assert (tmp_path / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{plot}.pdf").read_bytes()[:4] == b"%PDF"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["provenance"]["settings"]["seed"] == 7
    assert manifest["provenance"]["synthetic"] is True
    # The json format is the whole analysis in one file, as `stats study --format json` writes.
    document = json.loads((tmp_path / "analysis.json").read_text())
    assert document == json.loads(json.dumps(reader_tables.study_json(analysis), default=str))
    assert "analysis.json" in manifest["files"]


def test_json_renders_one_table_and_many_as_one_document(analysis) -> None:  # noqa: ANN001
    tables = reader_tables.study_tables(analysis)
    one = json.loads(reader_tables.render(tables[0], analysis.provenance, "json"))
    assert one["name"] == "paper" and one["columns"] == list(tables[0].data.columns)
    assert len(one["rows"]) == len(tables[0].data)
    assert any("not a medical device" in line for line in one["footer"])
    many = json.loads(reader_tables.render_many(tables, analysis.provenance, "json"))
    assert [t["name"] for t in many] == [t.name for t in tables]
    with pytest.raises(ValueError, match="unknown format 'docx'"):
        reader_tables.render(tables[0], analysis.provenance, "docx")


def _cli(args: list[str]):  # noqa: ANN202
    from workbench.cli import app

    return CliRunner().invoke(app, args)


def test_cli_pairwise_on_a_file(study: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "judgments.csv"
    study.to_csv(path, index=False)
    result = _cli(["stats", "pairwise", "--input", str(path), "--bootstrap", "100", "--seed", "3"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    systems = document["systems"]
    assert [s["system"] for s in systems][0] == "lora_v2"
    assert set(systems[0]) == {"system", "bt", "ci_low", "ci_high", "rank", "component"}
    assert all(s["ci_low"] <= s["bt"] <= s["ci_high"] for s in systems)
    assert document["provenance"]["settings"]["n_resamples"] == 100
    again = json.loads(
        _cli(
            ["stats", "pairwise", "--input", str(path), "--bootstrap", "100", "--seed", "3"]
        ).stdout
    )
    assert again["systems"] == systems
    latex = _cli(
        [
            "stats",
            "pairwise",
            "-i",
            str(path),
            "-b",
            "50",
            "--format",
            "latex",
            "--ties",
            "davidson",
        ]
    )
    assert latex.exit_code == 0 and r"\toprule" in latex.stdout and "Davidson" in latex.stdout
    out = tmp_path / "tables.md"
    markdown = _cli(
        ["stats", "pairwise", "-i", str(path), "-b", "50", "-f", "markdown", "--out", str(out)]
    )
    assert markdown.exit_code == 0 and out.read_text().startswith("**Bradley-Terry")
    csv = _cli(["stats", "pairwise", "-i", str(path), "-b", "0", "-f", "csv"])
    assert csv.exit_code == 0 and csv.stdout.startswith("system,bt,ci_low,ci_high,rank")


def test_cli_pairwise_reports_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"rater": "r", "case": "c", "system_a": "x", "system_b": "y", "winner": "?"}\n'
    )
    result = _cli(["stats", "pairwise", "--input", str(path)])
    assert result.exit_code == 2
    assert "column 'winner' in row 1" in result.output
    result = _cli(["stats", "pairwise", "--input", str(path), "--format", "docx"])
    assert result.exit_code == 2 and "--format" in result.output
    result = _cli(["stats", "pairwise", "--input", str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "no such file" in result.output
