"""The Bradley-Terry cluster-robust (sandwich) variance against statsmodels' logistic
regression with `cov_type="cluster"` on the same battles, one- and two-way, and against a
numerical sandwich for the Davidson model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from studies.reader_stats.bradley_terry import (
    BTRows,
    bradley_terry,
    build_rows,
    cluster_covariance,
    fit_batch,
    inference_df,
)
from studies.reader_stats.data import prepare_judgments
from studies.reader_stats.pairwise import effective_clusters
from studies.reader_stats.simulation import SCENARIOS, simulate_study


def _battles(seed: int, *, ties: bool, style: bool) -> pd.DataFrame:
    """One judgment per (case, rater, pair), so a row of BTRows is one battle."""
    scenario = SCENARIOS["rater x system"].scaled(
        strengths={"A": 0.5, "B": 0.1, "C": -0.2, "D": -0.4},
        n_cases=30,
        raters=7,
        raters_per_item=2,
        tie_nu=0.6 if ties else 0.0,
        likert=False,
    )
    judgments = simulate_study(scenario, seed)
    if style:
        rng = np.random.default_rng(seed)
        judgments["len_a"] = rng.integers(30, 120, len(judgments)).astype(float)
        judgments["len_b"] = rng.integers(30, 120, len(judgments)).astype(float)
    return judgments


def _logit(rows: BTRows) -> tuple[np.ndarray, np.ndarray]:
    """Battles as a logistic regression: y = 1 (a won), 0 (b won), 0.5 (tie: half a win)."""
    k = len(rows.systems)
    design = np.zeros((len(rows.index_a), k - 1 + rows.style.shape[1]))
    for j in range(1, k):
        design[:, j - 1] = (rows.index_a == j).astype(float) - (rows.index_b == j)
    design[:, k - 1 :] = rows.style
    outcome = rows.wins_a + rows.ties / 2.0
    return design, outcome


@pytest.mark.parametrize(("ties", "style"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("cluster", ["case", "rater", "case+rater", "none"])
def test_half_win_sandwich_equals_statsmodels_cluster_logit(
    ties: bool, style: bool, cluster: str
) -> None:
    rows = build_rows(_battles(3, ties=ties, style=style), style=style)
    assert np.all(rows.wins_a + rows.wins_b + rows.ties == 1)
    design, outcome = _logit(rows)
    model = sm.Logit(outcome, design)
    groups = {
        "case": rows.case_index,
        "rater": rows.rater_index,
        "case+rater": np.column_stack([rows.case_index, rows.rater_index]),
        "none": np.arange(len(outcome)),
    }[cluster]
    # statsmodels' defaults for clusters: use_correction=True, df_correction=True.
    fitted = model.fit(
        disp=0,
        method="newton",
        tol=1e-12,
        cov_type="cluster",
        cov_kwds={"groups": groups, "use_correction": True, "df_correction": True},
    )
    beta, converged = fit_batch(rows, np.ones((1, len(outcome))), ridge=0.0, tol=1e-12)
    assert converged
    assert np.allclose(beta[0], fitted.params, atol=1e-6)
    ours = cluster_covariance(rows, fitted.params, cluster=cluster)  # type: ignore[arg-type]
    assert np.allclose(ours, fitted.cov_params(), atol=1e-6, rtol=0)
    # Without the small-sample factor, the same as statsmodels' use_correction=False.
    plain = model.fit(
        disp=0,
        method="newton",
        tol=1e-12,
        cov_type="cluster",
        cov_kwds={"groups": groups, "use_correction": False},
    )
    ours_plain = cluster_covariance(
        rows,
        fitted.params,
        cluster=cluster,  # type: ignore[arg-type]
        use_correction=False,
    )
    assert np.allclose(ours_plain, plain.cov_params(), atol=1e-6, rtol=0)


def test_davidson_sandwich_equals_a_numerical_sandwich() -> None:
    """Per-judgment scores and the Hessian by finite differences of the Davidson
    log-likelihood; the two-way sum V_case + V_rater - V_both by hand."""
    rows = build_rows(_battles(5, ties=True, style=False))
    beta, converged = fit_batch(
        rows, np.ones((1, len(rows.index_a))), tie_model="davidson", ridge=0.0, tol=1e-12
    )
    assert converged
    beta = beta[0]
    k = len(rows.systems)

    def loglik_rows(params: np.ndarray) -> np.ndarray:
        theta = np.concatenate([[0.0], params[: k - 1]])
        nu = np.exp(params[-1])
        pa, pb = np.exp(theta[rows.index_a]), np.exp(theta[rows.index_b])
        tie = nu * np.sqrt(pa * pb)
        total = pa + pb + tie
        return (
            rows.wins_a * np.log(pa / total)
            + rows.wins_b * np.log(pb / total)
            + rows.ties * np.log(tie / total)
        )

    eye = np.eye(len(beta))

    def scores_at(params: np.ndarray, step: float = 1e-6) -> np.ndarray:
        return np.column_stack(
            [
                (loglik_rows(params + step * e) - loglik_rows(params - step * e)) / (2 * step)
                for e in eye
            ]
        )

    scores = scores_at(beta)
    h = 1e-4
    hessian = np.array(
        [(scores_at(beta + h * e).sum(0) - scores_at(beta - h * e).sum(0)) / (2 * h) for e in eye]
    )
    bread = np.linalg.inv(-hessian)
    n, p = rows.n_judgments, len(beta)

    def one_way(groups: np.ndarray) -> np.ndarray:
        labels = np.unique(groups)
        summed = np.array([scores[groups == g].sum(axis=0) for g in labels])
        g = len(labels)
        return g / (g - 1) * (n - 1) / (n - p) * bread @ summed.T @ summed @ bread

    both = rows.case_index * 1000 + rows.rater_index
    expected = one_way(rows.case_index) + one_way(rows.rater_index) - one_way(both)
    ours = cluster_covariance(rows, beta, tie_model="davidson", cluster="case+rater")
    assert np.allclose(ours, expected, atol=1e-5, rtol=1e-4)


def test_sandwich_intervals_use_t_with_the_fewest_effective_clusters() -> None:
    judgments = _battles(7, ties=False, style=False)
    result = bradley_terry(judgments, cluster="case+rater", interval="sandwich")
    rows = build_rows(judgments)
    from scipy import stats

    # Kish's effective number of clusters: (sum n_g)^2 / sum n_g^2.
    raters = judgments.groupby("rater").size().to_numpy(dtype=float)
    cases = judgments.groupby("case").size().to_numpy(dtype=float)
    fewest = min(raters.sum() ** 2 / (raters**2).sum(), cases.sum() ** 2 / (cases**2).sum())
    assert fewest <= min(rows.n_cases, rows.n_raters)
    assert inference_df(rows, "case+rater") == pytest.approx(fewest - 1)
    quantile = stats.t.ppf(0.975, fewest - 1)
    assert np.allclose(result.ci_high - result.estimate, quantile * result.se)
    assert np.allclose(result.estimate - result.ci_low, quantile * result.se)
    # Equal workloads: the effective number is the number of clusters.
    assert effective_clusters(np.full(6, 20.0)) == pytest.approx(6.0)
    assert effective_clusters(np.array([100.0, 1, 1, 1])) < 1.1


def test_aggregated_rows_give_the_same_sandwich_as_battles() -> None:
    """Two readings of a (case, rater, pair) are one row of counts; the variance is the same
    as with one row per battle (scores sum within a cluster)."""
    frame = _battles(11, ties=True, style=False)
    doubled = prepare_judgments(
        pd.concat([frame, frame.assign(winner=frame["winner"].iloc[::-1].to_numpy())])[
            ["rater", "case", "system_a", "system_b", "winner"]
        ]
    )
    rows = build_rows(doubled)
    assert rows.wins_a.sum() + rows.wins_b.sum() + rows.ties.sum() == 2 * len(frame)
    assert len(rows.index_a) == len(frame)
    design, _ = _logit(rows)
    # Expand the counts back into one row per battle for statsmodels.
    expand = np.concatenate(
        [
            np.repeat(np.arange(len(rows.index_a)), c.astype(int))
            for c in (rows.wins_a, rows.wins_b, rows.ties)
        ]
    )
    outcome = np.concatenate(
        [
            np.full(int(c.sum()), y)
            for c, y in ((rows.wins_a, 1.0), (rows.wins_b, 0.0), (rows.ties, 0.5))
        ]
    )
    groups = np.column_stack([rows.case_index[expand], rows.rater_index[expand]])
    fitted = sm.Logit(outcome, design[expand]).fit(
        disp=0, method="newton", tol=1e-12, cov_type="cluster", cov_kwds={"groups": groups}
    )
    ours = cluster_covariance(rows, fitted.params, cluster="case+rater")
    assert np.allclose(ours, fitted.cov_params(), atol=1e-6, rtol=0)
