"""Win/tie/loss per comparison, cluster-aware win-share intervals and sign tests, and the
win-rate matrix.

Judgments of one reader study are not independent: the raters of a case read the same
reports, and each rater judges many cases with their own taste. The default sign test and
win-share intervals therefore treat cases and raters both as clusters (two-way, in
Cameron, Gelbach and Miller's way: case + rater - case&rater); the exact binomial sign test
and the plain Wilson and Clopper-Pearson intervals, which treat judgments as independent,
stay next to them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from metrics.significance import CORRECTIONS, correct_p_values


def _quantile(level: float, df: float | np.ndarray | None) -> np.ndarray:
    alpha = (1.0 - level) / 2.0
    if df is None:
        return np.asarray(stats.norm.ppf(1.0 - alpha))
    df = np.asarray(df, dtype=float)
    return np.where(np.isinf(df), stats.norm.ppf(1.0 - alpha), stats.t.ppf(1.0 - alpha, df))


def wilson_interval(
    successes: np.ndarray | float,
    n: np.ndarray | float,
    level: float = 0.95,
    df: float | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial share (NaN where n == 0).

    `df`: take the quantile from t with these degrees of freedom instead of the normal
    (the cluster-aware version, with few clusters); `n` may be an effective sample size.
    """
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _quantile(level, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = successes / n
        centre = (share + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    return low, np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)


def clopper_pearson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial interval: the one to read for small n.

    Non-integer counts (an effective sample size) use the same beta quantiles.
    """
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(successes > 0, stats.beta.ppf(alpha, successes, n - successes + 1), 0.0)
        high = np.where(
            successes < n, stats.beta.ppf(1.0 - alpha, successes + 1, n - successes), 1.0
        )
    valid = n > 0
    return np.where(valid, low, np.nan), np.where(valid, high, np.nan)


def adjust_pvalues(pvalues: np.ndarray | list[float], method: str = "holm") -> np.ndarray:
    """Family-wise (Holm) or false-discovery-rate (Benjamini-Hochberg) adjusted p-values.

    NaN p-values (tests that could not be run) stay NaN and are not counted in the family.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {method!r}")
    pvalues = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(pvalues, np.nan)
    finite = ~np.isnan(pvalues)
    adjusted[finite] = correct_p_values(pvalues[finite].tolist(), method)
    return adjusted


def sign_test(wins_a: int, wins_b: int) -> float:
    """Exact two-sided sign test of wins_a vs wins_b (ties already excluded)."""
    n = int(wins_a) + int(wins_b)
    if n == 0:
        return float("nan")
    return float(stats.binomtest(int(wins_a), n, 0.5).pvalue)


def regular(judgments: pd.DataFrame) -> pd.DataFrame:
    """Judgments that count for system comparisons: gold items and repeat readings left out."""
    keep = ~judgments["is_gold"] & ~judgments["is_duplicate"]
    return judgments[keep]


def two_way_sum_of_squares(
    values: np.ndarray, case: np.ndarray, rater: np.ndarray, *, small_sample: bool = False
) -> tuple[float, int, int]:
    """Sum over cases + sum over raters - sum over (case, rater) cells of the squared
    cluster totals of `values`: the two-way cluster-robust variance of their sum.

    Returns (variance, effective cases, effective raters) (`effective_clusters`). Where
    the two-way sum is not positive (possible in small samples), the larger one-way sum is
    used. `small_sample` multiplies each term by G / (G - 1) for its G clusters (Cameron,
    Gelbach and Miller's correction), for estimates made from the same values (a mean);
    a test of a value fixed by the null (the sign test) needs none.
    """
    _, case_codes = np.unique(case, return_inverse=True)
    _, rater_codes = np.unique(rater, return_inverse=True)
    cell = case_codes * (rater_codes.max() + 1) + rater_codes
    by_case = np.bincount(case_codes, values)
    by_rater = np.bincount(rater_codes, values)
    by_cell = np.bincount(np.unique(cell, return_inverse=True)[1], values)

    def term(totals: np.ndarray) -> float:
        g = len(totals)
        factor = g / (g - 1) if small_sample and g > 1 else 1.0
        return factor * float(totals @ totals)

    one_way = (term(by_case), term(by_rater))
    variance = one_way[0] + one_way[1] - term(by_cell)
    if variance <= 0:
        variance = max(one_way)
    return (
        variance,
        effective_clusters(np.bincount(case_codes)),
        effective_clusters(np.bincount(rater_codes)),
    )


def effective_clusters(sizes: np.ndarray) -> float:
    """Kish's effective number of clusters that hold `sizes` judgments: (sum n_g)^2 /
    sum n_g^2, the degrees of freedom of a cluster-robust variance.

    Equal to the number of clusters when they are equally large, smaller when a few raters
    read most. The fully correlated form, (sum n_g^2)^2 / sum n_g^4 (each cluster's score
    variance growing with n_g^2), was measured too wide in bench/coverage.py when rater
    workloads are unequal (coverage 0.99 against 0.96 with this form, 300 simulated studies
    of the "unbalanced overlap" scenario; the other scenarios within 0.94-0.96 either way).
    """
    weights = np.asarray(sizes, dtype=float)
    weights = weights[weights > 0]
    return float(weights.sum() ** 2 / (weights**2).sum()) if len(weights) else 0.0


def clustered_mean(
    values: np.ndarray, case: np.ndarray, rater: np.ndarray
) -> tuple[float, float, float]:
    """(mean, standard error, t degrees of freedom) of `values` with cases and raters as
    crossed clusters: the two-way cluster-robust variance of the mean with the small-sample
    correction, t on the fewest effective clusters - 1 (the rule of the Bradley-Terry
    sandwich and the sign test).

    The variance is floored at the heteroskedasticity-robust one of independent judgments
    (HC1: n / (n - 1) times the sum of squared deviations), as Cameron, Gelbach and Miller
    advise: a two-way sum below it is the noise of a few clusters' totals, not judgments
    worth more than independent ones (as estimated, the Holm family-wise rejection of a
    true null of paired Likert differences was 0.090 with independent judgments, 0.037
    with the floor, 300 studies of bench/coverage.py). Where the floor binds, the interval
    is that of independent judgments: t on n - 1 degrees of freedom (keeping t on the
    clusters there made it cover 0.987-0.989 without case or rater effects).
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return (float(values.mean()) if n else float("nan")), float("nan"), float("nan")
    mean = float(values.mean())
    deviations = values - mean
    variance, n_cases, n_raters = two_way_sum_of_squares(deviations, case, rater, small_sample=True)
    independent = n / (n - 1) * float(deviations @ deviations)
    if independent > variance:
        return mean, float(np.sqrt(independent) / n), float(n - 1)
    return mean, float(np.sqrt(variance) / n), max(min(n_cases, n_raters) - 1.0, 1.0)


def clustered_sign_test(
    winners: np.ndarray, case: np.ndarray, rater: np.ndarray
) -> tuple[float, float]:
    """Sign test that respects cases and raters as clusters: (p, degrees of freedom).

    The statistic is the sign test's, wins of a minus wins of b; its variance under the
    null (no preference: every sign has mean 0) is the two-way cluster sum of squares of
    the signs (which is the number of decided judgments when they are independent); the
    p-value is two-sided from t with (fewest effective clusters) - 1 degrees of freedom.
    Ties and
    'both unacceptable' have sign 0.
    """
    winners = np.asarray(winners)
    signs = np.where(winners == "a", 1.0, np.where(winners == "b", -1.0, 0.0))
    if not np.any(signs):
        return float("nan"), float("nan")
    variance, n_cases, n_raters = two_way_sum_of_squares(signs, case, rater)
    df = max(min(n_cases, n_raters) - 1.0, 1.0)
    statistic = signs.sum() / np.sqrt(variance)
    return float(2.0 * stats.t.sf(abs(statistic), df)), df


def design_effect(
    indicator: np.ndarray, case: np.ndarray, rater: np.ndarray
) -> tuple[float, float]:
    """(Design effect, t degrees of freedom) of a share: the two-way cluster variance of the
    indicator's centred sum over its binomial variance, floored at one.

    A two-way variance below the binomial one is the noise of a few clusters' totals, not
    judgments worth more than independent ones (the floor of `clustered_mean`, Cameron,
    Gelbach and Miller's guard): there the interval is the plain Wilson interval of
    independent judgments, design effect 1 on the normal quantile (infinite df). As
    estimated, the cluster-aware interval covered 0.921 without any case or rater effect,
    with the floor 0.952 (400 studies of bench/coverage.py, 'independent'); keeping t on
    the fewest clusters - 1 where the floor binds covered 0.983 there.
    """
    indicator = np.asarray(indicator, dtype=float)
    n = len(indicator)
    share = indicator.mean() if n else np.nan
    binomial = n * share * (1.0 - share)
    if n == 0 or binomial <= 0:
        return 1.0, float("nan") if n == 0 else float(max(n - 1, 1))
    variance, n_cases, n_raters = two_way_sum_of_squares(indicator - share, case, rater)
    if variance <= binomial:
        return 1.0, float("inf")
    return variance / binomial, max(min(n_cases, n_raters) - 1.0, 1.0)


def win_tie_loss(
    judgments: pd.DataFrame,
    *,
    level: float = 0.95,
    correction: str = "holm",
    both_bad: Literal["tie", "separate"] = "separate",
) -> pd.DataFrame:
    """One row per comparison (system_a < system_b) with counts, shares and sign tests.

    `p_sign` is the clustered sign test (`clustered_sign_test`: cases and raters as
    clusters) with ties (and both-unacceptable) excluded; `p_sign_exact` is the exact
    binomial sign test and `p_ties_split` its sensitivity analysis that gives half the
    ties to each side (an odd tie is dropped), both treating judgments as independent.
    All are adjusted over the comparisons with `correction`.

    Shares: `share_x_low/high` is the cluster-aware Wilson interval (effective sample size
    n / design effect, t quantile with the fewest effective clusters - 1 df; the plain
    Wilson interval where the design effect is floored at one, `design_effect`);
    `share_x_wilson_*` and
    `share_x_cp_*` the plain Wilson and Clopper-Pearson intervals (judgments independent),
    the Clopper-Pearson one to read when n is small.
    """
    frame = regular(judgments)
    records = []
    for (a, b), group in frame.groupby(["system_a", "system_b"], sort=True):
        winner = group["winner"].to_numpy()
        case, rater = group["case"].to_numpy(), group["rater"].to_numpy()
        wins_a, wins_b = int((winner == "a").sum()), int((winner == "b").sum())
        ties, both = int((winner == "tie").sum()), int((winner == "both_bad").sum())
        indicators = {
            "wins_a": winner == "a",
            "wins_b": winner == "b",
            "ties": winner == "tie",
            "both_bad": winner == "both_bad",
        }
        if both_bad == "tie":
            ties, both = ties + both, 0
            indicators["ties"] = indicators["ties"] | indicators.pop("both_bad")
            indicators["both_bad"] = np.zeros(len(winner), dtype=bool)
        n = wins_a + wins_b + ties + both
        split = (ties + both) // 2
        p_cluster, df = clustered_sign_test(winner, case, rater)
        record = {
            "system_a": a,
            "system_b": b,
            "n": n,
            "n_cases": len(np.unique(case)),
            "n_raters": len(np.unique(rater)),
            "wins_a": wins_a,
            "wins_b": wins_b,
            "ties": ties,
            "both_bad": both,
            "p_sign": p_cluster,
            "p_sign_exact": sign_test(wins_a, wins_b),
            "p_ties_split": sign_test(wins_a + split, wins_b + split),
            "df": df,
        }
        for name, indicator in indicators.items():
            record[f"deff_{name}"], record[f"df_{name}"] = design_effect(indicator, case, rater)
        records.append(record)
    columns = [
        "system_a",
        "system_b",
        "n",
        "n_cases",
        "n_raters",
        "wins_a",
        "wins_b",
        "ties",
        "both_bad",
        "p_sign",
        "p_sign_exact",
        "p_ties_split",
        "df",
    ]
    table = pd.DataFrame.from_records(records)
    if table.empty:
        table = pd.DataFrame(columns=columns)
    shares = {"wins_a": "share_a", "wins_b": "share_b", "ties": "share_ties"}
    shares["both_bad"] = "share_both_bad"
    for name, share in shares.items():
        counts = table[name].to_numpy(dtype=float)
        n = table["n"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            table[share] = counts / n
        deff = table.get(f"deff_{name}", pd.Series(np.ones(len(table)))).to_numpy(dtype=float)
        df = table.get(f"df_{name}", pd.Series(np.full(len(table), np.inf))).to_numpy(float)
        low, high = wilson_interval(counts / deff, n / deff, level, df=df)
        table[f"{share}_low"], table[f"{share}_high"] = low, high
        low, high = wilson_interval(counts, n, level)
        table[f"{share}_wilson_low"], table[f"{share}_wilson_high"] = low, high
        low, high = clopper_pearson_interval(counts, n, level)
        table[f"{share}_cp_low"], table[f"{share}_cp_high"] = low, high
        table = table.drop(columns=[f"df_{name}"], errors="ignore")
    table["p_sign_adj"] = adjust_pvalues(table["p_sign"], correction)
    table["p_sign_exact_adj"] = adjust_pvalues(table["p_sign_exact"], correction)
    table["p_ties_split_adj"] = adjust_pvalues(table["p_ties_split"], correction)
    return table


def win_rate_matrix(
    judgments: pd.DataFrame, *, ties: float = 0.5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observed win rate of row over column (ties and both-unacceptable count `ties` each).

    Returns (rates, counts); the diagonal and pairs never compared are NaN / 0.
    """
    frame = regular(judgments)
    systems = sorted(set(frame["system_a"]) | set(frame["system_b"]))
    index = {s: i for i, s in enumerate(systems)}
    score = np.zeros((len(systems), len(systems)))
    count = np.zeros_like(score)
    i = frame["system_a"].map(index).to_numpy()
    j = frame["system_b"].map(index).to_numpy()
    winner = frame["winner"].to_numpy()
    credit_a = np.where(winner == "a", 1.0, np.where(winner == "b", 0.0, ties))
    credit_b = np.where(winner == "b", 1.0, np.where(winner == "a", 0.0, ties))
    np.add.at(score, (i, j), credit_a)
    np.add.at(score, (j, i), credit_b)
    np.add.at(count, (i, j), 1.0)
    np.add.at(count, (j, i), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(count > 0, score / count, np.nan)
    return (
        pd.DataFrame(rates, index=systems, columns=systems),
        pd.DataFrame(count.astype(int), index=systems, columns=systems),
    )
