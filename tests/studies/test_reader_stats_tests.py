"""Win/tie/loss, Wilson intervals, sign tests, corrections and the Likert analyses,
checked against scipy and statsmodels on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from studies.reader_stats import likert
from studies.reader_stats.data import prepare_judgments
from studies.reader_stats.pairwise import (
    adjust_pvalues,
    sign_test,
    wilson_interval,
    win_rate_matrix,
    win_tie_loss,
)
from studies.reader_stats.simulation import simulate_judgments


def _frame(rows: list[tuple[str, str, str, str, str]], **extra: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["rater", "case", "system_a", "system_b", "winner"])
    for key, values in extra.items():
        frame[key] = values
    return prepare_judgments(frame)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (47, 120), (1, 1)])
def test_wilson_interval_equals_statsmodels(k: int, n: int) -> None:
    low, high = wilson_interval(k, n)
    expected = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert float(low) == pytest.approx(expected[0], abs=1e-12)
    assert float(high) == pytest.approx(expected[1], abs=1e-12)
    low90, high90 = wilson_interval(k, n, level=0.9)
    expected90 = proportion_confint(k, n, alpha=0.1, method="wilson")
    assert (float(low90), float(high90)) == pytest.approx(expected90, abs=1e-12)


def test_win_tie_loss_counts_orientation_and_tests() -> None:
    rows = []
    # x beats y 9 times (written both ways round), y beats x 3 times, 4 ties, 1 both bad.
    for i in range(5):
        rows.append(("r1", f"c{i}", "x", "y", "a"))
    for i in range(5, 9):
        rows.append(("r1", f"c{i}", "y", "x", "b"))  # y vs x, x won
    for i in range(9, 12):
        rows.append(("r2", f"c{i}", "x", "y", "b"))
    for i in range(12, 16):
        rows.append(("r2", f"c{i}", "y", "x", "tie"))
    rows.append(("r2", "c16", "x", "y", "both_bad"))
    rows.append(("r1", "c0", "x", "z", "a"))
    table = win_tie_loss(_frame(rows)).set_index(["system_a", "system_b"])
    row = table.loc[("x", "y")]
    assert (row["n"], row["wins_a"], row["wins_b"], row["ties"], row["both_bad"]) == (
        17,
        9,
        3,
        4,
        1,
    )
    assert row["p_sign"] == pytest.approx(stats.binomtest(9, 12, 0.5).pvalue)
    # Ties split: 5 ties and both-unacceptable -> 2 each side, the odd one dropped.
    assert row["p_ties_split"] == pytest.approx(stats.binomtest(11, 16, 0.5).pvalue)
    low, high = proportion_confint(9, 17, method="wilson")
    assert (row["share_a_low"], row["share_a_high"]) == pytest.approx((low, high))
    assert row["share_a"] == pytest.approx(9 / 17)
    holm = multipletests(table["p_sign"].to_numpy(), method="holm")[1]
    assert np.allclose(table["p_sign_adj"], holm)


def test_sign_test_equals_scipy_binomtest() -> None:
    for wins_a, wins_b in [(0, 0), (5, 5), (12, 3), (0, 7), (40, 61)]:
        expected = stats.binomtest(wins_a, wins_a + wins_b).pvalue if wins_a + wins_b else np.nan
        assert sign_test(wins_a, wins_b) == pytest.approx(expected, nan_ok=True)


def test_adjust_pvalues_holm_and_bh_skip_missing() -> None:
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5])
    finite = p[~np.isnan(p)]
    holm = adjust_pvalues(p, "holm")
    bh = adjust_pvalues(p, "bh")
    assert np.isnan(holm[2]) and np.isnan(bh[2])
    assert np.allclose(holm[~np.isnan(p)], multipletests(finite, method="holm")[1])
    assert np.allclose(bh[~np.isnan(p)], multipletests(finite, method="fdr_bh")[1])
    assert np.allclose(adjust_pvalues(p, "none")[~np.isnan(p)], finite)
    with pytest.raises(ValueError, match="correction"):
        adjust_pvalues(p, "bonferonni")


def test_win_rate_matrix_by_hand() -> None:
    rows = [
        ("r", "c1", "x", "y", "a"),
        ("r", "c2", "x", "y", "tie"),
        ("r", "c3", "y", "x", "a"),
        ("r", "c4", "x", "y", "a"),
        ("r", "c1", "y", "z", "b"),
    ]
    rates, counts = win_rate_matrix(_frame(rows))
    assert rates.loc["x", "y"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert rates.loc["y", "x"] == pytest.approx(1 - rates.loc["x", "y"])
    assert rates.loc["z", "y"] == 1.0 and np.isnan(rates.loc["x", "z"])
    assert counts.loc["x", "y"] == 4 and counts.loc["x", "z"] == 0


def test_gold_items_and_repeats_are_left_out_of_comparisons() -> None:
    rows = [("r", "c1", "x", "y", "a"), ("r", "c1", "x", "y", "b"), ("r", "g", "x", "y", "b")]
    frame = _frame(rows, is_duplicate=[False, True, False], is_gold=[False, False, True])
    table = win_tie_loss(frame)
    assert table["n"].tolist() == [1] and table["wins_a"].tolist() == [1]


# --- Likert -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rated() -> pd.DataFrame:
    return simulate_judgments(
        {"good": 1.0, "fair": 0.0, "poor": -1.0},
        n_cases=30,
        raters=4,
        raters_per_item=2,
        tie_nu=0.3,
        rater_noise=0.4,
        seed=21,
    )


def test_likert_means_use_case_level_t_intervals(rated: pd.DataFrame) -> None:
    table = likert.likert_means(rated).set_index(["criterion", "system"])
    long = likert.likert_long(rated)
    part = long[(long["criterion"] == "accuracy") & (long["system"] == "good")]
    per_case = part.groupby("case")["score"].mean()
    interval = stats.t.interval(0.95, len(per_case) - 1, per_case.mean(), stats.sem(per_case))
    row = table.loc[("accuracy", "good")]
    assert row["mean"] == pytest.approx(part["score"].mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(interval)
    assert row["n_ratings"] == len(part) and row["n_cases"] == 30
    means = table.xs("safety", level="criterion")["mean"]
    assert means["good"] > means["fair"] > means["poor"]


def test_paired_wilcoxon_equals_scipy(rated: pd.DataFrame) -> None:
    table = likert.paired_differences(rated)
    regular = rated[~rated["is_gold"] & ~rated["is_duplicate"]]
    for row in table.itertuples():
        part = regular[
            (regular["system_a"] == row.system_a) & (regular["system_b"] == row.system_b)
        ]
        diff = part[f"likert_a_{row.criterion}"] - part[f"likert_b_{row.criterion}"]
        assert row.n == len(diff)
        assert row.p_wilcoxon == pytest.approx(stats.wilcoxon(diff).pvalue)
        assert row.mean_diff == pytest.approx(diff.mean())
    assert np.allclose(table["p_adj"], multipletests(table["p_wilcoxon"], method="holm")[1])


def test_mixed_model_has_rater_and_case_components(rated: pd.DataFrame) -> None:
    fit = likert.mixed_model(rated, "accuracy", reference="fair")
    effects = fit.effects.set_index("term")
    assert set(effects.index) == {"good - fair", "poor - fair"}
    assert effects.loc["good - fair", "ci_low"] > 0
    assert effects.loc["poor - fair", "ci_high"] < 0
    assert set(fit.variance) == {"rater", "case", "residual"}
    assert fit.variance["case"] > 0.05  # the simulation gives cases a shared difficulty
    ordinal = likert.ordinal_model(rated, "accuracy", reference="fair").effects.set_index("term")
    assert ordinal.loc["good - fair", "estimate"] > 0 > ordinal.loc["poor - fair", "estimate"]
    assert (ordinal["p"] < 0.01).all()
    with pytest.raises(ValueError, match="reference system"):
        likert.mixed_model(rated, "accuracy", reference="missing")


def _safety_frame(differences: list[float]) -> pd.DataFrame:
    rows = []
    for i, diff in enumerate(differences):
        rows.append(
            {
                "rater": "r",
                "case": f"c{i}",
                "system_a": "new",
                "system_b": "old",
                "winner": "tie",
                "likert_a_safety": 4 + diff,
                "likert_b_safety": 4,
            }
        )
    return prepare_judgments(pd.DataFrame(rows))


def test_harm_non_inferiority_at_a_margin() -> None:
    frame = _safety_frame([0, 0, -1, 0, 0, 1, 0, -1, 0, 0, 0, 0])
    strict = likert.harm_noninferiority(frame, comparator="old", margin=0.1)
    loose = likert.harm_noninferiority(frame, comparator="old", margin=1.0)
    assert strict["system"].tolist() == ["new"] and strict["comparator"].tolist() == ["old"]
    diffs = np.array([0, 0, -1, 0, 0, 1, 0, -1, 0, 0, 0, 0], dtype=float)
    # One-sided t test of H0: mean <= -margin.
    expected = stats.ttest_1samp(diffs + 1.0, 0.0, alternative="greater").pvalue
    assert loose["p_noninferiority"].iloc[0] == pytest.approx(expected)
    assert bool(loose["non_inferior"].iloc[0]) and not bool(strict["non_inferior"].iloc[0])
    both_ways = likert.harm_noninferiority(frame, margin=1.0)
    assert set(zip(both_ways["system"], both_ways["comparator"], strict=True)) == {
        ("new", "old"),
        ("old", "new"),
    }
    with pytest.raises(ValueError, match="margin"):
        likert.harm_noninferiority(frame, margin=0)


def test_crossed_reml_equals_statsmodels_mixedlm(rated: pd.DataFrame) -> None:
    fast = likert.mixed_model(rated, "completeness", reference="poor")
    slow = likert.mixed_model(rated, "completeness", reference="poor", engine="statsmodels")
    assert fast.effects["term"].tolist() == slow.effects["term"].tolist()
    assert np.allclose(fast.effects["estimate"], slow.effects["estimate"], atol=1e-4)
    assert np.allclose(fast.effects["ci_low"], slow.effects["ci_low"], atol=5e-3)
    for name in ("rater", "case", "residual"):
        assert fast.variance[name] == pytest.approx(slow.variance[name], rel=1e-2, abs=1e-4)
    with pytest.raises(ValueError, match="engine"):
        likert.mixed_model(rated, "completeness", engine="lme4")
