"""The synthetic label travels: a study's own export, re-analysed, keeps its label and kind.

At ebb17df the raw export had no `synthetic` column, so `stats pairwise --input` on a
synthetic study's export lost the SYNTHETIC line, and a study of real raters on synthetic
cases was labelled "simulated judgments".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.rated_study import rated_study

from studies.exports.synthetic import BOTH, CASES, JUDGMENTS, UNSTATED, synthetic_line
from studies.reader_stats.analysis import AnalysisSettings, analyze_pairwise
from studies.reader_stats.data import (
    JudgmentsError,
    load_judgments_file,
    synthetic_kind_of,
)
from studies.reader_stats.simulation import simulate_judgments
from studies.reader_stats.tables import footer_lines
from studies.readers.judgments import study_judgments
from studies.readers.rating import export_judgments
from studies.store.db import Store

SETTINGS = AnalysisSettings(n_resamples=20)


def _footer(judgments) -> str:  # noqa: ANN001
    return "\n".join(footer_lines(analyze_pairwise(judgments, SETTINGS).provenance))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_synthetic_study_export_reanalysed_keeps_its_label(
    store: Store, tmp_path: Path, fmt: str
) -> None:
    name = rated_study(store, tmp_path / "bench", synthetic_cases=True)
    path = tmp_path / f"judgments.{fmt}"
    path.write_text(export_judgments(store, name, fmt), encoding="utf-8")

    from_file = load_judgments_file(path)
    from_store = study_judgments(store, name)
    assert synthetic_kind_of(from_file) == synthetic_kind_of(from_store) == CASES
    footer = _footer(from_file)
    # Real raters on synthetic cases: the cases are synthetic, the judgments are not.
    assert synthetic_line(CASES) in footer and "synthetic cases" in footer
    assert "simulated" not in footer
    assert _footer(from_store).splitlines()[0] == footer.splitlines()[0]


def test_a_real_benchmark_study_export_is_not_labelled(store: Store, tmp_path: Path) -> None:
    name = rated_study(store, tmp_path / "bench", synthetic_cases=False)
    path = tmp_path / "judgments.csv"
    path.write_text(export_judgments(store, name, "csv"), encoding="utf-8")
    loaded = load_judgments_file(path)
    assert synthetic_kind_of(loaded) == "" and "SYNTHETIC" not in _footer(loaded)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_simulated_judgments_keep_their_kind_through_a_file(tmp_path: Path, suffix: str) -> None:
    simulated = simulate_judgments({"a": 0.0, "b": 0.5}, n_cases=6, raters=2, seed=2)
    assert synthetic_kind_of(simulated) == JUDGMENTS
    assert synthetic_line(JUDGMENTS) in _footer(simulated)
    path = tmp_path / f"simulated{suffix}"
    # Half the rows on synthetic cases too: the file as a whole is both.
    labels = [JUDGMENTS if i % 2 else BOTH for i in range(len(simulated))]
    frame = simulated.assign(synthetic=labels)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, date_format="iso")
    loaded = load_judgments_file(path)
    assert synthetic_kind_of(loaded) == BOTH
    assert "synthetic cases (not patients) and simulated judgments" in _footer(loaded)


def test_a_bare_true_is_synthetic_of_unstated_kind(tmp_path: Path) -> None:
    simulated = simulate_judgments({"a": 0.0, "b": 0.5}, n_cases=4, raters=2, seed=1)
    path = tmp_path / "old.csv"
    simulated.assign(synthetic="true").to_csv(path, index=False)
    loaded = load_judgments_file(path)
    assert synthetic_kind_of(loaded) == UNSTATED
    assert "does not say which" in _footer(loaded)


def test_an_unknown_synthetic_label_is_refused_with_its_rows(tmp_path: Path) -> None:
    simulated = simulate_judgments({"a": 0.0, "b": 0.5}, n_cases=4, raters=2, seed=1)
    labels = ["cases"] * len(simulated)
    labels[2] = "maybe"
    path = tmp_path / "bad.csv"
    simulated.assign(synthetic=labels).to_csv(path, index=False)
    with pytest.raises(JudgmentsError, match=r"column 'synthetic' in row 3: expected one of"):
        load_judgments_file(path)
