"""Agreement between and within raters, and checks of rating quality.

Preferences are coded on an ordinal scale b < tie (and both unacceptable) < a, in the
canonical orientation of each pair. Likert agreement uses each report's rating (item, side).
Bootstrap intervals resample rated units (items); they are vectorised because every
statistic here is a function of per-unit count tables summed over units.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from studies.reader_stats.pairwise import adjust_pvalues, effective_clusters, wilson_interval

PREFERENCE_CODE = {"b": 0, "tie": 1, "both_bad": 1, "a": 2}
Level = Literal["nominal", "ordinal", "interval", "ratio"]


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def _unit_weights(n_units: int, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), n_resamples).astype(float)


def ratings_matrix(
    judgments: pd.DataFrame, ratings: str = "preference"
) -> tuple[pd.DataFrame, list[float]]:
    """Raters x units table of ratings (NaN where not rated) and the value domain.

    `ratings` is "preference" (units: items) or a Likert criterion (units: item and side).
    Gold items and repeat readings are left out; a rater's first reading counts.
    """
    frame = judgments[~judgments["is_gold"] & ~judgments["is_duplicate"]]
    if ratings == "preference":
        long = pd.DataFrame(
            {
                "rater": frame["rater"],
                "unit": frame["item"],
                "value": frame["winner"].map(PREFERENCE_CODE).astype(float),
            }
        )
        domain = [0.0, 1.0, 2.0]
    else:
        parts = [
            pd.DataFrame(
                {
                    "rater": frame["rater"],
                    "unit": frame["item"] + "|" + side,
                    "value": frame[f"likert_{side}_{ratings}"].astype(float),
                }
            )
            for side in ("a", "b")
        ]
        long = pd.concat(parts, ignore_index=True)
        domain = [1.0, 2.0, 3.0, 4.0, 5.0]
    long = long[long["value"].notna()].drop_duplicates(["rater", "unit"], keep="first")
    table = long.pivot(index="rater", columns="unit", values="value")
    return table, domain


def weighted_kappa(
    first: np.ndarray, second: np.ndarray, domain: list[float], weights: str | None = "linear"
) -> float:
    """Cohen's kappa with linear/quadratic disagreement weights (None: unweighted)."""
    onehot = _pair_onehot(np.asarray(first), np.asarray(second), domain)
    return float(_kappa_from_counts(onehot.sum(axis=0)[None, :], len(domain), weights)[0])


def _pair_onehot(first: np.ndarray, second: np.ndarray, domain: list[float]) -> np.ndarray:
    index = {v: i for i, v in enumerate(domain)}
    v = len(domain)
    rows = np.array([index[x] for x in first]) * v + np.array([index[x] for x in second])
    onehot = np.zeros((len(first), v * v))
    onehot[np.arange(len(first)), rows] = 1.0
    return onehot


def _kappa_from_counts(counts: np.ndarray, v: int, weights: str | None) -> np.ndarray:
    """Batch of flattened v x v confusion tables -> weighted kappa per table."""
    table = counts.reshape(-1, v, v)
    grid = np.abs(np.arange(v)[:, None] - np.arange(v)[None, :]).astype(float)
    if weights is None or weights == "none":
        w = (grid > 0).astype(float)
    elif weights == "linear":
        w = grid
    elif weights == "quadratic":
        w = grid**2
    else:
        raise ValueError(f"weights must be linear, quadratic or none, not {weights!r}")
    n = table.sum(axis=(1, 2))
    expected = table.sum(axis=2)[:, :, None] * table.sum(axis=1)[:, None, :] / n[:, None, None]
    observed_disagreement = (w * table).sum(axis=(1, 2))
    expected_disagreement = (w * expected).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - observed_disagreement / expected_disagreement


def cohen_kappa_pairs(
    judgments: pd.DataFrame,
    *,
    ratings: str = "preference",
    weights: str | None = "linear",
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    min_units: int = 2,
) -> pd.DataFrame:
    """Weighted Cohen's kappa for every pair of raters who rated at least `min_units` units."""
    table, domain = ratings_matrix(judgments, ratings)
    records = []
    for pair_index, (r1, r2) in enumerate(combinations(table.index, 2)):
        both = table.loc[[r1, r2]].dropna(axis=1)
        if both.shape[1] < min_units:
            continue
        onehot = _pair_onehot(both.loc[r1].to_numpy(), both.loc[r2].to_numpy(), domain)
        kappa = _kappa_from_counts(onehot.sum(axis=0)[None, :], len(domain), weights)[0]
        low = high = float("nan")
        if n_resamples > 0:
            w = _unit_weights(both.shape[1], n_resamples, seed + pair_index)
            boot = _kappa_from_counts(w @ onehot, len(domain), weights)
            low, high = _interval(boot, level)
        records.append(
            {
                "ratings": ratings,
                "rater_1": r1,
                "rater_2": r2,
                "n_units": both.shape[1],
                "kappa": float(kappa),
                "ci_low": low,
                "ci_high": high,
            }
        )
    columns = ["ratings", "rater_1", "rater_2", "n_units", "kappa", "ci_low", "ci_high"]
    return pd.DataFrame.from_records(records, columns=columns)


# Gwet's weights for chance-corrected agreement (Gwet 2014, Handbook of Inter-Rater
# Reliability, ch. 3; irrCAC's identity.weights / quadratic.weights): 1 on the diagonal.
AGREEMENT_WEIGHTS = ("identity", "quadratic", "linear")


def agreement_weights(domain: list[float], weights: str = "identity") -> np.ndarray:
    """The q x q agreement weights over the value domain (its numbers are the scores)."""
    values = np.asarray(domain, dtype=float)
    span = values.max() - values.min() if len(values) > 1 else 1.0
    distance = np.abs(values[:, None] - values[None, :]) / span
    if weights == "identity":
        return np.eye(len(values))
    if weights == "quadratic":
        return 1.0 - distance**2
    if weights == "linear":
        return 1.0 - distance
    raise ValueError(f"weights must be one of {', '.join(AGREEMENT_WEIGHTS)}, not {weights!r}")


def category_counts(table: pd.DataFrame, domain: list[float]) -> np.ndarray:
    """Units x categories: how many raters put each unit (rated at least once) in each value."""
    values = table.to_numpy(dtype=float)
    counts = np.stack([(values == v).sum(axis=0) for v in domain], axis=1).astype(float)
    return counts[counts.sum(axis=1) > 0]


@dataclass(frozen=True)
class Ratings:
    """Every rating of a raters x units table as aligned arrays: the unit (a row of
    `category_counts`), the rater and the category (an index into the value domain)."""

    unit: np.ndarray
    rater: np.ndarray
    category: np.ndarray
    # Per unit (row of `category_counts`): the code of its case, when units of one case
    # (the pairs of a case's reports, the two reports of an item) are correlated.
    cluster: np.ndarray | None = None


def rating_codes(
    table: pd.DataFrame, domain: list[float], cases: np.ndarray | None = None
) -> Ratings:
    """The ratings of `table` with units numbered as the rows of `category_counts`;
    `cases`, one per column of `table`, groups the units by case."""
    values = table.to_numpy(dtype=float)
    rated = np.isin(values, domain)
    kept = rated.any(axis=0)
    units = np.cumsum(kept) - 1
    rater, column = np.nonzero(rated)
    index = {v: i for i, v in enumerate(domain)}
    category = np.array([index[v] for v in values[rater, column]], dtype=int)
    cluster = None
    if cases is not None:
        cluster = pd.factorize(np.asarray(cases, dtype=object)[kept])[0]
    return Ratings(unit=units[column], rater=rater, category=category, cluster=cluster)


def unit_cases(judgments: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """The case of each unit (column) of `ratings_matrix`: of the item, or of the item a
    report (item|side) belongs to."""
    case_of = dict(zip(judgments["item"].astype(str), judgments["case"].astype(str), strict=True))
    return np.array(
        [
            case_of.get(str(label), case_of.get(str(label).rsplit("|", 1)[0], str(label)))
            for label in table.columns
        ],
        dtype=object,
    )


AGREEMENT_VARIANCES = ("units+raters", "units")


def chance_corrected(
    counts: np.ndarray,
    weights: np.ndarray,
    coefficient: str,
    *,
    level: float = 0.95,
    ratings: Ratings | None = None,
    variance: str = "units+raters",
) -> dict[str, float]:
    """Fleiss' kappa or Gwet's AC1/AC2 for units rated by any number of raters, with a
    linearised standard error, a t interval whose upper end is capped at 1.

    Gwet's generalisation (Gwet 2014, ch. 5; irrCAC's fleiss.kappa.raw and gwet.ac1.raw):
    observed agreement over the units with two or more ratings, category shares averaged
    over every unit's own share, so a unit with fewer raters is neither dropped nor
    over-weighted; with equal rater counts, kappa is Fleiss (1971).

    `variance` "units+raters" (default; needs `ratings`): cases and raters both sampled
    (the question of Gwet 2008, Psychometrika 73). Each unit's linearised contribution
    (irrCAC's) is split into the agreement of each pair of its raters and the category
    share of each rating, and contributions that share a case (`Ratings.cluster`: the
    items of a case show the same reports) or a rater count as correlated: the two-way
    cluster-robust variance for ratings made by pairs of raters (`_two_way_parts`), t on
    Satterthwaite's df for the parts it is made of (`_two_way_variance`). "units": raters
    fixed, units independent, irrCAC's variance on n - 1 df, which covered 0.89 (AC1) with
    rater x system effects or unequal workloads and 0.93 with report effects in
    bench/coverage.py.
    A rater jackknife (Gwet 2008) counts each rater's share of the unit sampling again and
    covered 1.0 there.
    """
    if coefficient not in ("fleiss", "gwet"):
        raise ValueError(f"coefficient must be 'fleiss' or 'gwet', not {coefficient!r}")
    if variance not in AGREEMENT_VARIANCES:
        raise ValueError(
            f"variance must be one of {', '.join(AGREEMENT_VARIANCES)}, not {variance!r}"
        )
    nan = float("nan")
    result = {
        "value": nan,
        "se": nan,
        "df": nan,
        "ci_low": nan,
        "ci_high": nan,
        "n_units": len(counts),
    }
    raters = counts.sum(axis=1)
    several = raters >= 2
    n, q = counts.shape
    if several.sum() < 2 or q < 2:
        return result
    weighted = counts @ weights.T
    agreeing = (counts * (weighted - 1.0)).sum(axis=1)
    pairs = raters * (raters - 1.0)
    pa = float((agreeing[several] / pairs[several]).sum() / several.sum())
    shares = (counts / raters[:, None]).mean(axis=0)
    if coefficient == "fleiss":
        pe = float((weights * np.outer(shares, shares)).sum())
    else:
        pe = float(weights.sum() * (shares * (1.0 - shares)).sum() / (q * (q - 1)))
    if pe >= 1.0:
        return result
    value = (pa - pe) / (1.0 - pe)
    # Linearised per-unit contributions (irrCAC's *.ivec.x); `chance` is each category's
    # contribution to the chance agreement of a unit (its mean over the unit's ratings).
    pa_unit = np.where(several, agreeing / np.where(several, pairs, 1.0), 0.0)
    value_unit = (n / several.sum()) * (pa_unit - pe * several) / (1.0 - pe)
    if coefficient == "fleiss":
        chance = (weights @ shares + weights.T @ shares) / 2.0
    else:
        chance = weights.sum() / (q * (q - 1)) * (1.0 - shares)
    pe_unit = (counts @ chance) / raters
    linear = value_unit - 2.0 * (1.0 - value) * (pe_unit - pe) / (1.0 - pe)
    unit_part = ((linear - value) ** 2).sum() / (n * (n - 1))
    se2, df = float(unit_part), float(n - 1)
    if variance == "units+raters":
        if ratings is None:
            raise ValueError("the units+raters variance needs the ratings (rating_codes)")
        se2, df = _two_way_variance(
            ratings, raters, several, weights, chance, pa, pe, value, float(unit_part)
        )
    se = float(np.sqrt(se2))
    half = float(stats.t.ppf(1.0 - (1.0 - level) / 2.0, df)) * se
    result.update(
        value=float(value),
        se=se,
        df=df,
        ci_low=value - half,
        ci_high=min(1.0, value + half),
    )
    return result


def _two_way_variance(
    ratings: Ratings,
    raters: np.ndarray,
    several: np.ndarray,
    weights: np.ndarray,
    chance: np.ndarray,
    pa: float,
    pe: float,
    value: float,
    unit_part: float,
) -> tuple[float, float]:
    """(variance, df) of a chance-corrected coefficient with cases (units) and raters
    sampled (`_two_way_parts`): the case part plus the rater part where that is positive
    (a study's few raters estimate it poorly and a negative estimate would narrow the
    interval below the one with raters fixed). The rater part is a difference of two
    sums of products, the rater mean square (terms sharing a rater) less its noise (terms
    sharing a case and a rater, and the centring expectation), so t is on Satterthwaite's
    df for case part + mean square - noise (Satterthwaite 1946): the case part and the
    noise on C - 1 df, the mean square on R_eff - 1 for the effective number of raters of
    the workloads (`pairwise.effective_clusters`). With the rater part's own R - 1 df, the
    interval of AC1 covered 0.91-0.93 with rater x system effects in bench/coverage.py:
    its estimate's spread across studies was 2.3 times its mean there, the precision of
    less than one df, not of seven. With fewer than four raters, or nothing to estimate,
    irrCAC's units-only variance on n - 1 df."""
    n = len(raters)
    parts = _two_way_parts(ratings, raters, several, weights, chance, pa, pe, value)
    if parts is None:
        return unit_part, float(n - 1)
    if not (np.isfinite(parts.case) and parts.case > 0):
        return unit_part, float(n - 1)
    rater_part = parts.mean_square - parts.noise
    if not (np.isfinite(rater_part) and rater_part > 0):
        return float(parts.case), float(max(parts.n_cases - 1, 1))
    total = parts.case + rater_part
    df = total**2 / (
        parts.case**2 / max(parts.n_cases - 1, 1)
        + parts.mean_square**2 / max(parts.effective_raters - 1.0, 1.0)
        + parts.noise**2 / max(parts.n_cases - 1, 1)
    )
    return float(total), float(df)


@dataclass(frozen=True)
class TwoWayParts:
    """The pieces of a two-way variance (`_two_way_parts`): the case part on
    `n_cases` - 1 df; the rater part is `mean_square` - `noise`."""

    case: float
    n_cases: int
    mean_square: float
    noise: float
    effective_raters: float


def _two_way_parts(
    ratings: Ratings,
    raters: np.ndarray,
    several: np.ndarray,
    weights: np.ndarray,
    chance: np.ndarray,
    pa: float,
    pe: float,
    value: float,
) -> TwoWayParts | None:
    """The case and rater parts of the variance (`TwoWayParts`), or None below four raters.

    The unit's linearised contribution psi_u (`chance_corrected`) is the sum of
    - one term per pair of its raters j, k: (n / n2) 2 (w(c_j, c_k) - pa) / (m (m - 1) (1 - pe)),
    - one term per rating: -2 (1 - value) (chance(c) - pe) / (m (1 - pe)),
    - one term of the unit alone: value (n / n2 [m >= 2] - 1).
    Two terms are correlated when they share the case or a rater. The case part is
    C / (C - 1) sum_c S_c^2 (S: the terms' total per case; with one unit per case, irrCAC's
    variance). The rater part sums the products of terms of different cases that share a
    rater, sum_j T_j^2 - sum_(j,k) W_jk^2 - sum_(c,j) X_cj^2 + sum_(c,j,k) Y_cjk^2 (totals
    per rater, rater pair, case and rater, case and rater pair), less its expectation when
    the raters of every unit are relabelled at random (centred at the estimate, it is not
    zero without any rater effect), times R / (R - 1).
    """
    n, n2 = len(raters), int(several.sum())
    m = raters[ratings.unit]
    case_of_unit = ratings.cluster if ratings.cluster is not None else np.arange(n)
    # Each rating's own term.
    own = -2.0 * (1.0 - value) * (chance[ratings.category] - pe) / (m * (1.0 - pe))
    # Every pair of ratings of a unit (j < k): agreement terms.
    order = np.lexsort((ratings.rater, ratings.unit))
    unit, rater, category = ratings.unit[order], ratings.rater[order], ratings.category[order]
    own = own[order]
    starts = np.searchsorted(unit, np.arange(n))
    first, second = [], []
    for size in np.unique(raters[several]).astype(int):
        chosen = starts[(raters == size)]
        local_i, local_j = np.triu_indices(size, 1)
        first.append((chosen[:, None] + local_i[None, :]).ravel())
        second.append((chosen[:, None] + local_j[None, :]).ravel())
    i = np.concatenate(first) if first else np.zeros(0, dtype=int)
    j = np.concatenate(second) if second else np.zeros(0, dtype=int)
    m_pair = raters[unit[i]]
    pair = (
        (n / n2)
        * 2.0
        * (weights[category[i], category[j]] - pa)
        / (m_pair * (m_pair - 1.0) * (1.0 - pe))
    )
    alone = value * ((n / n2) * several - 1.0)
    case, pair_case = case_of_unit[unit], case_of_unit[unit[i]]
    n_cases = int(case_of_unit.max()) + 1
    groups = int(np.count_nonzero(np.bincount(rater)))
    if groups < 4:
        return None
    r = int(rater.max()) + 1

    def squares(codes: np.ndarray, values: np.ndarray) -> float:
        totals = np.bincount(np.unique(codes, return_inverse=True)[1], values)
        return float(totals @ totals)

    by_case = squares(
        np.concatenate([case, pair_case, case_of_unit]), np.concatenate([own, pair, alone])
    )
    case_part = n_cases / max(n_cases - 1.0, 1.0) * by_case / n**2
    first_rater, second_rater = rater[i], rater[j]
    dyad = first_rater * r + second_rater
    with_a_rater = squares(
        np.concatenate([rater, first_rater, second_rater]), np.concatenate([own, pair, pair])
    ) - squares(dyad, pair)
    within_cases = squares(
        np.concatenate([case, pair_case, pair_case]) * r
        + np.concatenate([rater, first_rater, second_rater]),
        np.concatenate([own, pair, pair]),
    ) - squares(pair_case * r * r + dyad, pair)
    # Terms of two cases share a rater after random relabelling with probability 1/R (two
    # ratings), 2/R (a rating and a pair) or (4R - 6) / (R (R - 1)) (two pairs).
    chance_of = {(1, 1): 1.0 / r, (1, 2): 2.0 / r, (2, 2): (4.0 * r - 6.0) / (r * (r - 1.0))}
    totals = {
        1: np.bincount(case, own, minlength=n_cases),
        2: np.bincount(pair_case, pair, minlength=n_cases),
    }
    expected = sum(
        (2.0 if a != b else 1.0)
        * probability
        * (totals[a].sum() * totals[b].sum() - float(totals[a] @ totals[b]))
        for (a, b), probability in chance_of.items()
    )
    factor = groups / (groups - 1.0) / n**2
    return TwoWayParts(
        case=float(case_part),
        n_cases=n_cases,
        mean_square=float(factor * with_a_rater),
        noise=float(factor * (within_cases + expected)),
        effective_raters=effective_clusters(np.bincount(rater)),
    )


def fleiss_counts(judgments: pd.DataFrame, ratings: str = "preference") -> np.ndarray:
    """Units x categories counts over every unit rated at least once."""
    table, domain = ratings_matrix(judgments, ratings)
    return category_counts(table, domain)


def fleiss_kappa(
    judgments: pd.DataFrame,
    *,
    ratings: str = "preference",
    level: float = 0.95,
    variance: str = "units+raters",
) -> dict[str, float | str]:
    """Fleiss' kappa in Gwet's form for any number of raters per unit (`chance_corrected`;
    `variance` "units" for irrCAC's interval with raters fixed); `raters_per_unit` is the
    mean, with `min_raters` / `max_raters`."""
    table, domain = ratings_matrix(judgments, ratings)
    counts = category_counts(table, domain)
    result = chance_corrected(
        counts,
        agreement_weights(domain),
        "fleiss",
        level=level,
        ratings=rating_codes(table, domain, unit_cases(judgments, table)),
        variance=variance,
    )
    raters = counts.sum(axis=1)
    return {
        "ratings": ratings,
        "n_units": len(counts),
        "raters_per_unit": float(raters.mean()) if len(raters) else float("nan"),
        "min_raters": float(raters.min()) if len(raters) else float("nan"),
        "max_raters": float(raters.max()) if len(raters) else float("nan"),
        "kappa": result["value"],
        "se": result["se"],
        "df": result["df"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
    }


def gwet_ac(
    judgments: pd.DataFrame,
    *,
    ratings: str = "preference",
    weights: str = "identity",
    level: float = 0.95,
    variance: str = "units+raters",
) -> dict[str, float | str]:
    """Gwet's AC1 (identity weights, nominal) or AC2 (quadratic or linear weights, ordinal)
    for any number of raters per unit, with a linearised interval (`chance_corrected`;
    `variance` "units" for irrCAC's, raters fixed).
    Less affected than kappa by skewed category shares (high agreement on one answer)."""
    table, domain = ratings_matrix(judgments, ratings)
    counts = category_counts(table, domain)
    result = chance_corrected(
        counts,
        agreement_weights(domain, weights),
        "gwet",
        level=level,
        ratings=rating_codes(table, domain, unit_cases(judgments, table)),
        variance=variance,
    )
    return {
        "ratings": ratings,
        "weights": weights,
        "n_units": len(counts),
        "ac": result["value"],
        "se": result["se"],
        "df": result["df"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
    }


def _coincidences(table: pd.DataFrame, domain: list[float]) -> np.ndarray:
    """Units x (V*V) coincidence contributions of the units with two or more ratings."""
    values = table.to_numpy(dtype=float)
    counts = np.stack([(values == v).sum(axis=0) for v in domain], axis=1).astype(float)
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    v = len(domain)
    outer = counts[:, :, None] * counts[:, None, :]
    outer[:, np.arange(v), np.arange(v)] -= counts
    return (outer / (m - 1)[:, None, None]).reshape(len(counts), v * v)


def _alpha_from_coincidences(o: np.ndarray, domain: list[float], level: Level) -> np.ndarray:
    v = len(domain)
    o = o.reshape(-1, v, v)
    marginal = o.sum(axis=2)
    n = marginal.sum(axis=1)
    values = np.asarray(domain, dtype=float)
    if level == "nominal":
        delta = np.broadcast_to(1.0 - np.eye(v), o.shape)
    elif level == "interval":
        delta = np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    elif level == "ratio":
        total = values[:, None] + values[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(total == 0, 0.0, (values[:, None] - values[None, :]) / total)
        delta = np.broadcast_to(ratio**2, o.shape)
    elif level == "ordinal":
        cumulative = np.cumsum(marginal, axis=1)
        low = np.minimum(np.arange(v)[:, None], np.arange(v)[None, :])
        high = np.maximum(np.arange(v)[:, None], np.arange(v)[None, :])
        # sum_{g=low}^{high} n_g - (n_low + n_high) / 2, per batch
        between = cumulative[:, high] - cumulative[:, low] + marginal[:, low]
        delta = (between - (marginal[:, low] + marginal[:, high]) / 2.0) ** 2
    else:
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, not {level!r}")
    observed = (o * delta).sum(axis=(1, 2))
    expected = (marginal[:, :, None] * marginal[:, None, :] * delta).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (n - 1.0) * observed / expected


def krippendorff_alpha(
    judgments: pd.DataFrame,
    *,
    ratings: str = "preference",
    level: Level = "ordinal",
    n_resamples: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
) -> dict[str, float | str]:
    """Krippendorff's alpha (missing ratings allowed) with a unit-bootstrap interval."""
    table, domain = ratings_matrix(judgments, ratings)
    contributions = _coincidences(table, domain)
    result: dict[str, float | str] = {
        "ratings": ratings,
        "level": level,
        "n_units": len(contributions),
        "alpha": float("nan"),
        "ci_low": float("nan"),
        "ci_high": float("nan"),
    }
    if len(contributions) < 2:
        return result
    result["alpha"] = float(
        _alpha_from_coincidences(contributions.sum(axis=0)[None, :], domain, level)[0]
    )
    if n_resamples > 0:
        weights = _unit_weights(len(contributions), n_resamples, seed)
        boot = _alpha_from_coincidences(weights @ contributions, domain, level)
        result["ci_low"], result["ci_high"] = _interval(boot, ci_level)
    return result


def _icc_from_sums(
    n: np.ndarray, total: np.ndarray, squares: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    units = weights.sum(axis=1)
    big_n = weights @ n
    ss_between = weights @ (total**2 / n) - (weights @ total) ** 2 / big_n
    ss_within = weights @ (squares - total**2 / n)
    ms_between = ss_between / (units - 1)
    ms_within = ss_within / (big_n - units)
    n0 = (big_n - (weights @ n**2) / big_n) / (units - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ms_between - ms_within) / (ms_between + (n0 - 1) * ms_within)


def icc_oneway(
    judgments: pd.DataFrame,
    criterion: str,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | str]:
    """ICC(1,1): one-way random effects, single rating, for unbalanced overlap designs.

    Units are reports (item and side) rated by two or more raters.
    """
    table, _ = ratings_matrix(judgments, criterion)
    values = table.to_numpy(dtype=float)
    n = np.sum(~np.isnan(values), axis=0).astype(float)
    keep = n >= 2
    values, n = values[:, keep], n[keep]
    result: dict[str, float | str] = {
        "criterion": criterion,
        "n_units": int(keep.sum()),
        "icc": float("nan"),
        "ci_low": float("nan"),
        "ci_high": float("nan"),
    }
    if len(n) < 3:
        return result
    total = np.nansum(values, axis=0)
    squares = np.nansum(values**2, axis=0)
    result["icc"] = float(_icc_from_sums(n, total, squares, np.ones((1, len(n))))[0])
    if n_resamples > 0:
        boot = _icc_from_sums(n, total, squares, _unit_weights(len(n), n_resamples, seed))
        result["ci_low"], result["ci_high"] = _interval(boot, level)
    return result


def intra_rater(judgments: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Agreement of each rater with themselves on duplicate items (and all raters pooled)."""
    originals = judgments[~judgments["is_duplicate"] & ~judgments["is_gold"]]
    repeats = judgments[judgments["is_duplicate"]]
    merged = repeats.merge(
        originals.drop_duplicates(["rater", "item"]),
        on=["rater", "item"],
        suffixes=("_repeat", "_first"),
    )
    columns = ["rater", "n_pairs", "same_answer", "share_same", "ci_low", "ci_high", "kappa"]
    if merged.empty:
        return pd.DataFrame(columns=columns)
    merged["same"] = merged["winner_repeat"] == merged["winner_first"]
    records = []
    groups = [(r, g) for r, g in merged.groupby("rater", sort=True)] + [("all", merged)]
    for rater, group in groups:
        same = int(group["same"].sum())
        low, high = wilson_interval(same, len(group), level)
        first = group["winner_first"].map(PREFERENCE_CODE).to_numpy(dtype=float)
        repeat = group["winner_repeat"].map(PREFERENCE_CODE).to_numpy(dtype=float)
        kappa = weighted_kappa(first, repeat, [0.0, 1.0, 2.0]) if len(group) >= 2 else np.nan
        records.append(
            {
                "rater": rater,
                "n_pairs": len(group),
                "same_answer": same,
                "share_same": same / len(group),
                "ci_low": float(low),
                "ci_high": float(high),
                "kappa": float(kappa),
            }
        )
    return pd.DataFrame.from_records(records, columns=columns)


def gold_accuracy(judgments: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Share of gold items each rater answered as the gold answer, with Wilson intervals."""
    gold = judgments[judgments["is_gold"] & judgments["gold_answer"].notna()]
    columns = ["rater", "n_gold", "correct", "accuracy", "ci_low", "ci_high"]
    if gold.empty:
        return pd.DataFrame(columns=columns)
    records = []
    for rater, group in gold.groupby("rater", sort=True):
        correct = int((group["winner"] == group["gold_answer"]).sum())
        low, high = wilson_interval(correct, len(group), level)
        records.append(
            {
                "rater": rater,
                "n_gold": len(group),
                "correct": correct,
                "accuracy": correct / len(group),
                "ci_low": float(low),
                "ci_high": float(high),
            }
        )
    return pd.DataFrame.from_records(records, columns=columns)


def position_bias(
    judgments: pd.DataFrame, *, level: float = 0.95, correction: str = "holm"
) -> pd.DataFrame:
    """Is the report on the left preferred more (or less) than half the time?

    Decided judgments only (a or b); an exact two-sided binomial test against 0.5, for all
    raters together ("all") and per rater (p adjusted over raters with `correction`).
    """
    frame = judgments[~judgments["is_gold"] & judgments["winner"].isin(["a", "b"])]
    frame = frame[frame["left"].isin(["a", "b"])]
    columns = ["rater", "n_decided", "left_preferred", "share_left", "ci_low", "ci_high", "p"]
    if frame.empty:
        return pd.DataFrame(columns=[*columns, "p_adj"])
    left_won = frame["winner"] == frame["left"]
    records = []
    groups = [("all", left_won)] + [(r, g) for r, g in left_won.groupby(frame["rater"], sort=True)]
    for rater, group in groups:
        k, n = int(group.sum()), len(group)
        low, high = wilson_interval(k, n, level)
        records.append(
            {
                "rater": rater,
                "n_decided": n,
                "left_preferred": k,
                "share_left": k / n,
                "ci_low": float(low),
                "ci_high": float(high),
                "p": float(stats.binomtest(k, n, 0.5).pvalue),
            }
        )
    table = pd.DataFrame.from_records(records, columns=columns)
    table["p_adj"] = table["p"]
    per_rater = table["rater"] != "all"
    table.loc[per_rater, "p_adj"] = adjust_pvalues(table.loc[per_rater, "p"], correction)
    return table


def rushed_flags(
    judgments: pd.DataFrame,
    *,
    min_seconds: float = 10.0,
    relative: float = 0.25,
    max_share: float = 0.2,
) -> tuple[pd.Series, pd.DataFrame]:
    """Judgments answered faster than max(min_seconds, relative x median time) are rushed.

    Returns (a boolean flag per judgment, a per-rater summary whose `flagged` marks raters
    with more than `max_share` rushed answers). Judgments without a time are never rushed.
    """
    seconds = judgments["time_on_task_s"].astype(float)
    median = float(seconds.median()) if seconds.notna().any() else float("nan")
    threshold = max(min_seconds, relative * median) if np.isfinite(median) else min_seconds
    rushed = (seconds < threshold).fillna(False).astype(bool)
    summary = (
        pd.DataFrame({"rater": judgments["rater"], "seconds": seconds, "rushed": rushed})
        .groupby("rater", sort=True)
        .agg(
            n=("rushed", "size"),
            median_seconds=("seconds", "median"),
            n_rushed=("rushed", "sum"),
        )
        .reset_index()
    )
    summary["share_rushed"] = summary["n_rushed"] / summary["n"]
    summary["threshold_s"] = threshold
    summary["flagged"] = summary["share_rushed"] > max_share
    return rushed, summary
