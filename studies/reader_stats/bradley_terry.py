"""Bradley-Terry with ties, fitted by maximum likelihood, with cluster-robust intervals.

Two tie models: "half" counts a tie as half a win for each side (the Chatbot Arena
convention); "davidson" gives ties their own probability nu*sqrt(pi_i*pi_j) / (...).
An optional style covariate (normalised report-length difference) enters the log-odds
like Chatbot Arena's style control, so strengths are reported net of length.

Intervals respect the reader-study design, where several raters read each case and
raters differ in taste: by default they cluster on case and rater both.
- "sandwich" (default): the Cameron-Gelbach-Miller two-way cluster-robust variance
  V = V_case + V_rater - V_case&rater, each with the CRV1 small-sample factor, and t
  quantiles with (fewest effective clusters) - 1 degrees of freedom (`inference_df`).
- "bootstrap": a percentile cluster bootstrap; for case+rater the two-way (pigeonhole)
  bootstrap that weights every row by case draws x rater draws.
Cluster "case", "rater" and "none" (judgments independent) stay as alternatives.

The likelihood depends on the data only through outcome counts per row, and without
style control only through the counts per pair of systems: every fit, the point estimate
and every bootstrap resample, runs as one batch of damped Newton steps over a
(resamples x parameters) array on those pair totals. Resamples are warm-started from
the point estimate.

Guards: strengths are compared only within a connected component of the comparison
graph (each centred to mean 0 there, ranked only there); a component whose win graph is
not strongly connected (a system that never won or never lost there, one judgment) has
no finite maximum-likelihood strengths, so its intervals are NaN and it gets no strict
ranks. Every guard adds a sentence to `BTResult.warnings`. A small ridge on the centred
strengths keeps such fits finite and treats every system alike, so renaming a system
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

from studies.reader_stats.pairwise import effective_clusters, regular

TieModel = Literal["half", "davidson"]
Cluster = Literal["case+rater", "case", "rater", "none"]
Interval = Literal["sandwich", "bootstrap"]
CLUSTERS: tuple[str, ...] = ("case+rater", "case", "rater", "none")
INTERVALS: tuple[str, ...] = ("sandwich", "bootstrap")
TIE_MODELS: tuple[str, ...] = ("half", "davidson")
# The defaults the app, the CLI and the tables show (bench/coverage_bt.py measures them).
DEFAULT_CLUSTER: Cluster = "case+rater"
DEFAULT_INTERVAL: Interval = "sandwich"
# A bootstrap whose resamples fail to converge more often than this gives no interval.
MAX_NONCONVERGED_SHARE = 0.01
_CHUNK_ELEMENTS = 400_000
_RIDGE = 1e-4


@dataclass
class BTRows:
    """Outcome counts per row: a row is one (case, rater, pair) or one judgment with style."""

    systems: list[str]
    index_a: np.ndarray
    index_b: np.ndarray
    wins_a: np.ndarray
    wins_b: np.ndarray
    ties: np.ndarray
    case_index: np.ndarray
    rater_index: np.ndarray
    n_cases: int
    n_raters: int
    style: np.ndarray  # rows x style features (0 columns without style control)
    style_names: list[str] = field(default_factory=list)
    # The likelihood's layout (`_layout`), built once per rows.
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_judgments(self) -> int:
        return int((self.wins_a + self.wins_b + self.ties).sum())


@dataclass
class BTResult:
    systems: list[str]
    estimate: np.ndarray  # log-strength, centred to mean 0 within its component
    ci_low: np.ndarray
    ci_high: np.ndarray
    rank: np.ndarray  # float: NaN where no rank can be given
    tie_model: str
    tie_nu: float | None
    style: dict[str, tuple[float, float, float]]  # name -> (coef, ci_low, ci_high)
    n_resamples: int
    seed: int
    cluster: str
    level: float
    both_bad: str
    n_judgments: int
    boot: np.ndarray  # resamples x systems, centred within components (bootstrap only)
    converged: bool
    interval: str = DEFAULT_INTERVAL
    se: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Connected component of the comparison graph per system (1 = the largest).
    component: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "system": self.systems,
                "bt": self.estimate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "rank": pd.array(
                    [None if np.isnan(r) else int(r) for r in self.rank], dtype="Int64"
                ),
                "component": (
                    self.component if len(self.component) else np.ones(len(self.systems), int)
                ),
            }
        )
        return frame.sort_values(
            ["component", "rank", "bt", "system"], ascending=[True, True, False, True]
        ).reset_index(drop=True)

    def win_probability(self) -> pd.DataFrame:
        """Model-expected score of row over column (win + half a tie); NaN across components."""
        d = self.estimate[:, None] - self.estimate[None, :]
        nu = self.tie_nu or 0.0
        half = np.exp(d / 2.0)
        score = (half + nu / 2.0) / (half + 1.0 / half + nu)
        if len(self.component):
            score[self.component[:, None] != self.component[None, :]] = np.nan
        np.fill_diagonal(score, np.nan)
        return pd.DataFrame(score, index=self.systems, columns=self.systems)


def ci_aware_ranks(
    ci_low: np.ndarray, ci_high: np.ndarray, component: np.ndarray | None = None
) -> np.ndarray:
    """Rank = 1 + number of systems (of the same component) whose lower bound is above this
    one's upper bound; NaN where the interval is NaN."""
    ci_low = np.asarray(ci_low, dtype=float)
    ci_high = np.asarray(ci_high, dtype=float)
    above = ci_low[None, :] > ci_high[:, None]
    if component is not None:
        component = np.asarray(component)
        above &= component[None, :] == component[:, None]
    rank = (1 + above.sum(axis=1)).astype(float)
    rank[np.isnan(ci_low) | np.isnan(ci_high)] = np.nan
    return rank


def build_rows(
    judgments: pd.DataFrame,
    *,
    both_bad: Literal["tie", "drop"] = "tie",
    style: bool = False,
    systems: list[str] | None = None,
) -> BTRows:
    """Aggregate judgments into outcome counts per (case, rater, pair) (per judgment if style)."""
    frame = regular(judgments)
    if both_bad == "drop":
        frame = frame[frame["winner"] != "both_bad"]
    elif both_bad != "tie":
        raise ValueError(f"both_bad must be 'tie' or 'drop', not {both_bad!r}")
    if frame.empty:
        raise ValueError("no judgments to fit (gold items and repeat readings are left out)")
    # Hash-based codes (pd.factorize): sorting 100,000 names would dominate the fit.
    both = pd.concat([frame["system_a"], frame["system_b"]], ignore_index=True).astype(str)
    codes, names = pd.factorize(both)
    systems = systems or sorted(names)
    lookup = {name: i for i, name in enumerate(systems)}
    recode = np.array([lookup[name] for name in names], dtype=int)
    index_a, index_b = recode[codes[: len(frame)]], recode[codes[len(frame) :]]
    case_codes, cases = pd.factorize(frame["case"].astype(str))
    rater_codes, raters = pd.factorize(frame["rater"].astype(str))
    winner = frame["winner"].to_numpy()
    wins_a = (winner == "a").astype(float)
    wins_b = (winner == "b").astype(float)
    ties = ((winner == "tie") | (winner == "both_bad")).astype(float)
    style_names: list[str] = []
    style_values = np.zeros((len(frame), 0))
    if style:
        length_a = frame["len_a"].to_numpy(dtype=float)
        length_b = frame["len_b"].to_numpy(dtype=float)
        if np.isnan(length_a).any() or np.isnan(length_b).any():
            raise ValueError(
                "style control needs report lengths: columns 'len_a' and 'len_b' "
                "must be filled for every judgment"
            )
        total = np.where(length_a + length_b > 0, length_a + length_b, 1.0)
        feature = (length_a - length_b) / total
        spread = feature.std()
        style_values = (feature / spread if spread > 0 else feature)[:, None]
        style_names = ["length"]
    else:
        # One row per (case, rater, pair): the counts are all the likelihood needs.
        k = len(systems)
        key = ((index_a * k + index_b) * len(cases) + case_codes) * len(raters) + rater_codes
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        index_a, index_b = index_a[first], index_b[first]
        case_codes, rater_codes = case_codes[first], rater_codes[first]
        wins_a, wins_b, ties = (
            np.bincount(inverse, c, minlength=len(unique)) for c in (wins_a, wins_b, ties)
        )
        style_values = np.zeros((len(unique), 0))
    return BTRows(
        systems=list(systems),
        index_a=index_a,
        index_b=index_b,
        wins_a=wins_a,
        wins_b=wins_b,
        ties=ties,
        case_index=case_codes.astype(int),
        rater_index=rater_codes.astype(int),
        n_cases=len(cases),
        n_raters=len(raters),
        style=style_values,
        style_names=style_names,
    )


def _design_of(k: int, index_a: np.ndarray, index_b: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Rows x (K-1 + S): +1 for system a, -1 for system b (system 0 is the reference)."""
    design = np.zeros((len(index_a), k - 1 + style.shape[1]))
    r = np.arange(len(index_a))
    mask_a, mask_b = index_a > 0, index_b > 0
    design[r[mask_a], index_a[mask_a] - 1] += 1.0
    design[r[mask_b], index_b[mask_b] - 1] -= 1.0
    design[:, k - 1 :] = style
    return design


def _design(rows: BTRows) -> np.ndarray:
    return _design_of(len(rows.systems), rows.index_a, rows.index_b, rows.style)


@dataclass
class _Layout:
    """Where the likelihood's counts live: per pair of systems (no style) or per row."""

    design: np.ndarray  # units x main parameters
    to_units: sparse.csr_matrix | None  # rows x units indicator (None: units are rows)


def _layout(rows: BTRows) -> _Layout:
    if "layout" not in rows.cache:
        rows.cache["layout"] = _build_layout(rows)
    return rows.cache["layout"]


def _build_layout(rows: BTRows) -> _Layout:
    if rows.style.shape[1]:
        return _Layout(_design(rows), None)
    k = len(rows.systems)
    key = rows.index_a * k + rows.index_b
    unique, inverse = np.unique(key, return_inverse=True)
    n = len(key)
    indicator = sparse.csr_matrix((np.ones(n), (np.arange(n), inverse)), shape=(n, len(unique)))
    design = _design_of(k, unique // k, unique % k, np.zeros((len(unique), 0)))
    return _Layout(design, indicator)


def _to_units(layout: _Layout, values: np.ndarray) -> np.ndarray:
    """Batch x rows counts summed into batch x units."""
    if layout.to_units is None:
        return values
    return np.asarray((layout.to_units.T @ values.T).T)


def _penalty(rows: BTRows, n_params: int, ridge: float) -> np.ndarray:
    """Ridge on the centred log-strengths: the same for every system, whatever its name."""
    k = len(rows.systems)
    penalty = np.zeros((n_params, n_params))
    penalty[: k - 1, : k - 1] = ridge * (np.eye(k - 1) - 1.0 / k)
    return penalty


def _derivatives(
    design: np.ndarray,
    wa: np.ndarray,
    wb: np.ndarray,
    t: np.ndarray,
    beta: np.ndarray,
    tie_model: str,
) -> tuple[np.ndarray, ...]:
    """Per-unit first and second derivatives of the log-likelihood (batch x units each)."""
    n_main = design.shape[1]
    n = wa + wb + t
    d = np.asarray((design @ beta[:, :n_main].T).T)
    if tie_model == "davidson":
        sinh, cosh, e_eta = np.sinh(d / 2.0), np.cosh(d / 2.0), np.exp(beta[:, -1:])
        denominator = 2.0 * cosh + e_eta
        g_d = (wa - wb) / 2.0 - n * sinh / denominator
        h_dd = -n * (cosh / 2.0 * denominator - sinh**2) / denominator**2
        g_eta = t - n * e_eta / denominator
        h_ee = -n * e_eta * 2.0 * cosh / denominator**2
        h_de = n * sinh * e_eta / denominator**2
        return g_d, h_dd, g_eta, h_ee, h_de
    p = 1.0 / (1.0 + np.exp(-d))
    return wa + t / 2.0 - n * p, -n * p * (1.0 - p)


def _sparse_products(design: np.ndarray) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """The design and its per-unit outer products (units x params^2) as sparse matrices.

    A unit's design row has two non-zeros (+1, -1) plus its style values, so the Hessian
    is a sparse product: cheaper than dense BLAS for these shapes, and single-threaded
    (threaded BLAS on small products stalls on a busy machine).
    """
    n_units, n_main = design.shape
    rows_nz, cols_nz = np.nonzero(design)
    per_row = np.bincount(rows_nz, minlength=n_units)
    width = int(per_row.max()) if len(per_row) else 0
    slots = np.full((n_units, max(width, 1)), -1)
    position = np.arange(len(rows_nz)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    slots[rows_nz, position] = cols_nz
    left = np.repeat(slots, slots.shape[1], axis=1)
    right = np.tile(slots, (1, slots.shape[1]))
    keep = (left >= 0) & (right >= 0)
    unit = np.repeat(np.arange(n_units), left.shape[1]).reshape(left.shape)[keep]
    i, j = left[keep], right[keep]
    values = design[unit, i] * design[unit, j]
    outer = sparse.csr_matrix((values, (unit, i * n_main + j)), shape=(n_units, n_main * n_main))
    return sparse.csr_matrix(design), outer


def _gradient_hessian(
    design: sparse.csr_matrix,
    outer: sparse.csr_matrix,
    wa: np.ndarray,
    wb: np.ndarray,
    t: np.ndarray,
    beta: np.ndarray,
    tie_model: str,
) -> tuple[np.ndarray, np.ndarray]:
    batch, n_params = beta.shape
    n_main = design.shape[1]
    parts = _derivatives(design, wa, wb, t, beta, tie_model)
    g_d, h_dd = parts[0], parts[1]
    gradient = np.empty((batch, n_params))
    hessian = np.empty((batch, n_params, n_params))
    gradient[:, :n_main] = (design.T @ g_d.T).T
    hessian[:, :n_main, :n_main] = (outer.T @ h_dd.T).T.reshape(batch, n_main, n_main)
    if tie_model == "davidson":
        g_eta, h_ee, h_de = parts[2], parts[3], parts[4]
        gradient[:, -1] = g_eta.sum(axis=1)
        hessian[:, -1, -1] = h_ee.sum(axis=1)
        cross = (design.T @ h_de.T).T
        hessian[:, :n_main, -1] = cross
        hessian[:, -1, :n_main] = cross
    return gradient, hessian


def _n_params(rows: BTRows, tie_model: str) -> int:
    return len(rows.systems) - 1 + rows.style.shape[1] + (1 if tie_model == "davidson" else 0)


def _newton(
    rows: BTRows,
    layout: _Layout,
    wa: np.ndarray,
    wb: np.ndarray,
    t: np.ndarray,
    *,
    tie_model: str,
    start: np.ndarray | None,
    ridge: float,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton fits of a batch of unit counts; returns (batch x params, converged)."""
    design = layout.design
    n_units, n_main = design.shape
    n_params = _n_params(rows, tie_model)
    batch = wa.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // max(n_units, 1))
    if batch > chunk:
        starts = None if start is None else np.broadcast_to(start, (batch, n_params))
        parts = [
            _newton(
                rows,
                layout,
                wa[i : i + chunk],
                wb[i : i + chunk],
                t[i : i + chunk],
                tie_model=tie_model,
                start=None if starts is None else starts[i : i + chunk],
                ridge=ridge,
                max_iter=max_iter,
                tol=tol,
            )
            for i in range(0, batch, chunk)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    design, outer = _sparse_products(design)
    if start is None:
        beta = np.zeros((batch, n_params))
        if tie_model == "davidson":
            share = (t.sum(axis=1) + 0.5) / ((wa + wb + t).sum(axis=1) + 1.0)
            beta[:, -1] = np.log(2.0 * share / (1.0 - share + 1e-9))
    else:
        beta = np.array(np.broadcast_to(start, (batch, n_params)), dtype=float)
    penalty = _penalty(rows, n_params, ridge)
    # Keep the Hessian negative definite when a resample leaves a parameter unidentified.
    stabiliser = penalty + 1e-10 * np.eye(n_params)
    active = np.ones(batch, dtype=bool)
    for _ in range(max_iter):
        index = np.flatnonzero(active)
        if not len(index):
            break
        b = beta[index]
        gradient, hessian = _gradient_hessian(
            design, outer, wa[index], wb[index], t[index], b, tie_model
        )
        gradient -= b @ penalty
        hessian -= stabiliser
        step = np.linalg.solve(-hessian, gradient[:, :, None])[:, :, 0]
        largest = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, 2.0 / np.maximum(largest, 1e-300))[:, None]
        beta[index] = b + step
        active[index[largest < tol]] = False
    return beta, ~active


def fit_batch(
    rows: BTRows,
    weights: np.ndarray,
    *,
    tie_model: TieModel = "half",
    start: np.ndarray | None = None,
    ridge: float = _RIDGE,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> tuple[np.ndarray, bool]:
    """Maximum-likelihood fits for a batch of row weightings (batch x rows).

    Returns (batch x parameters, converged): parameters are the K-1 log-strengths against
    system 0, then the style coefficients, then log(nu) for Davidson. A tiny ridge on the
    centred strengths keeps resamples with a perfect record finite.
    """
    beta, converged = fit_batch_each(
        rows, weights, tie_model=tie_model, start=start, ridge=ridge, max_iter=max_iter, tol=tol
    )
    return beta, bool(converged.all())


def fit_batch_each(
    rows: BTRows,
    weights: np.ndarray,
    *,
    tie_model: TieModel = "half",
    start: np.ndarray | None = None,
    ridge: float = _RIDGE,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray]:
    """As `fit_batch`, with convergence per fit (a boolean per batch row)."""
    if tie_model not in TIE_MODELS:
        raise ValueError(f"tie_model must be one of {', '.join(TIE_MODELS)}, not {tie_model!r}")
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    layout = _layout(rows)
    counts = [_to_units(layout, weights * c) for c in (rows.wins_a, rows.wins_b, rows.ties)]
    return _newton(
        rows,
        layout,
        *counts,
        tie_model=tie_model,
        start=start,
        ridge=ridge,
        max_iter=max_iter,
        tol=tol,
    )


def _centred(beta: np.ndarray, k: int, component: np.ndarray | None = None) -> np.ndarray:
    theta = np.concatenate([np.zeros((beta.shape[0], 1)), beta[:, : k - 1]], axis=1)
    if component is None:
        return theta - theta.mean(axis=1, keepdims=True)
    return theta @ _centring(component).T


def _centring(component: np.ndarray) -> np.ndarray:
    """K x K matrix taking log-strengths to log-strengths centred within each component."""
    same = (component[:, None] == component[None, :]).astype(float)
    return np.eye(len(component)) - same / same.sum(axis=1, keepdims=True)


# --- bootstrap ------------------------------------------------------------------------


def bootstrap_counts(
    rows: BTRows, n_resamples: int, cluster: Cluster, rng: np.random.Generator
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """How often each case and each rater was drawn per resample (None: not resampled)."""
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}, not {cluster!r}")
    cases = raters = None
    if cluster in ("case", "case+rater"):
        cases = rng.multinomial(
            rows.n_cases, np.full(rows.n_cases, 1.0 / rows.n_cases), n_resamples
        )
    if cluster in ("rater", "case+rater"):
        raters = rng.multinomial(
            rows.n_raters, np.full(rows.n_raters, 1.0 / rows.n_raters), n_resamples
        )
    # Floats: the weights are gathered from these, and a gather of floats needs no copy.
    return (
        None if cases is None else cases.astype(float),
        None if raters is None else raters.astype(float),
    )


def _weights(
    rows: BTRows, n: int, cases: np.ndarray | None, raters: np.ndarray | None
) -> np.ndarray:
    if cases is None and raters is None:
        return np.ones((n, len(rows.index_a)))
    if cases is None:
        return raters[:, rows.rater_index]
    weights = cases[:, rows.case_index]
    if raters is not None:
        weights *= raters[:, rows.rater_index]
    return weights


def bootstrap_weights(
    rows: BTRows, n_resamples: int, cluster: Cluster, rng: np.random.Generator
) -> np.ndarray:
    """Resamples x rows weights: how often each row's case (and/or rater) was drawn.

    For case+rater, the two-way (pigeonhole) bootstrap: case draws x rater draws. Cluster
    "none" resamples judgments, which `bootstrap_fits` does through outcome counts.
    """
    if cluster == "none":
        raise ValueError("cluster 'none' resamples judgments, not rows: use bootstrap_fits")
    cases, raters = bootstrap_counts(rows, n_resamples, cluster, rng)
    return _weights(rows, n_resamples, cases, raters)


def bootstrap_fits(
    rows: BTRows,
    n_resamples: int,
    cluster: Cluster,
    rng: np.random.Generator,
    *,
    tie_model: TieModel = "half",
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fits of `n_resamples` cluster-bootstrap resamples: (resamples x params, converged).

    Weights are built a chunk of resamples at a time and summed straight into pair totals,
    so memory stays bounded for large studies.
    """
    layout = _layout(rows)
    n_rows = len(rows.index_a)
    chunk = max(1, 2_000_000 // max(n_rows, 1))
    if cluster == "none":
        cases = raters = None
        counts = np.concatenate([rows.wins_a, rows.wins_b, rows.ties])
        total = int(counts.sum())
    else:
        cases, raters = bootstrap_counts(rows, n_resamples, cluster, rng)
    outcome = [
        (sparse.diags(c) @ layout.to_units).tocsr() if layout.to_units is not None else None
        for c in (rows.wins_a, rows.wins_b, rows.ties)
    ]
    fits, flags = [], []
    for i in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - i)
        if cluster == "none":
            drawn = rng.multinomial(total, counts / total, m).astype(float)
            per_row = np.split(drawn, 3, axis=1)
            wa, wb, t = (_to_units(layout, part) for part in per_row)
        else:
            weights = _weights(
                rows,
                m,
                None if cases is None else cases[i : i + m],
                None if raters is None else raters[i : i + m],
            )
            if layout.to_units is None:
                wa, wb, t = (weights * c for c in (rows.wins_a, rows.wins_b, rows.ties))
            else:
                wa, wb, t = (np.asarray((o.T @ weights.T).T) for o in outcome)
        beta, ok = _newton(
            rows,
            layout,
            wa,
            wb,
            t,
            tie_model=tie_model,
            start=start,
            ridge=_RIDGE,
            max_iter=100,
            tol=1e-9,
        )
        fits.append(beta)
        flags.append(ok)
    if not fits:
        return np.zeros((0, _n_params(rows, tie_model))), np.zeros(0, dtype=bool)
    return np.concatenate(fits), np.concatenate(flags)


# --- cluster-robust (sandwich) variance --------------------------------------------------


def cluster_groups(rows: BTRows, cluster: Cluster) -> list[tuple[np.ndarray, int, float]]:
    """The one-way clusterings the variance adds up: (group per row, groups, sign).

    case+rater is Cameron-Gelbach-Miller's V_case + V_rater - V_case&rater; "none" makes
    every judgment its own cluster (group None: see `_meat`).
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}, not {cluster!r}")
    case = (rows.case_index, rows.n_cases, 1.0)
    rater = (rows.rater_index, rows.n_raters, 1.0)
    if cluster == "case":
        return [case]
    if cluster == "rater":
        return [rater]
    if cluster == "none":
        return [(np.empty(0, dtype=int), rows.n_judgments, 1.0)]
    both_codes, cells = pd.factorize(rows.case_index * rows.n_raters + rows.rater_index)
    return [case, rater, (both_codes, len(cells), -1.0)]


def _row_derivatives(
    rows: BTRows, beta: np.ndarray, tie_model: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row's score along its log-odds difference d, and along log(nu) (Davidson)."""
    k = len(rows.systems)
    theta = np.concatenate([[0.0], beta[: k - 1]])
    d = theta[rows.index_a] - theta[rows.index_b]
    if rows.style.shape[1]:
        d = d + rows.style @ beta[k - 1 : k - 1 + rows.style.shape[1]]
    n = rows.wins_a + rows.wins_b + rows.ties
    if tie_model == "davidson":
        sinh, cosh, e_eta = np.sinh(d / 2.0), np.cosh(d / 2.0), np.exp(beta[-1])
        denominator = 2.0 * cosh + e_eta
        g_d = (rows.wins_a - rows.wins_b) / 2.0 - n * sinh / denominator
        return g_d, rows.ties - n * e_eta / denominator
    p = 1.0 / (1.0 + np.exp(-d))
    return rows.wins_a + rows.ties / 2.0 - n * p, None


def _cluster_score_sums(
    rows: BTRows,
    g_d: np.ndarray,
    g_eta: np.ndarray | None,
    groups: np.ndarray,
    n_groups: int,
    n_params: int,
) -> np.ndarray:
    """Groups x params: the summed scores of each cluster's rows (without a dense design)."""
    k = len(rows.systems)
    size = n_groups * n_params
    sums = np.zeros(size)
    for index, sign in ((rows.index_a, 1.0), (rows.index_b, -1.0)):
        keep = index > 0
        sums += sign * np.bincount(
            groups[keep] * n_params + index[keep] - 1, g_d[keep], minlength=size
        )
    sums = sums.reshape(n_groups, n_params)
    for j in range(rows.style.shape[1]):
        sums[:, k - 1 + j] = np.bincount(groups, g_d * rows.style[:, j], minlength=n_groups)
    if g_eta is not None:
        sums[:, -1] = np.bincount(groups, g_eta, minlength=n_groups)
    return sums


def _judgment_meat(rows: BTRows, beta: np.ndarray, tie_model: str) -> np.ndarray:
    """Sum over judgments of score x score': every judgment its own cluster."""
    design = _design(rows)
    d = design @ beta[: design.shape[1]]
    meat = 0.0
    if tie_model == "davidson":
        sinh, cosh, e_eta = np.sinh(d / 2.0), np.cosh(d / 2.0), np.exp(beta[-1])
        denominator = 2.0 * cosh + e_eta
        base_d, base_e = -sinh / denominator, -e_eta / denominator
        outcomes = ((rows.wins_a, 0.5, 0.0), (rows.wins_b, -0.5, 0.0), (rows.ties, 0.0, 1.0))
        for count, add_d, add_e in outcomes:
            scores = np.column_stack([design * (base_d + add_d)[:, None], base_e + add_e])
            meat = meat + (scores * count[:, None]).T @ scores
        return np.asarray(meat)
    p = 1.0 / (1.0 + np.exp(-d))
    for count, y in ((rows.wins_a, 1.0), (rows.wins_b, 0.0), (rows.ties, 0.5)):
        scores = design * (y - p)[:, None]
        meat = meat + (scores * count[:, None]).T @ scores
    return np.asarray(meat)


def _information(rows: BTRows, beta: np.ndarray, tie_model: str, ridge: float) -> np.ndarray:
    """Minus the Hessian of the (penalised) log-likelihood at beta."""
    layout = _layout(rows)
    counts = [_to_units(layout, c[None]) for c in (rows.wins_a, rows.wins_b, rows.ties)]
    design, outer = _sparse_products(layout.design)
    _, hessian = _gradient_hessian(design, outer, *counts, beta[None], tie_model)
    return -hessian[0] + _penalty(rows, len(beta), ridge)


def cluster_covariance(
    rows: BTRows,
    beta: np.ndarray,
    *,
    tie_model: TieModel = "half",
    cluster: Cluster = DEFAULT_CLUSTER,
    use_correction: bool = True,
    ridge: float = 0.0,
) -> np.ndarray:
    """Cluster-robust (sandwich) covariance of the parameters at beta (params x params).

    V = H^-1 M H^-1 with M the sum over clusters of the clusters' summed scores' outer
    products; two-way (case+rater) is V_case + V_rater - V_case&rater (Cameron, Gelbach and
    Miller 2011). With `use_correction` every one-way part is multiplied by
    G/(G-1) * (N-1)/(N-K) (N judgments, K parameters, G clusters of that part): the CRV1
    factor statsmodels applies for `cov_type="cluster"` with its default
    `use_correction=True` (`df_correction` changes only the inference degrees of freedom,
    which `bradley_terry` sets from the fewest clusters, see `inference_df`).
    `ridge` adds the fit's ridge to the information (0: the plain likelihood).
    """
    bread = np.linalg.inv(_information(rows, beta, tie_model, ridge))
    n_obs, n_params = rows.n_judgments, len(beta)
    total = np.zeros((n_params, n_params))
    g_d, g_eta = _row_derivatives(rows, beta, tie_model)
    for groups, n_groups, sign in cluster_groups(rows, cluster):
        if cluster == "none":
            meat = _judgment_meat(rows, beta, tie_model)
        else:
            summed = _cluster_score_sums(rows, g_d, g_eta, groups, n_groups, n_params)
            meat = summed.T @ summed
        part = bread @ meat @ bread
        if use_correction:
            if n_groups < 2 or n_obs <= n_params:
                return np.full((n_params, n_params), np.nan)
            part *= n_groups / (n_groups - 1.0) * (n_obs - 1.0) / (n_obs - n_params)
        total += sign * part
    return total


def usable_cluster(rows: BTRows, cluster: str) -> tuple[str, str | None]:
    """The clustering the data allow: a dimension with a single cluster (one rater, one
    case) cannot be resampled or clustered on, so it is dropped, with a note saying so."""
    dimensions = {"case+rater": ["case", "rater"], "case": ["case"], "rater": ["rater"]}.get(
        cluster, []
    )
    sizes = {"case": rows.n_cases, "rater": rows.n_raters}
    kept = [d for d in dimensions if sizes[d] > 1]
    if kept == dimensions:
        return cluster, None
    usable = "+".join(kept) if kept else "none"
    dropped = " and ".join(f"one {d}" for d in dimensions if d not in kept)
    return usable, f"{dropped} only: intervals cluster on {usable} instead of {cluster}"


def inference_df(rows: BTRows, cluster: str) -> float:
    """Degrees of freedom of the t quantile: the fewest effective clusters of a clustered
    dimension, minus 1 (inf for judgments as independent)."""
    if cluster == "none":
        return float("inf")
    n = rows.wins_a + rows.wins_b + rows.ties
    sizes = {
        "case": np.bincount(rows.case_index, n, minlength=rows.n_cases),
        "rater": np.bincount(rows.rater_index, n, minlength=rows.n_raters),
    }
    dimensions = {"case": ["case"], "rater": ["rater"]}.get(cluster, ["case", "rater"])
    return max(min(effective_clusters(sizes[d]) for d in dimensions) - 1.0, 1.0)


def _psd(matrix: np.ndarray) -> np.ndarray:
    """Nearest positive semi-definite matrix (negative eigenvalues set to 0): the two-way
    sum can lose definiteness in small samples (Cameron, Gelbach and Miller's fix)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    if values.min() >= 0:
        return matrix
    return (vectors * np.clip(values, 0.0, None)) @ vectors.T


# --- guards -------------------------------------------------------------------------------


def components_of(rows: BTRows) -> np.ndarray:
    """Connected component of the comparison graph per system, 1 = the largest (ties broken
    by the components' sorted names, so the numbering does not depend on which system is
    first)."""
    k = len(rows.systems)
    graph = sparse.coo_matrix((np.ones(len(rows.index_a)), (rows.index_a, rows.index_b)), (k, k))
    _, labels = connected_components(graph, directed=False)
    groups = {}
    for system, label in zip(rows.systems, labels, strict=True):
        groups.setdefault(label, []).append(system)
    order = sorted(groups, key=lambda g: (-len(groups[g]), sorted(groups[g])))
    number = {label: i + 1 for i, label in enumerate(order)}
    return np.array([number[label] for label in labels], dtype=int)


def separated_systems(rows: BTRows, component: np.ndarray) -> dict[int, list[str]]:
    """Components whose maximum-likelihood strengths do not exist, with the systems that
    never lost (or never won) there.

    The MLE exists when the win graph (i -> j when i won or tied against j at least once)
    is strongly connected within the component (Ford 1957; a tie counts both ways).
    """
    k = len(rows.systems)
    credit_a = rows.wins_a + rows.ties
    credit_b = rows.wins_b + rows.ties
    beats = sparse.coo_matrix(
        (
            np.concatenate([credit_a, credit_b]),
            (
                np.concatenate([rows.index_a, rows.index_b]),
                np.concatenate([rows.index_b, rows.index_a]),
            ),
        ),
        (k, k),
    ).tocsr()
    beats.data = (beats.data > 0).astype(float)
    beats.eliminate_zeros()
    _, strong = connected_components(beats, directed=True, connection="strong")
    wins = np.asarray(beats.sum(axis=1)).ravel()
    losses = np.asarray(beats.sum(axis=0)).ravel()
    found: dict[int, list[str]] = {}
    for c in np.unique(component):
        members = np.flatnonzero(component == c)
        if len(np.unique(strong[members])) > 1:
            flagged = [rows.systems[i] for i in members if wins[i] == 0 or losses[i] == 0] or [
                rows.systems[i] for i in members
            ]
            found[int(c)] = flagged
    return found


def _names(systems: list[str], limit: int = 8) -> str:
    shown = ", ".join(systems[:limit])
    return shown + (f" and {len(systems) - limit} more" if len(systems) > limit else "")


# --- the fit --------------------------------------------------------------------------------


def bradley_terry(
    judgments: pd.DataFrame,
    *,
    tie_model: TieModel = "half",
    both_bad: Literal["tie", "drop"] = "tie",
    style: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    cluster: Cluster = DEFAULT_CLUSTER,
    interval: Interval = DEFAULT_INTERVAL,
    level: float = 0.95,
) -> BTResult:
    """Fit Bradley-Terry strengths with cluster-robust CIs and CI-aware ranks.

    `interval`: "sandwich" (two-way cluster-robust variance, t with `inference_df` df)
    or "bootstrap" (percentile, `n_resamples` cluster resamples; 0 resamples gives no
    interval). Strengths are centred and ranked within each connected component of the
    comparison graph; degenerate components get NaN intervals and no ranks, with a warning.
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}, not {cluster!r}")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if tie_model not in TIE_MODELS:
        raise ValueError(f"tie_model must be one of {', '.join(TIE_MODELS)}, not {tie_model!r}")
    rows = build_rows(judgments, both_bad=both_bad, style=style)
    k = len(rows.systems)
    warnings: list[str] = []
    requested = tie_model
    if tie_model == "davidson" and rows.ties.sum() == 0:
        # Davidson's tie parameter's estimate is 0 (log nu = -inf) and its likelihood is
        # Bradley-Terry's without ties: fit that.
        warnings.append("no ties: Davidson's tie parameter is 0, strengths fitted without it")
        tie_model = "half"
    component = components_of(rows)
    n_components = int(component.max())
    if n_components > 1:
        parts = "; ".join(
            f"component {c}: {_names([rows.systems[i] for i in np.flatnonzero(component == c)])}"
            for c in range(1, n_components + 1)
        )
        warnings.append(
            f"the comparison graph is disconnected ({n_components} components never compared "
            f"with each other): strengths are centred and ranked within each component only "
            f"({parts})"
        )
    cluster, note = usable_cluster(rows, cluster)
    if note:
        warnings.append(note)
    point, converged_each = _newton(
        rows,
        _layout(rows),
        *(_to_units(_layout(rows), c[None]) for c in (rows.wins_a, rows.wins_b, rows.ties)),
        tie_model=tie_model,
        start=None,
        ridge=_RIDGE,
        max_iter=200,
        tol=1e-9,
    )
    converged = bool(converged_each.all())
    centring = _centring(component)
    estimate = _centred(point, k, component)[0]
    alpha = (1.0 - level) / 2.0
    n_params = point.shape[1]
    boot = np.zeros((0, k))
    param_low = np.full(n_params, np.nan)
    param_high = np.full(n_params, np.nan)
    ci_low = np.full(k, np.nan)
    ci_high = np.full(k, np.nan)
    se = np.full(k, np.nan)
    if not converged:
        warnings.append("the Bradley-Terry fit reached the iteration limit: no intervals")
    elif interval == "sandwich":
        covariance = cluster_covariance(
            rows, point[0], tie_model=tie_model, cluster=cluster, ridge=_RIDGE
        )
        # Log-strengths theta = L beta, centred within components: cov = C L V L' C'.
        lift = np.zeros((k, n_params))
        lift[1:, : k - 1] = np.eye(k - 1)
        transform = centring @ lift
        theta_cov = _psd(transform @ covariance @ transform.T)
        quantile = stats.t.ppf(1.0 - alpha, inference_df(rows, cluster))
        se = np.sqrt(np.clip(np.diag(theta_cov), 0.0, None))
        ci_low, ci_high = estimate - quantile * se, estimate + quantile * se
        param_se = np.sqrt(np.clip(np.diag(_psd(covariance)), 0.0, None))
        param_low = point[0] - quantile * param_se
        param_high = point[0] + quantile * param_se
    elif n_resamples <= 0:
        warnings.append(
            "no bootstrap resamples (--bootstrap 0): no intervals and no ranks; use the "
            "sandwich interval or at least 1000 resamples"
        )
    else:
        rng = np.random.default_rng(seed)
        boot_beta, ok = bootstrap_fits(
            rows, n_resamples, cluster, rng, tie_model=tie_model, start=point[0]
        )
        failed = int((~ok).sum())
        if failed:
            warnings.append(
                f"{failed} of {n_resamples} bootstrap resamples did not converge"
                + (
                    " and were left out"
                    if failed <= MAX_NONCONVERGED_SHARE * n_resamples
                    else ": too many for a trustworthy interval, so none is given"
                )
            )
        if failed <= MAX_NONCONVERGED_SHARE * n_resamples:
            boot_beta = boot_beta[ok]
            boot = _centred(boot_beta, k, component)
            ci_low, ci_high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
            se = boot.std(axis=0, ddof=1) if len(boot) > 1 else se
            param_low, param_high = np.quantile(boot_beta, [alpha, 1.0 - alpha], axis=0)
    separated = separated_systems(rows, component)
    for c, flagged in separated.items():
        members = component == c
        ci_low[members] = np.nan
        ci_high[members] = np.nan
        se[members] = np.nan
        where = f" in component {c}" if n_components > 1 else ""
        warnings.append(
            f"perfect separation{where}: {_names(flagged)} never lost or never won a "
            "comparison, so the maximum-likelihood strengths are infinite (the values shown "
            "are held finite by a small ridge): no intervals and no ranks there"
        )
    if n_components > 1 and rows.style.shape[1]:
        warnings.append("style control is one coefficient shared by all components")
    style_summary: dict[str, tuple[float, float, float]] = {}
    for j, name in enumerate(rows.style_names):
        column = k - 1 + j
        style_summary[name] = (
            float(point[0, column]),
            float(param_low[column]),
            float(param_high[column]),
        )
    return BTResult(
        systems=rows.systems,
        estimate=estimate,
        ci_low=np.asarray(ci_low, dtype=float),
        ci_high=np.asarray(ci_high, dtype=float),
        rank=ci_aware_ranks(ci_low, ci_high, component),
        tie_model=requested,
        tie_nu=(
            (float(np.exp(point[0, -1])) if tie_model == "davidson" else 0.0)
            if requested == "davidson"
            else None
        ),
        style=style_summary,
        n_resamples=n_resamples,
        seed=seed,
        cluster=cluster,
        level=level,
        both_bad=both_bad,
        n_judgments=rows.n_judgments,
        boot=boot,
        converged=converged,
        interval=interval,
        se=np.asarray(se, dtype=float),
        component=component,
        warnings=warnings,
    )
