"""Agreement and rater-quality statistics, checked against sklearn, statsmodels and the
krippendorff package on the same data; metric-vs-clinician agreement against scipy."""

from __future__ import annotations

from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss
from support.agreement_tables import likert_judgments

from studies.reader_stats import agreement
from studies.reader_stats.data import prepare_judgments
from studies.reader_stats.metric_agreement import metric_agreement
from studies.reader_stats.simulation import simulate_judgments

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def judged() -> pd.DataFrame:
    return simulate_judgments(
        {"a": 0.9, "b": 0.2, "c": -0.6},
        n_cases=25,
        raters=4,
        raters_per_item=3,
        tie_nu=0.5,
        both_bad_rate=0.3,
        rater_noise=0.3,
        gold_per_rater=4,
        duplicates_per_rater=6,
        seed=31,
    )


@pytest.mark.parametrize("weights", ["linear", "quadratic", None])
@pytest.mark.parametrize("ratings", ["preference", "safety"])
def test_weighted_kappa_equals_sklearn(
    judged: pd.DataFrame, weights: str | None, ratings: str
) -> None:
    table, _ = agreement.ratings_matrix(judged, ratings)
    pairs = agreement.cohen_kappa_pairs(
        judged, ratings=ratings, weights=weights, n_resamples=200, seed=1
    )
    assert len(pairs) == 6  # every pair of the four raters shares items
    for row in pairs.itertuples():
        both = table.loc[[row.rater_1, row.rater_2]].dropna(axis=1)
        expected = cohen_kappa_score(both.iloc[0], both.iloc[1], weights=weights)
        assert row.kappa == pytest.approx(expected, abs=1e-12)
        assert row.n_units == both.shape[1]
        assert row.ci_low <= row.kappa <= row.ci_high


def test_fleiss_kappa_equals_statsmodels(judged: pd.DataFrame) -> None:
    counts = agreement.fleiss_counts(judged)
    assert counts.shape[1] == 3 and (counts.sum(axis=1) == 3).all()
    result = agreement.fleiss_kappa(judged)
    assert result["kappa"] == pytest.approx(statsmodels_fleiss(counts), abs=1e-12)
    assert result["ci_low"] <= result["kappa"] <= result["ci_high"]
    likert_counts = agreement.fleiss_counts(judged, "accuracy")
    likert_result = agreement.fleiss_kappa(judged, ratings="accuracy")
    assert likert_result["kappa"] == pytest.approx(statsmodels_fleiss(likert_counts), abs=1e-12)


def test_fleiss_kappa_and_ac1_match_irrcac_with_unequal_raters_per_unit() -> None:
    # irrCAC (Gwet), README: cac.raw4raters (inst/extdata/cac.raw4raters.csv), 12 units
    # rated by 1 to 4 of 4 raters. fleiss.kappa.raw: 0.76117, se 0.15302, CI (0.424, 1);
    # gwet.ac1.raw: 0.77544, se 0.14295, CI (0.461, 1); krippen.alpha.raw: 0.74342.
    # Defect (ebb17df): Fleiss' kappa kept only the units with the most common number of
    # raters (here 4 of the 12) and said nothing.
    raw = pd.read_csv(DATA / "irrcac_cac_raw4raters.csv").set_index("Units")
    judgments = likert_judgments(raw)
    # irrCAC's variance treats the raters as fixed: variance="units" (the default adds the
    # raters' sampling, tests/studies/test_reader_stats_agreement_variance.py).
    kappa = agreement.fleiss_kappa(judgments, ratings="accuracy", variance="units")
    assert kappa["n_units"] == 12
    assert (kappa["min_raters"], kappa["max_raters"]) == (1.0, 4.0)
    assert kappa["kappa"] == pytest.approx(0.76117, abs=1e-5)
    assert kappa["se"] == pytest.approx(0.15302, abs=1e-5)
    assert (round(kappa["ci_low"], 3), kappa["ci_high"]) == (0.424, 1.0)
    ac1 = agreement.gwet_ac(judgments, ratings="accuracy", variance="units")
    assert ac1["ac"] == pytest.approx(0.77544, abs=1e-5)
    assert ac1["se"] == pytest.approx(0.14295, abs=1e-5)
    assert (round(ac1["ci_low"], 3), ac1["ci_high"]) == (0.461, 1.0)
    alpha = agreement.krippendorff_alpha(judgments, ratings="accuracy", level="nominal")
    assert alpha["alpha"] == pytest.approx(0.74342, abs=1e-5)


def test_fleiss_kappa_keeps_a_unit_that_lost_one_rating() -> None:
    # Fleiss (1971) / Wikipedia: 10 subjects x 14 raters x 5 categories, kappa 0.210; one
    # rating removed: ebb17df dropped that subject (kappa 0.116, 9 units).
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    table = pd.DataFrame(
        [
            [float(v) for v, k in zip(range(1, 6), row, strict=True) for _ in range(k)]
            for row in counts
        ]
    )
    full = agreement.fleiss_kappa(likert_judgments(table), ratings="accuracy")
    assert full["kappa"] == pytest.approx(0.20993, abs=1e-5)
    table.iloc[0, 13] = np.nan
    fewer = agreement.fleiss_kappa(likert_judgments(table), ratings="accuracy")
    assert fewer["n_units"] == 10 and fewer["min_raters"] == 13.0
    assert fewer["kappa"] == pytest.approx(full["kappa"], abs=0.02)


def test_ac2_is_ac1_with_identity_weights_and_rises_with_near_misses(judged: pd.DataFrame) -> None:
    ac1 = agreement.gwet_ac(judged, ratings="accuracy")
    identity = agreement.gwet_ac(judged, ratings="accuracy", weights="identity")
    assert ac1["ac"] == identity["ac"]
    ac2 = agreement.gwet_ac(judged, ratings="accuracy", weights="quadratic")
    # Quadratic weights give partial credit to ratings one point apart.
    assert ac2["ac"] > ac1["ac"]
    assert ac2["ci_low"] <= ac2["ac"] <= ac2["ci_high"] <= 1.0
    with pytest.raises(ValueError, match="weights"):
        agreement.gwet_ac(judged, weights="circular")


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("ratings", ["preference", "completeness"])
def test_krippendorff_alpha_equals_the_package(
    judged: pd.DataFrame, level: str, ratings: str
) -> None:
    table, domain = agreement.ratings_matrix(judged, ratings)
    assert table.isna().any().any()  # the overlap design leaves ratings missing
    expected = krippendorff.alpha(
        reliability_data=table.to_numpy(dtype=float),
        level_of_measurement=level,
        value_domain=domain,
    )
    result = agreement.krippendorff_alpha(
        judged, ratings=ratings, level=level, n_resamples=300, seed=3
    )
    assert result["alpha"] == pytest.approx(expected, abs=1e-10)
    assert result["ci_low"] <= result["alpha"] <= result["ci_high"]


def test_icc_equals_one_way_anova() -> None:
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(4)
    rows = []
    # Balanced: 20 reports, each rated by the same 3 raters.
    for item in range(20):
        quality = rng.normal(3, 1)
        for rater in range(3):
            score = int(np.clip(np.rint(quality + rng.normal(0, 0.7)), 1, 5))
            rows.append(
                {
                    "rater": f"r{rater}",
                    "case": f"c{item}",
                    "system_a": "x",
                    "system_b": "y",
                    "winner": "tie",
                    "item": f"i{item}",
                    "likert_a_accuracy": score,
                }
            )
    frame = prepare_judgments(pd.DataFrame(rows))
    result = agreement.icc_oneway(frame, "accuracy", n_resamples=200, seed=0)
    data = pd.DataFrame(
        {"unit": [r["item"] for r in rows], "y": [r["likert_a_accuracy"] for r in rows]}
    )
    anova = anova_lm(smf.ols("y ~ C(unit)", data).fit())
    ms_between, ms_within = anova["mean_sq"].iloc[0], anova["mean_sq"].iloc[1]
    expected = (ms_between - ms_within) / (ms_between + 2 * ms_within)
    assert result["icc"] == pytest.approx(expected, abs=1e-10)
    assert result["n_units"] == 20
    assert result["ci_low"] <= result["icc"] <= result["ci_high"]


def test_intra_rater_gold_position_and_rushed() -> None:
    base = {"system_a": "x", "system_b": "y"}
    rows = [
        # r1 reads item i1 twice and agrees, i2 twice and changes their mind.
        {"rater": "r1", "case": "c1", "item": "i1", "winner": "a", "left": "a", **base},
        {
            "rater": "r1",
            "case": "c1",
            "item": "i1",
            "winner": "a",
            "left": "b",
            "is_duplicate": True,
            **base,
        },
        {"rater": "r1", "case": "c2", "item": "i2", "winner": "b", "left": "a", **base},
        {
            "rater": "r1",
            "case": "c2",
            "item": "i2",
            "winner": "tie",
            "left": "b",
            "is_duplicate": True,
            **base,
        },
        # Gold items: r1 right twice, r2 right once out of two.
        {
            "rater": "r1",
            "case": "c3",
            "item": "g1",
            "winner": "b",
            "left": "a",
            "is_gold": True,
            "gold_answer": "b",
            **base,
        },
        {
            "rater": "r1",
            "case": "c3",
            "item": "g1",
            "winner": "b",
            "left": "b",
            "is_gold": True,
            "gold_answer": "b",
            **base,
        },
        {
            "rater": "r2",
            "case": "c3",
            "item": "g1",
            "winner": "a",
            "left": "a",
            "is_gold": True,
            "gold_answer": "b",
            **base,
        },
        {
            "rater": "r2",
            "case": "c3",
            "item": "g1",
            "winner": "b",
            "left": "a",
            "is_gold": True,
            "gold_answer": "b",
            **base,
        },
    ]
    frame = pd.DataFrame(rows)
    frame["time_on_task_s"] = [40, 35, 2, 50, 30, 45, 1, 60]
    judgments = prepare_judgments(frame)
    intra = agreement.intra_rater(judgments).set_index("rater")
    assert intra.loc["r1", "n_pairs"] == 2 and intra.loc["r1", "same_answer"] == 1
    gold = agreement.gold_accuracy(judgments).set_index("rater")
    assert gold.loc["r1", "accuracy"] == 1.0 and gold.loc["r2", "accuracy"] == 0.5
    flags, summary = agreement.rushed_flags(judgments, min_seconds=5)
    assert flags.tolist() == [False, False, True, False, False, False, True, False]
    assert summary.set_index("rater").loc["r2", "share_rushed"] == 0.5
    # r1: 1 of 6 rushed (under the 20% limit); r2: 1 of 2.
    assert summary.set_index("rater")["flagged"].tolist() == [False, True]


def test_position_bias_is_found_when_present() -> None:
    biased = simulate_judgments(
        {"a": 0.0, "b": 0.0}, n_cases=150, raters=3, position_bias=1.2, seed=5
    )
    fair = simulate_judgments({"a": 0.0, "b": 0.0}, n_cases=150, raters=3, seed=5)
    overall = agreement.position_bias(biased).set_index("rater").loc["all"]
    decided = biased[biased["winner"].isin(["a", "b"])]
    left_won = int((decided["winner"] == decided["left"]).sum())
    assert overall["left_preferred"] == left_won and overall["n_decided"] == len(decided)
    assert overall["p"] == pytest.approx(stats.binomtest(left_won, len(decided)).pvalue)
    assert overall["share_left"] > 0.6 and overall["p"] < 1e-4
    assert agreement.position_bias(fair).set_index("rater").loc["all", "p"] > 0.01


def test_metric_agreement_share_and_kendall_tau() -> None:
    rows, metric = [], []
    rng = np.random.default_rng(6)
    for i in range(40):
        score_x, score_y = rng.random(), rng.random()
        metric += [
            {"case": f"c{i}", "system": "x", "good": score_x, "bad": -score_x, "errors": -score_x},
            {"case": f"c{i}", "system": "y", "good": score_y, "bad": -score_y, "errors": -score_y},
        ]
        winner = "a" if score_x > score_y else "b"
        if i % 10 == 0:
            winner = "tie"
        rows.append(
            {"rater": "r", "case": f"c{i}", "system_a": "x", "system_b": "y", "winner": winner}
        )
    judgments = prepare_judgments(pd.DataFrame(rows))
    table = metric_agreement(
        judgments, pd.DataFrame(metric), lower_is_better=["errors"], n_resamples=200, seed=1
    ).set_index("metric")
    assert table.loc["good", "agreement"] == 1.0 and table.loc["bad", "agreement"] == 0.0
    assert table.loc["errors", "agreement"] == 1.0  # lower is better: flipped
    assert table.loc["good", "n_decided"] == 36 and table.loc["good", "n_judgments"] == 40
    human = judgments["winner"].map({"a": 1, "b": -1, "tie": 0}).to_numpy()
    diff = np.array([m["good"] for m in metric[0::2]]) - np.array([m["good"] for m in metric[1::2]])
    assert table.loc["good", "kendall_tau"] == pytest.approx(
        stats.kendalltau(human, diff).statistic
    )
    assert (
        table.loc["good", "tau_low"]
        <= table.loc["good", "kendall_tau"]
        <= table.loc["good", "tau_high"]
    )
    assert table.loc["bad", "kendall_tau"] == pytest.approx(-table.loc["good", "kendall_tau"])
