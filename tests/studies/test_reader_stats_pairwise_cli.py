"""`medvision stats pairwise` and the Bradley-Terry and pairwise tables on degenerate and
disconnected judgments: the JSON's warnings and components, the table footers' warnings and
small-sample note, and the defaults the CLI, the app and the settings share."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from studies.reader_stats import tables as reader_tables
from studies.reader_stats.analysis import AnalysisSettings, analyze_pairwise
from studies.reader_stats.bradley_terry import DEFAULT_CLUSTER, DEFAULT_INTERVAL
from studies.reader_stats.data import prepare_judgments
from studies.reader_stats.simulation import simulate_judgments


def _cli(args: list[str]):  # noqa: ANN202
    from workbench.cli import app

    return CliRunner().invoke(app, args)


def _write(rows: list[tuple[str, str, str, str, str]], path: Path) -> Path:
    pd.DataFrame(rows, columns=["rater", "case", "system_a", "system_b", "winner"]).to_csv(
        path, index=False
    )
    return path


def _disconnected_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    for i in range(20):
        rows.append((f"r{i % 4}", f"c{i}", "A", "B", "ab"[i % 3 == 0]))
        rows.append((f"r{i % 4}", f"c{i}", "C", "D", "b" if i % 4 else "a"))
    return rows


def test_json_of_a_disconnected_graph_has_warnings_and_components(tmp_path: Path) -> None:
    """Before (ebb17df): no warnings key, no component, D ranked above A from no data."""
    path = _write(_disconnected_rows(), tmp_path / "disconnected.csv")
    result = _cli(["stats", "pairwise", "--input", str(path)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert any("disconnected" in w for w in document["warnings"])
    component = {s["system"]: s["component"] for s in document["systems"]}
    assert component["A"] == component["B"] != component["C"] == component["D"]
    markdown = _cli(["stats", "pairwise", "--input", str(path), "--format", "markdown"])
    assert markdown.exit_code == 0
    bt_part = markdown.stdout.split("**Win, tie and loss")[0]
    assert "Warning: Bradley-Terry: the comparison graph is disconnected" in bt_part or (
        "Warning: the comparison graph is disconnected" in bt_part
    )


def test_json_of_one_judgment_and_of_no_resamples_has_null_intervals(tmp_path: Path) -> None:
    """Before (ebb17df): A 3.616 [3.616, 3.616] rank 1, B rank 2; --bootstrap 0 gave strict
    ranks 1-4 with zero-width intervals."""
    one = _write([("r1", "c1", "A", "B", "a")], tmp_path / "one.csv")
    document = json.loads(_cli(["stats", "pairwise", "--input", str(one)]).stdout)
    assert all(s["ci_low"] is None and s["rank"] is None for s in document["systems"])
    assert any("perfect separation" in w for w in document["warnings"])
    study = simulate_judgments({"a": 0.6, "b": 0.2, "c": -0.2, "d": -0.6}, n_cases=30, seed=2)
    path = tmp_path / "study.csv"
    study.to_csv(path, index=False)
    result = _cli(
        ["stats", "pairwise", "--input", str(path), "--interval", "bootstrap", "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert all(s["rank"] is None and s["ci_high"] is None for s in document["systems"])
    assert any("no bootstrap resamples" in w for w in document["warnings"])
    default = json.loads(_cli(["stats", "pairwise", "--input", str(path)]).stdout)
    assert default["warnings"] == []
    assert default["provenance"]["settings"]["cluster"] == "case+rater"
    assert default["provenance"]["settings"]["interval"] == "sandwich"
    assert all(s["ci_low"] < s["bt"] < s["ci_high"] for s in default["systems"])


def test_footers_carry_a_small_sample_note_below_the_stated_sizes() -> None:
    small = simulate_judgments({"a": 0.3, "b": 0.0}, n_cases=12, raters=3, seed=4)
    large = simulate_judgments(
        {"a": 0.3, "b": 0.0}, n_cases=reader_tables.SMALL_STUDY["cases"], raters=6, seed=4
    )
    for judgments, expected in ((small, True), (large, False)):
        analysis = analyze_pairwise(judgments, AnalysisSettings())
        footer = " ".join(reader_tables.footer_lines(analysis.provenance))
        assert ("Small study" in footer) is expected, footer
        assert "cluster-robust sandwich (clusters: case and rater" in footer
    note = reader_tables.small_study_note(12, 3)
    assert note is not None and "12 cases" in note and "3 raters" in note


def test_bt_table_footer_carries_the_warnings() -> None:
    frame = prepare_judgments(
        pd.DataFrame(
            _disconnected_rows(), columns=["rater", "case", "system_a", "system_b", "winner"]
        )
    )
    analysis = analyze_pairwise(frame, AnalysisSettings())
    table = reader_tables.bt_table(analysis)
    assert any(n.startswith("Warning: the comparison graph is disconnected") for n in table.notes)
    assert "Component" in table.display.columns
    rendered = reader_tables.render(table, analysis.provenance, "markdown")
    assert "disconnected" in rendered


def test_cli_app_and_settings_share_the_bradley_terry_defaults() -> None:
    from workbench.commands import stats

    settings = AnalysisSettings()
    assert (settings.cluster, settings.interval) == (DEFAULT_CLUSTER, DEFAULT_INTERVAL)
    options = inspect.signature(stats.pairwise_command).parameters
    assert options["cluster"].default.default == DEFAULT_CLUSTER
    assert options["interval"].default.default == DEFAULT_INTERVAL
    study = inspect.signature(stats.study_command).parameters
    assert study["cluster"].default.default == DEFAULT_CLUSTER
