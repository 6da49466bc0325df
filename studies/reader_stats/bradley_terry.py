"""Bradley-Terry with ties, fitted by maximum likelihood, with a vectorised cluster bootstrap.

Two tie models: "half" counts a tie as half a win for each side (the Chatbot Arena
convention); "davidson" gives ties their own probability nu*sqrt(pi_i*pi_j) / (...).
An optional style covariate (normalised report-length difference) enters the log-odds
like Chatbot Arena's style control, so strengths are reported net of length.

All fits, the point estimate and every bootstrap resample, run as one batch of damped
Newton steps over a (resamples x parameters) array: the likelihood depends on the data
only through weighted outcome counts per row, and a bootstrap resample only changes the
row weights. Resamples are warm-started from the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from studies.reader_stats.pairwise import regular

TieModel = Literal["half", "davidson"]
Cluster = Literal["case", "rater", "case+rater"]
CLUSTERS: tuple[str, ...] = ("case", "rater", "case+rater")
TIE_MODELS: tuple[str, ...] = ("half", "davidson")
_CHUNK_ELEMENTS = 200_000


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


@dataclass
class BTResult:
    systems: list[str]
    estimate: np.ndarray  # log-strength, centred to mean 0
    ci_low: np.ndarray
    ci_high: np.ndarray
    rank: np.ndarray
    tie_model: str
    tie_nu: float | None
    style: dict[str, tuple[float, float, float]]  # name -> (coef, ci_low, ci_high)
    n_resamples: int
    seed: int
    cluster: str
    level: float
    both_bad: str
    n_judgments: int
    boot: np.ndarray  # resamples x systems, centred
    converged: bool

    def table(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "system": self.systems,
                "bt": self.estimate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "rank": self.rank.astype(int),
            }
        )
        return frame.sort_values(["rank", "bt"], ascending=[True, False]).reset_index(drop=True)

    def win_probability(self) -> pd.DataFrame:
        """Model-expected score of row over column (win + half a tie)."""
        d = self.estimate[:, None] - self.estimate[None, :]
        nu = self.tie_nu or 0.0
        half = np.exp(d / 2.0)
        score = (half + nu / 2.0) / (half + 1.0 / half + nu)
        np.fill_diagonal(score, np.nan)
        return pd.DataFrame(score, index=self.systems, columns=self.systems)


def ci_aware_ranks(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """Rank = 1 + number of systems whose lower bound is above this one's upper bound."""
    ci_low = np.asarray(ci_low, dtype=float)
    ci_high = np.asarray(ci_high, dtype=float)
    return 1 + (ci_low[None, :] > ci_high[:, None]).sum(axis=1)


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
    systems = systems or sorted(set(frame["system_a"]) | set(frame["system_b"]))
    lookup = {name: i for i, name in enumerate(systems)}
    cases = sorted(frame["case"].unique())
    raters = sorted(frame["rater"].unique())
    work = pd.DataFrame(
        {
            "a": frame["system_a"].map(lookup).to_numpy(),
            "b": frame["system_b"].map(lookup).to_numpy(),
            "case": frame["case"].map({c: i for i, c in enumerate(cases)}).to_numpy(),
            "rater": frame["rater"].map({r: i for i, r in enumerate(raters)}).to_numpy(),
            "wa": (frame["winner"] == "a").to_numpy(dtype=float),
            "wb": (frame["winner"] == "b").to_numpy(dtype=float),
            "t": frame["winner"].isin(["tie", "both_bad"]).to_numpy(dtype=float),
        }
    )
    style_names: list[str] = []
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
        work["s0"] = feature / spread if spread > 0 else feature
        style_names = ["length"]
    else:
        work = work.groupby(["a", "b", "case", "rater"], as_index=False)[["wa", "wb", "t"]].sum()
    return BTRows(
        systems=list(systems),
        index_a=work["a"].to_numpy(dtype=int),
        index_b=work["b"].to_numpy(dtype=int),
        wins_a=work["wa"].to_numpy(dtype=float),
        wins_b=work["wb"].to_numpy(dtype=float),
        ties=work["t"].to_numpy(dtype=float),
        case_index=work["case"].to_numpy(dtype=int),
        rater_index=work["rater"].to_numpy(dtype=int),
        n_cases=len(cases),
        n_raters=len(raters),
        style=work[["s0"]].to_numpy(dtype=float) if style else np.zeros((len(work), 0)),
        style_names=style_names,
    )


def _design(rows: BTRows) -> np.ndarray:
    """Rows x (K-1 + S): +1 for system a, -1 for system b (system 0 is the reference)."""
    k = len(rows.systems)
    design = np.zeros((len(rows.index_a), k - 1 + rows.style.shape[1]))
    r = np.arange(len(rows.index_a))
    mask_a, mask_b = rows.index_a > 0, rows.index_b > 0
    design[r[mask_a], rows.index_a[mask_a] - 1] += 1.0
    design[r[mask_b], rows.index_b[mask_b] - 1] -= 1.0
    design[:, k - 1 :] = rows.style
    return design


def fit_batch(
    rows: BTRows,
    weights: np.ndarray,
    *,
    tie_model: TieModel = "half",
    start: np.ndarray | None = None,
    ridge: float = 1e-4,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> tuple[np.ndarray, bool]:
    """Maximum-likelihood fits for a batch of row weightings (batch x rows).

    Returns (batch x parameters, converged): parameters are the K-1 log-strengths against
    system 0, then the style coefficients, then log(nu) for Davidson. A tiny ridge keeps
    resamples with a perfect record finite.
    """
    if tie_model not in TIE_MODELS:
        raise ValueError(f"tie_model must be one of {', '.join(TIE_MODELS)}, not {tie_model!r}")
    design = _design(rows)
    n_rows, n_main = design.shape
    davidson = tie_model == "davidson"
    n_params = n_main + (1 if davidson else 0)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    batch = weights.shape[0]
    # Fit large batches in cache-sized chunks: the arrays per Newton step are batch x rows.
    chunk = max(1, _CHUNK_ELEMENTS // max(n_rows, 1))
    if batch > chunk:
        starts = None if start is None else np.broadcast_to(start, (batch, n_params))
        parts = [
            fit_batch(
                rows,
                weights[i : i + chunk],
                tie_model=tie_model,
                start=None if starts is None else starts[i : i + chunk],
                ridge=ridge,
                max_iter=max_iter,
                tol=tol,
            )
            for i in range(0, batch, chunk)
        ]
        return np.concatenate([p[0] for p in parts]), all(p[1] for p in parts)
    outer = (design[:, :, None] * design[:, None, :]).reshape(n_rows, n_main * n_main)
    n = rows.wins_a + rows.wins_b + rows.ties
    if start is None:
        beta = np.zeros((batch, n_params))
        if davidson:
            share = (rows.ties.sum() + 0.5) / (n.sum() + 1.0)
            beta[:, -1] = np.log(2.0 * share / (1.0 - share + 1e-9))
    else:
        beta = np.array(np.broadcast_to(start, (batch, n_params)), dtype=float)
    penalty = np.zeros(n_params)
    penalty[: len(rows.systems) - 1] = ridge
    converged = False
    for _ in range(max_iter):
        d = beta[:, :n_main] @ design.T
        if davidson:
            eta = beta[:, -1:]
            sinh, cosh, e_eta = np.sinh(d / 2.0), np.cosh(d / 2.0), np.exp(eta)
            denominator = 2.0 * cosh + e_eta
            g_d = (rows.wins_a - rows.wins_b) / 2.0 - n * sinh / denominator
            h_dd = -n * (cosh / 2.0 * denominator - sinh**2) / denominator**2
            g_eta = rows.ties - n * e_eta / denominator
            h_ee = -n * e_eta * 2.0 * cosh / denominator**2
            h_de = n * sinh * e_eta / denominator**2
        else:
            p = 1.0 / (1.0 + np.exp(-d))
            g_d = rows.wins_a + rows.ties / 2.0 - n * p
            h_dd = -n * p * (1.0 - p)
        gradient = np.empty((batch, n_params))
        hessian = np.empty((batch, n_params, n_params))
        gradient[:, :n_main] = (weights * g_d) @ design
        hessian[:, :n_main, :n_main] = ((weights * h_dd) @ outer).reshape(batch, n_main, n_main)
        if davidson:
            gradient[:, -1] = (weights * g_eta).sum(axis=1)
            hessian[:, -1, -1] = (weights * h_ee).sum(axis=1)
            cross = (weights * h_de) @ design
            hessian[:, :n_main, -1] = cross
            hessian[:, -1, :n_main] = cross
        gradient -= penalty * beta
        hessian -= np.diag(penalty)
        # Keep the Hessian negative definite when a resample leaves a parameter unidentified.
        hessian -= 1e-10 * np.eye(n_params)
        step = np.linalg.solve(-hessian, gradient[:, :, None])[:, :, 0]
        largest = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(largest, 1e-300))
        beta += step
        if largest.max() < tol:
            converged = True
            break
    return beta, converged


def _centred(beta: np.ndarray, k: int) -> np.ndarray:
    theta = np.concatenate([np.zeros((beta.shape[0], 1)), beta[:, : k - 1]], axis=1)
    return theta - theta.mean(axis=1, keepdims=True)


def bootstrap_weights(
    rows: BTRows, n_resamples: int, cluster: Cluster, rng: np.random.Generator
) -> np.ndarray:
    """Resamples x rows weights: how often each row's case (and/or rater) was drawn."""
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}, not {cluster!r}")
    weights = np.ones((n_resamples, len(rows.index_a)))
    if cluster in ("case", "case+rater"):
        counts = rng.multinomial(
            rows.n_cases, np.full(rows.n_cases, 1.0 / rows.n_cases), n_resamples
        )
        weights *= counts[:, rows.case_index]
    if cluster in ("rater", "case+rater"):
        counts = rng.multinomial(
            rows.n_raters, np.full(rows.n_raters, 1.0 / rows.n_raters), n_resamples
        )
        weights *= counts[:, rows.rater_index]
    return weights


def bradley_terry(
    judgments: pd.DataFrame,
    *,
    tie_model: TieModel = "half",
    both_bad: Literal["tie", "drop"] = "tie",
    style: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    cluster: Cluster = "case",
    level: float = 0.95,
) -> BTResult:
    """Fit Bradley-Terry strengths with percentile bootstrap CIs and CI-aware ranks."""
    rows = build_rows(judgments, both_bad=both_bad, style=style)
    k = len(rows.systems)
    point, converged = fit_batch(rows, np.ones((1, len(rows.index_a))), tie_model=tie_model)
    estimate = _centred(point, k)[0]
    alpha = (1.0 - level) / 2.0
    rng = np.random.default_rng(seed)
    if n_resamples > 0:
        weights = bootstrap_weights(rows, n_resamples, cluster, rng)
        boot_beta, _ = fit_batch(rows, weights, tie_model=tie_model, start=point[0])
        boot = _centred(boot_beta, k)
        ci_low, ci_high = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    else:
        boot_beta = np.zeros((0, point.shape[1]))
        boot = np.zeros((0, k))
        ci_low = ci_high = estimate.copy()
    style_summary: dict[str, tuple[float, float, float]] = {}
    for j, name in enumerate(rows.style_names):
        column = k - 1 + j
        if n_resamples > 0:
            low, high = np.quantile(boot_beta[:, column], [alpha, 1.0 - alpha])
        else:
            low = high = point[0, column]
        style_summary[name] = (float(point[0, column]), float(low), float(high))
    return BTResult(
        systems=rows.systems,
        estimate=estimate,
        ci_low=np.asarray(ci_low),
        ci_high=np.asarray(ci_high),
        rank=ci_aware_ranks(ci_low, ci_high),
        tie_model=tie_model,
        tie_nu=float(np.exp(point[0, -1])) if tie_model == "davidson" else None,
        style=style_summary,
        n_resamples=n_resamples,
        seed=seed,
        cluster=cluster,
        level=level,
        both_bad=both_bad,
        n_judgments=int((rows.wins_a + rows.wins_b + rows.ties).sum()),
        boot=boot,
        converged=converged,
    )
