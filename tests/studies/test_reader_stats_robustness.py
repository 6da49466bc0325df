"""The robustness line: the fewest readings whose removal flips the BT top rank or the top
comparison's significance, first-order influence checked against brute-force refits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from studies.reader_stats.bradley_terry import build_rows
from studies.reader_stats.robustness import Z_CRITICAL, _fit, _strengths, _z, robustness
from studies.reader_stats.simulation import simulate_judgments


def _small(seed: int):
    return simulate_judgments(
        {"A": 0.5, "B": 0.3, "C": -0.5},
        n_cases=6,
        raters=2,
        raters_per_item=1,
        likert=False,
        seed=seed,
    )


def _brute_force_fewest(judgments, top: str, second: str, most: int) -> int | None:
    """Every subset of up to `most` readings, refitted: the smallest that flips the top."""
    rows = build_rows(judgments)
    n = len(rows.index_a)
    i, j = rows.systems.index(top), rows.systems.index(second)
    for k in range(1, most + 1):
        for combo in itertools.combinations(range(n), k):
            keep = np.ones(n, dtype=bool)
            keep[list(combo)] = False
            theta = _strengths(rows, _fit(rows, keep, "half"))
            if theta[i] - theta[j] <= 0:
                return k
    return None


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_fewest_removals_flipping_the_top_rank_match_brute_force(seed: int) -> None:
    judgments = _small(seed)
    found = robustness(judgments)
    fewest = found.top_rank.verified
    assert fewest is not None
    # no smaller set of readings flips it (every subset refitted), and these do (below)
    assert _brute_force_fewest(judgments, found.top, found.runner_up, most=fewest - 1) is None
    # the removed readings really flip it when refitted
    rows = build_rows(judgments)
    keep = np.ones(len(rows.index_a), dtype=bool)
    keep[list(found.top_rank.removed)] = False
    theta = _strengths(rows, _fit(rows, keep, "half"))
    top, second = rows.systems.index(found.top), rows.systems.index(found.runner_up)
    assert theta[top] <= theta[second]


def test_significance_flip_is_confirmed_by_a_refit() -> None:
    judgments = simulate_judgments(
        {"A": 1.0, "B": 0.0, "C": -0.5}, n_cases=30, raters=3, likert=False, seed=4
    )
    found = robustness(judgments)
    assert abs(found.z) >= Z_CRITICAL  # a clear winner: significant before
    flip = found.significance
    assert flip.verified is not None and flip.approximate is not None
    rows = build_rows(judgments)
    keep = np.ones(len(rows.index_a), dtype=bool)
    keep[list(flip.removed)] = False
    top, second = rows.systems.index(found.top), rows.systems.index(found.runner_up)
    beta = _fit(rows, keep, "half")
    assert abs(_z(rows, beta, keep, "half", top, second)) < Z_CRITICAL
    # one reading fewer does not (the count is the fewest along the influence order)
    keep[list(flip.removed[-1:])] = True
    beta = _fit(rows, keep, "half")
    assert abs(_z(rows, beta, keep, "half", top, second)) >= Z_CRITICAL
    line = found.line()
    assert line.startswith("Robustness: removing ") and "makes it non-significant" in line
    assert f"of {found.n_readings} readings" in line


def test_the_bt_table_carries_the_robustness_line() -> None:
    from studies.reader_stats import tables
    from studies.reader_stats.analysis import AnalysisSettings, analyze_study

    judgments = simulate_judgments(
        {"A": 1.0, "B": 0.0, "C": -0.5}, n_cases=30, raters=3, likert=False, seed=4
    )
    analysis = analyze_study(judgments, AnalysisSettings(n_resamples=50))
    table = next(t for t in tables.study_tables(analysis) if t.name == "bradley_terry")
    expected = robustness(judgments).line()
    assert expected in table.notes
    assert expected in tables.render_many([table], analysis.provenance, "markdown")
