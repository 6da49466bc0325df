"""Win/tie/loss per comparison, Wilson intervals, exact sign tests and the win-rate matrix."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from metrics.significance import CORRECTIONS, correct_p_values


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial share (NaN where n == 0)."""
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(1.0 - (1.0 - level) / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = successes / n
        centre = (share + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    return low, np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)


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


def win_tie_loss(
    judgments: pd.DataFrame,
    *,
    level: float = 0.95,
    correction: str = "holm",
    both_bad: Literal["tie", "separate"] = "separate",
) -> pd.DataFrame:
    """One row per comparison (system_a < system_b) with counts, shares and sign tests.

    `p_sign` is the exact sign test with ties (and both-unacceptable) excluded;
    `p_ties_split` is the sensitivity analysis that gives half the ties to each side
    (an odd tie is dropped). Both are adjusted over the comparisons with `correction`.
    """
    frame = regular(judgments)
    records = []
    for (a, b), group in frame.groupby(["system_a", "system_b"], sort=True):
        counts = group["winner"].value_counts()
        wins_a, wins_b = int(counts.get("a", 0)), int(counts.get("b", 0))
        ties, both = int(counts.get("tie", 0)), int(counts.get("both_bad", 0))
        if both_bad == "tie":
            ties, both = ties + both, 0
        n = wins_a + wins_b + ties + both
        split = (ties + both) // 2
        records.append(
            {
                "system_a": a,
                "system_b": b,
                "n": n,
                "n_cases": group["case"].nunique(),
                "wins_a": wins_a,
                "wins_b": wins_b,
                "ties": ties,
                "both_bad": both,
                "p_sign": sign_test(wins_a, wins_b),
                "p_ties_split": sign_test(wins_a + split, wins_b + split),
            }
        )
    table = pd.DataFrame.from_records(
        records,
        columns=[
            "system_a",
            "system_b",
            "n",
            "n_cases",
            "wins_a",
            "wins_b",
            "ties",
            "both_bad",
            "p_sign",
            "p_ties_split",
        ],
    )
    shares = {"wins_a": "share_a", "wins_b": "share_b", "ties": "share_ties"}
    shares["both_bad"] = "share_both_bad"
    for name, share in shares.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            table[share] = table[name] / table["n"]
        low, high = wilson_interval(table[name], table["n"], level)
        table[f"{share}_low"], table[f"{share}_high"] = low, high
    table["p_sign_adj"] = adjust_pvalues(table["p_sign"], correction)
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
