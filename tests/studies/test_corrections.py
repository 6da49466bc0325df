"""One multiple-comparison vocabulary: the names and their functions live in
metrics.significance; the reader statistics and their settings read them from there."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from metrics import significance
from studies.reader_stats import analysis, pairwise, tables

P_VALUES = [0.001, 0.04, float("nan"), 0.03, 0.2, 0.011]


def test_reader_statistics_read_the_one_vocabulary() -> None:
    # Before: reader_stats.pairwise declared its own tuple next to metrics' dict.
    assert pairwise.CORRECTIONS is significance.CORRECTIONS
    assert analysis.CORRECTIONS is significance.CORRECTIONS
    assert set(significance.CORRECTION_LABELS) == set(significance.CORRECTIONS)


@pytest.mark.parametrize("method", list(significance.CORRECTIONS))
def test_adjusted_p_values_are_the_vocabulary_functions(method: str) -> None:
    adjusted = pairwise.adjust_pvalues(P_VALUES, method)
    assert math.isnan(adjusted[2])
    finite = [p for p in P_VALUES if not math.isnan(p)]
    expected = significance.correct_p_values(finite, method)
    assert np.delete(adjusted, 2).tolist() == pytest.approx(expected)
    statsmodels_name = significance.CORRECTIONS[method]
    if statsmodels_name is not None:  # the reference library itself
        reference = multipletests(finite, method=statsmodels_name)[1]
        assert np.delete(adjusted, 2).tolist() == pytest.approx(reference.tolist())
    else:
        assert np.delete(adjusted, 2).tolist() == pytest.approx(finite)


def test_an_unknown_correction_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="holm, bh, none"):
        pairwise.adjust_pvalues(P_VALUES, "bonferroni")
    with pytest.raises(ValueError, match="correction must be one of holm, bh, none"):
        analysis.AnalysisSettings(correction="bonferroni").check()


def test_tables_print_the_vocabulary_labels() -> None:
    judgments = pd.DataFrame(
        {"rater": ["r"], "case": ["c"], "system_a": ["x"], "system_b": ["y"], "winner": ["a"]}
    )
    for name, label in significance.CORRECTION_LABELS.items():
        settings = analysis.AnalysisSettings(correction=name)
        provenance = analysis.Provenance.of(judgments, settings, synthetic=False)
        assert f"multiple comparisons: {label};" in " ".join(tables.footer_lines(provenance))
